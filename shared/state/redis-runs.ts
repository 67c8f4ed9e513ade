import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { parseStoredJson } from './redis-json.js';
import type { RunMeta, RunStore } from './run-store.js';

/** Runs as a whole: their meta record, the index of runs, cancelling, and removing their keys. */

type RunRecords = Pick<RunStore, 'registerRun' | 'updateRun' | 'getRun' | 'latestRunIds' | 'cancelRun' | 'purgeRun' | 'expireRun'>;

export function createRunRecords(redis: Redis, names: Names): RunRecords {
  const key = names.runKey;
  return {
    async registerRun(meta) {
      await redis
        .multi()
        .hset(key(meta.runId, 'meta'), { json: JSON.stringify(meta) })
        .zadd(names.runsIndexKey, Date.parse(meta.startedAt), meta.runId)
        .exec();
    },
    async updateRun(runId, fields) {
      const current = parseStoredJson<RunMeta>(await redis.hget(key(runId, 'meta'), 'json'));
      if (current === undefined) return;
      await redis.hset(key(runId, 'meta'), { json: JSON.stringify({ ...current, ...fields }) });
    },
    async getRun(runId) {
      return parseStoredJson<RunMeta>(await redis.hget(key(runId, 'meta'), 'json'));
    },
    async latestRunIds(count) {
      return redis.zrevrange(names.runsIndexKey, 0, count - 1);
    },
    async cancelRun(runId) {
      // Kept for a week: workers drop this run's leftover messages instead of running them.
      await redis.set(names.cancelledKey(runId), '1', 'EX', 7 * 24 * 3600);
    },
    async purgeRun(runId) {
      let removed = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${key(runId, 'meta').slice(0, -'meta'.length)}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) removed += await redis.del(...keys);
      } while (cursor !== '0');
      await redis.zrem(names.runsIndexKey, runId);
      return removed;
    },
    async expireRun(runId, seconds) {
      const multi = redis.multi();
      for (const part of ['meta', 'done', 'results', 'running', 'published', 'starts'] as const) multi.expire(key(runId, part), seconds);
      await multi.exec();
    },
  };
}
