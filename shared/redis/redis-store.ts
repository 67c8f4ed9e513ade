import type { Logger } from '../observe/logger.js';
import type { Names } from '../config/names.js';
import { createCommandState } from './redis-command-state.js';
import { createDemandTable } from './redis-demand.js';
import { connectRedis, createRedisClient } from './redis-connection.js';
import { createQueueLosses } from './redis-queue-losses.js';
import { createRunRecords } from './redis-runs.js';
import { createUsageSamples } from './redis-usage.js';
import { createWorkerRegistry } from './redis-workers.js';
import type { RunStore } from '../state/run-store.js';
import type { TlsFiles } from '../config/tls-config.js';


/**
 * Run state shared by tasker and workers, in Redis. The entry point of the Redis adapter; its
 * parts are the other redis-*.ts files.
 *
 * Per run (NS:run:RUN_ID:...):
 *   meta       hash   state, phase, counts, tasker heartbeat (for `tasker status` and purge)
 *   results    hash   command id -> latest result record (JSON), written before the message is
 *                     acked, removed once the tasker has it in results.jsonl: only what is in flight
 *   ok:fN      bitmap bit L set: command fN-LL (file N, line L) succeeded (duplicates are not run again)
 *   failed:A:fN bitmap bit L set: attempt A of command fN-LL failed (marks.ts; 1 bit per command)
 *   published  hash   command id -> attempt in flight (a resumed tasker does not publish it again)
 *   stopped    string set while the run is interrupted: workers drop its commands (and unpublish them)
 *   over       string set once the run finished (until resumed): workers dead-letter its leftover messages
 *   starts     hash   command id -> {attempt, n, workers}: starts of the current attempt without a
 *                     result, counted before each start; TASKER_DELIVERY_LIMIT of them is poison
 *   lease:ID   string owner of a running command, with a TTL renewed while it runs (worker/message/lease.ts)
 *   usage      hash   command id -> the last memory sample of it running (redis-usage.ts), for a poison reason
 *   queue-losses hash work queue -> the losses of it (below) the run's tasker has dealt with
 * NS:queue-losses:QUEUE  counter: how often the work queue was found deleted (redis-queue-losses.ts)
 * NS:pool:POOL:demand  hash run id -> what the run could run now in the pool (redis-demand.ts)
 * NS:runs      sorted set of run ids by start time;   NS:worker:ID  worker heartbeat, with a TTL
 * (what each worker runs: the only record of what runs where)
 */

/**
 * Connects and checks the server answers (a failure is one InputError). From then on commands
 * wait through a Redis restart instead of failing: see createRedisClient for why. `tls`: the
 * REDIS_TLS_* files, for rediss://.
 */
export async function createRunStore(url: string, names: Names, logger: Logger, tls?: TlsFiles): Promise<RunStore> {
  const redis = createRedisClient(url, 'tasker', tls);
  await connectRedis(redis, url, logger);
  const { closeDemand, ...demand } = createDemandTable(redis, names);
  return {
    ...createCommandState(redis, names),
    ...createRunRecords(redis, names),
    ...createWorkerRegistry(redis, names),
    ...createQueueLosses(redis, names),
    ...demand,
    ...createUsageSamples(redis, names),
    async close() {
      await closeDemand();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
