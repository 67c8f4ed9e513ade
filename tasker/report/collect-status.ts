import { queueDepth } from '../../shared/broker/amqp-topology.js';
import { InputError } from '../../shared/errors.js';
import { defaultPool, type Names } from '../../shared/config/names.js';
import { runningFor, type StatusReport } from './run-status.js';
import type { Backend } from '../distributed/distributed-backend.js';
import { readPoolDepths } from '../../shared/broker/amqp-pool-depths.js';
import { poolStatus, poolsToShow, type PoolStatus } from './pool-status.js';
import type { RunMeta, WorkerInfo } from '../../shared/state/run-store.js';
import { readPoolDemand } from '../../shared/state/pool-demand.js';
import { runView, type RunView } from './run-view.js';

/** What `tasker status` shows of a distributed run, collected from RabbitMQ and Redis (run-status.ts prints it). */

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
  const runs = await collectRuns(backend, requested === undefined ? undefined : run, workers);
  return {
    namespace: names.namespace,
    run,
    runId,
    queue: work === undefined ? undefined : { name: workQueue, ready: work.ready, consumers: work.consumers },
    runQueue: own === undefined || runId === undefined ? undefined : { name: names.runQueue(runId), ready: own.ready },
    deadLetters: dead?.ready,
    running: runningFor(run, workers, runId),
    workers,
    pools,
    runs,
  };
}

/** How many runs `tasker status` looks through for those still running. */
const recentRuns = 50;

/** The `count` latest runs, newest first (`tasker runs` with a broker). */
export async function collectRunViews(backend: Backend, count: number): Promise<RunView[]> {
  const now = Date.now();
  const workers = await backend.store.workers();
  const metas = await Promise.all((await backend.store.latestRunIds(count)).map((id) => backend.store.getRun(id)));
  return metas.filter((meta): meta is RunMeta => meta !== undefined).map((meta) => runView(meta, runningFor(meta, workers, meta.runId).length, now));
}

/** The run asked for, or every recent run still running (its tasker alive or gone), newest first. */
async function collectRuns(backend: Backend, asked: RunMeta | undefined, workers: readonly WorkerInfo[]): Promise<RunView[]> {
  const now = Date.now();
  const metas = asked !== undefined ? [asked] : await Promise.all((await backend.store.latestRunIds(recentRuns)).map((id) => backend.store.getRun(id)));
  return metas
    .filter((meta, index): meta is RunMeta => meta !== undefined && (index === 0 || meta.state === 'running'))
    .map((meta) => runView(meta, runningFor(meta, workers, meta.runId).length, now));
}

async function collectPools(backend: Backend, names: Names, run: RunMeta | undefined, workers: readonly WorkerInfo[]): Promise<PoolStatus[]> {
  const depths = await readPoolDepths(backend.session, names, poolsToShow(run, workers));
  const demand = await Promise.all(depths.map(({ pool }) => readPoolDemand(backend.store, pool).catch(() => undefined)));
  return depths.map(({ pool, queue, ready, consumers }, index) => poolStatus(pool, queue, ready === undefined ? undefined : { ready, consumers: consumers ?? 0 }, workers, demand[index]));
}
