import { defaultPool } from '../../shared/config/names.js';
import { poolsOfWorker, servesPool, type RunMeta, type WorkerInfo } from '../../shared/state/run-store.js';
import { demandAnswer, type PoolDemand } from '../../shared/state/pool-demand.js';

/**
 * The pools part of `tasker status` (pure): per pool its queue (ready messages, consumers),
 * the workers serving it and what they run, and the commands its live runs wait to run. Which pools: the default one, the run's, and every
 * pool a live worker serves.
 */

export interface PoolStatus {
  pool: string;
  queue: string;
  /** Messages ready in the queue (a bundle counts once); undefined: the queue does not exist. */
  ready: number | undefined;
  consumers: number | undefined;
  /** Workers whose heartbeat says they serve the pool. */
  workers: string[];
  /** Commands those workers run (of any of their pools: a worker's slots are shared). */
  running: number;
  /** The pool's demand table (pool-demand.ts): its live runs' commands; undefined: Redis did not answer. */
  demand: Omit<PoolDemand, 'perRun'> | undefined;
}

export function poolsToShow(run: RunMeta | undefined, workers: readonly WorkerInfo[]): string[] {
  const pools = new Set([defaultPool, ...(run?.pools ?? []), ...workers.flatMap(poolsOfWorker)]);
  return [...pools].sort((a, b) => (a === defaultPool ? -1 : b === defaultPool ? 1 : a.localeCompare(b)));
}

export function poolStatus(pool: string, queue: string, depth: { ready: number; consumers: number } | undefined, workers: readonly WorkerInfo[], demand?: PoolDemand): PoolStatus {
  const serving = workers.filter((worker) => servesPool(worker, pool));
  return {
    pool,
    queue,
    ready: depth?.ready,
    consumers: depth?.consumers,
    workers: serving.map((worker) => worker.id),
    running: serving.reduce((sum, worker) => sum + worker.running.length, 0),
    demand: demand === undefined ? undefined : demandAnswer(demand),
  };
}

export function formatPools(pools: readonly PoolStatus[]): string[] {
  if (pools.length === 0) return [];
  const out = ['', `Pools (${pools.length}):`];
  for (const pool of pools) {
    const consumers = pool.consumers ?? 0;
    // The queue's depth is in messages (a bundle counts once): on its own line, apart from the commands.
    const queue = pool.ready === undefined ? `queue ${pool.queue} not declared yet` : `queue ${pool.queue}: ${pool.ready} message${pool.ready === 1 ? '' : 's'} ready (a bundle message carries several commands), ${consumers} consumer${consumers === 1 ? '' : 's'}`;
    const slots = pool.demand === undefined ? '' : `, ${pool.demand.slots} slot${pool.demand.slots === 1 ? '' : 's'}`;
    const workers = pool.workers.length === 0 ? 'no worker' : `${pool.workers.length} worker${pool.workers.length === 1 ? '' : 's'} (${pool.workers.join(', ')})${slots}, ${pool.running} running`;
    const demand = pool.demand === undefined || pool.demand.runs === 0 ? '' : `; ${pool.demand.waiting} commands of their current phases waiting, of ${pool.demand.runs} live run${pool.demand.runs === 1 ? '' : 's'}`;
    out.push(`  ${pool.pool.padEnd(12)} ${workers}${demand}`, `  ${''.padEnd(12)} ${queue}`);
  }
  return out;
}
