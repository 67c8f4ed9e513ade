import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import type { RunStore } from '../state/run-store.js';
import type { UsageSample } from '../state/usage.js';

/**
 * The last memory sample of each running command (run key `usage`, field = command id): written by
 * its worker once a second while it runs, read when the command turns out poison, so the reason can
 * say how much memory it was last seen using when its worker died with it.
 */

/** Kept as long as a run's other keys at most (expireRun shortens it once the run ends). */
const usageTtlSeconds = 7 * 24 * 3600;

export function createUsageSamples(redis: Redis, names: Names): Pick<RunStore, 'noteUsage' | 'lastUsage'> {
  return {
    async noteUsage(runId, samples) {
      if (samples.size === 0) return;
      const key = names.runKey(runId, 'usage');
      const fields = [...samples].flatMap(([id, sample]) => [id, JSON.stringify(sample)]);
      await redis.multi().hset(key, ...fields).expire(key, usageTtlSeconds).exec();
    },
    async lastUsage(runId, id) {
      const text = await redis.hget(names.runKey(runId, 'usage'), id);
      if (text === null) return undefined;
      try {
        return JSON.parse(text) as UsageSample;
      } catch {
        return undefined; // not written by a worker: no sample to quote
      }
    },
  };
}
