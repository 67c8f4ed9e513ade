import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { parseStoredJson } from './redis-json.js';
import type { Cancellation, RunMeta, RunStore } from '../state/run-store.js';

/** Runs as a whole: their meta record, the index of runs, stopping, cancelling, and removing their keys. */

type RunRecords = Pick<RunStore, 'registerRun' | 'endRun' | 'runStanding' | 'updateRun' | 'stopRun' | 'getRun' | 'latestRunIds' | 'cancelRun' | 'cancellation' | 'purgeRun' | 'expireRun'>;

// KEYS: meta. ARGV: fields JSON. Merges the fields into the run's meta record in one step, so a
// heartbeat in flight cannot write back a state the end of the run just replaced.
const updateRunScript = `
local stored = redis.call('hget', KEYS[1], 'json')
if not stored then return 0 end
local ok, meta = pcall(cjson.decode, stored)
if not ok then return 0 end
for k, v in pairs(cjson.decode(ARGV[1])) do meta[k] = v end
redis.call('hset', KEYS[1], 'json', cjson.encode(meta))
return 1`;

export function createRunRecords(redis: Redis, names: Names): RunRecords {
  redis.defineCommand('taskerUpdateRun', { numberOfKeys: 1, lua: updateRunScript });
  const scripts = redis as unknown as { taskerUpdateRun(meta: string, fields: string): Promise<unknown> };
  const key = names.runKey;
  /** The run's keys, a batch at a time (SCAN: never blocks Redis, whatever the run's size). */
  async function* runKeys(runId: string): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${key(runId, 'meta').slice(0, -'meta'.length)}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
  return {
    async registerRun(meta) {
      await redis
        .multi()
        .hset(key(meta.runId, 'meta'), { json: JSON.stringify(meta) })
        .zadd(names.runsIndexKey, Date.parse(meta.startedAt), meta.runId)
        .del(key(meta.runId, 'stopped'), key(meta.runId, 'over'))
        .exec();
    },
    async endRun(runId) {
      // Expires with the run's other keys (expireRun); until then its leftover messages are refused.
      await redis.set(key(runId, 'over'), '1');
    },
    async runStanding(runId) {
      const [cancelled, meta, over] = await Promise.all([redis.exists(names.cancelledKey(runId)), redis.exists(key(runId, 'meta')), redis.exists(key(runId, 'over'))]);
      if (cancelled === 1) return 'cancelled';
      if (meta === 0) return 'unknown';
      return over === 1 ? 'over' : 'live';
    },
    async updateRun(runId, fields) {
      await scripts.taskerUpdateRun(key(runId, 'meta'), JSON.stringify(fields));
    },
    async stopRun(runId) {
      // No expiry: an interrupted run may be resumed days later; `tasker purge` removes it.
      await redis.set(key(runId, 'stopped'), '1');
    },
    async getRun(runId) {
      return parseStoredJson<RunMeta>(await redis.hget(key(runId, 'meta'), 'json'));
    },
    async latestRunIds(count) {
      return redis.zrevrange(names.runsIndexKey, 0, count - 1);
    },
    async cancelRun(runId, cancellation) {
      // Kept for a week: workers drop this run's leftover messages instead of running them. The
      // first cancellation stands (NX): a purge after a cancel keeps who cancelled it.
      await redis.set(names.cancelledKey(runId), JSON.stringify(cancellation), 'EX', 7 * 24 * 3600, 'NX');
    },
    async cancellation(runId) {
      const stored = await redis.get(names.cancelledKey(runId));
      if (stored === null) return undefined;
      // '1': marked by a tasker older than `tasker cancel` (its purge).
      const parsed = parseStoredJson<Cancellation>(stored);
      return typeof parsed === 'object' && typeof parsed.by === 'string' ? parsed : { by: 'tasker purge', at: '' };
    },
    async purgeRun(runId) {
      let removed = 0;
      for await (const keys of runKeys(runId)) removed += await redis.del(...keys);
      await redis.zrem(names.runsIndexKey, runId);
      return removed;
    },
    async expireRun(runId, seconds) {
      // Every key of the run (meta, marks, ...); leases keep their own, shorter, expiry.
      for await (const keys of runKeys(runId)) {
        const multi = redis.multi();
        for (const runKey of keys) if (!runKey.includes(':lease:')) multi.expire(runKey, seconds);
        await multi.exec();
      }
    },
  };
}
