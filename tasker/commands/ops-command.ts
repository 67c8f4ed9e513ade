import { deleteQueue, queueDepth } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import { InputError } from '../../shared/errors.js';
import { defaultPool, type Names } from '../../shared/config/names.js';
import { runningFor, taskerAlive, type StatusReport } from '../report/run-status.js';
import { readPoolDepths, type Backend } from '../distributed/distributed-backend.js';
import { poolStatus, poolsToShow, type PoolStatus } from '../report/pool-status.js';
import type { RunMeta, WorkerInfo } from '../../shared/state/run-store.js';

/** `tasker status` and `tasker purge`: what a run is doing, and removing what it left behind. */

export { formatStatus, type StatusReport } from '../report/run-status.js';

async function resolveRunId(backend: Backend, runId: string | undefined): Promise<string | undefined> {
  if (runId !== undefined) return runId;
  const [latest] = await backend.store.latestRunIds(1);
  return latest;
}

export async function collectStatus(backend: Backend, names: Names, requested: string | undefined): Promise<StatusReport> {
  const runId = await resolveRunId(backend, requested);
  const run = runId === undefined ? undefined : await backend.store.getRun(runId);
  if (requested !== undefined && run === undefined) {
    throw new InputError('run-state', `no run "${requested}" in Redis (namespace ${names.namespace}); runs there: ${(await backend.store.latestRunIds(5)).join(', ') || 'none'}`);
  }
  // The work queue of the phase that runs now (its pool's), else the default pool's.
  const workQueue = names.poolQueue(run?.pool || defaultPool);
  const work = await backend.session.withChannel((channel) => queueDepth(channel, workQueue));
  const dead = await backend.session.withChannel((channel) => queueDepth(channel, names.deadQueue));
  const own = runId === undefined ? undefined : await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)));
  const workers = await backend.store.workers();
  const pools = await collectPools(backend, names, run, workers);
  return {
    run,
    runId,
    queue: work === undefined ? undefined : { name: workQueue, ready: work.ready, consumers: work.consumers },
    runQueue: own === undefined || runId === undefined ? undefined : { name: names.runQueue(runId), ready: own.ready },
    deadLetters: dead?.ready,
    running: runningFor(run, workers, runId),
    workers,
    pools,
  };
}

async function collectPools(backend: Backend, names: Names, run: RunMeta | undefined, workers: readonly WorkerInfo[]): Promise<PoolStatus[]> {
  const depths = await readPoolDepths(backend.session, names, poolsToShow(run, workers));
  return depths.map(({ pool, queue, ready, consumers }) => poolStatus(pool, queue, ready === undefined ? undefined : { ready, consumers: consumers ?? 0 }, workers));
}

export interface PurgeReport {
  runId: string;
  queueDeleted: boolean;
  keysRemoved: number;
}

export async function purgeRun(backend: Backend, names: Names, runId: string, force: boolean, now: number): Promise<PurgeReport> {
  const run = await backend.store.getRun(runId);
  const exists = run !== undefined || (await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)))) !== undefined;
  if (!exists) throw new InputError('run-state', `no run "${runId}" to purge (namespace ${names.namespace})`);
  if (run !== undefined && taskerAlive(run, now) && !force) {
    throw new InputError(
      'run-state',
      `run ${runId} is in progress (its tasker ${run.host} sent a heartbeat ${formatDuration(now - Date.parse(run.heartbeatAt))} ago); stop it first, or add --force`,
    );
  }
  // Workers drop this run's leftover messages from now on instead of running them.
  await backend.store.cancelRun(runId);
  const queueDeleted = await backend.session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
  const keysRemoved = await backend.store.purgeRun(runId);
  return { runId, queueDeleted, keysRemoved };
}
