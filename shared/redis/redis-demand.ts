import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { demandStaleMs, type RunDemand } from '../state/fair-share.js';
import type { RunStore } from '../state/run-store.js';
import { parseStoredJson } from './redis-json.js';

/**
 * Each pool's demand table (NS:pool:POOL:demand, a hash run id -> RunDemand as JSON): every live
 * run's tasker writes its entry each second and reads the others' in the same round trip, so every
 * tasker computes the same fair share (shared/state/fair-share.ts). An entry not written for
 * `demandStaleMs` is of a tasker that is gone: left out, and deleted by the reader.
 */

type DemandTable = Pick<RunStore, 'shareDemand' | 'withdrawDemand' | 'poolDemand' | 'onDemandJoined'> & { closeDemand(): Promise<void> };

/** The channel a run's first entry in a pool is announced on: the others read their share at once, not at their next turn. */
function joinedChannel(names: Names, pool: string): string {
  return `${names.poolDemandKey(pool)}:joined`;
}

export function createDemandTable(redis: Redis, names: Names): DemandTable {
  let subscriber: Redis | undefined;
  const listeners = new Map<string, Set<() => void>>();
  const live = async (pool: string, entries: Record<string, string>, now: number): Promise<RunDemand[]> => {
    const found: RunDemand[] = [];
    const stale: string[] = [];
    for (const [runId, text] of Object.entries(entries)) {
      const entry = parseStoredJson<RunDemand>(text);
      if (entry === undefined || now - entry.at > demandStaleMs) stale.push(runId);
      else found.push(entry);
    }
    if (stale.length > 0) await redis.hdel(names.poolDemandKey(pool), ...stale);
    return found.sort((a, b) => a.runId.localeCompare(b.runId));
  };
  return {
    async shareDemand(pool, entry) {
      const key = names.poolDemandKey(pool);
      const replies = await redis.multi().hset(key, entry.runId, JSON.stringify(entry)).hgetall(key).exec();
      // A new field: the run joined the pool's table just now.
      if (replies?.[0]?.[1] === 1) await redis.publish(joinedChannel(names, pool), entry.runId);
      const [, all] = replies?.[1] ?? [];
      return live(pool, (all ?? {}) as Record<string, string>, entry.at);
    },
    async withdrawDemand(pool, runId) {
      await redis.hdel(names.poolDemandKey(pool), runId);
    },
    async poolDemand(pool) {
      return live(pool, await redis.hgetall(names.poolDemandKey(pool)), Date.now());
    },
    async onDemandJoined(pool, listener) {
      const channel = joinedChannel(names, pool);
      if (subscriber === undefined) {
        subscriber = redis.duplicate();
        subscriber.on('message', (from: string) => listeners.get(from)?.forEach((call) => call()));
        // Errors are the main connection's to report; this one reconnects and subscribes again by itself.
        subscriber.on('error', () => undefined);
      }
      const set = listeners.get(channel) ?? new Set();
      listeners.set(channel, set);
      set.add(listener);
      if (set.size === 1) await subscriber.subscribe(channel);
      return async () => {
        set.delete(listener);
        if (set.size === 0) {
          listeners.delete(channel);
          await subscriber?.unsubscribe(channel);
        }
      };
    },
    async closeDemand() {
      await subscriber?.quit().catch(() => subscriber?.disconnect());
    },
  };
}
