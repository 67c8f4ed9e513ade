import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { parseStoredJson } from './redis-json.js';
import type { RunStore, WorkerInfo } from '../state/run-store.js';

/** Worker heartbeats: one key per worker with a TTL, so a worker that died drops out by itself. */

type WorkerRegistry = Pick<RunStore, 'workerHeartbeat' | 'removeWorker' | 'workers' | 'workerPresent'>;

export function createWorkerRegistry(redis: Redis, names: Names): WorkerRegistry {
  return {
    async workerHeartbeat(info, ttlMs) {
      await redis.set(names.workerKey(info.id), JSON.stringify(info), 'PX', ttlMs);
    },
    async removeWorker(id) {
      await redis.del(names.workerKey(id));
    },
    // Subscribers of the worker's presence channel (redis-presence.ts): one while its process lives.
    async workerPresent(id) {
      const [reply, heartbeat] = await Promise.all([redis.pubsub('NUMSUB', names.workerPresenceChannel(id)) as Promise<unknown[]>, redis.get(names.workerKey(id))]);
      if (Number(reply[1] ?? 0) > 0) return true;
      // A worker whose presence connection is down (e.g. Redis refuses more connections) says so in
      // its heartbeat, within a second: it lives, it is not to be judged by its presence. A dead
      // worker's last heartbeat said its presence was up.
      return parseStoredJson<WorkerInfo>(heartbeat)?.presence === false;
    },
    async workers() {
      const found: WorkerInfo[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', names.workerKeyPattern, 'COUNT', 200);
        cursor = next;
        if (keys.length > 0) {
          for (const value of await redis.mget(...keys)) {
            const info = parseStoredJson<WorkerInfo>(value);
            if (info !== undefined) found.push(info);
          }
        }
      } while (cursor !== '0');
      return found.sort((a, b) => a.id.localeCompare(b.id));
    },
  };
}
