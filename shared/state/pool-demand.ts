import { allocateSlots, type Priority, type RunDemand } from './fair-share.js';
import { servesPool, type RunStore, type WorkerInfo } from './run-store.js';

/**
 * A pool's demand as everybody computes it from Redis alone (the demand table and the workers'
 * heartbeats): what the autoscaler reads (`/demand`), the pool and per-run gauges, `tasker status`.
 * Pure, but for `readPoolDemand`, which reads through the store's port.
 */

export interface RunInPool {
  runId: string;
  priority: Priority;
  phase: string;
  /** Commands it could run now (its demand-table entry). */
  commands: number;
  /** Of those, running on the pool's workers (their heartbeats). */
  running: number;
  /** commands - running: published and queued, or not published yet. */
  waiting: number;
  /** Its fair share of the pool's slots (fair-share.ts), as every tasker computes it. */
  share: number;
}

export interface PoolDemand {
  pool: string;
  /** The live workers' slots (the sum of their concurrency; a worker of several pools counts in each). */
  slots: number;
  /** Sum over the pool's live runs of what they could run now: the autoscaler's number. */
  commands: number;
  waiting: number;
  running: number;
  /** Live runs with an entry in the pool's demand table. */
  runs: number;
  /** Per run, by run id (not part of the `/demand` answer). */
  perRun: RunInPool[];
}

export function poolSlots(workers: readonly WorkerInfo[], pool: string): number {
  return workers.filter((worker) => servesPool(worker, pool)).reduce((sum, worker) => sum + Math.max(1, worker.concurrency), 0);
}

/** Commands each run has running, by the workers' heartbeats. */
export function runningByRun(workers: readonly WorkerInfo[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const worker of workers) for (const item of worker.running) counts.set(item.runId, (counts.get(item.runId) ?? 0) + 1);
  return counts;
}

export function poolDemand(pool: string, entries: readonly RunDemand[], workers: readonly WorkerInfo[]): PoolDemand {
  const slots = poolSlots(workers, pool);
  const shares = allocateSlots(slots, entries);
  const byRun = runningByRun(workers.filter((worker) => servesPool(worker, pool)));
  const perRun = entries.map((entry): RunInPool => {
    const commands = Math.max(0, entry.demand);
    // A heartbeat a moment behind may still list a command just finished: never more than its demand.
    const running = Math.min(commands, byRun.get(entry.runId) ?? 0);
    return { runId: entry.runId, priority: entry.priority, phase: entry.phase, commands, running, waiting: commands - running, share: shares.get(entry.runId) ?? 0 };
  });
  const sum = (field: 'commands' | 'running' | 'waiting'): number => perRun.reduce((total, run) => total + run[field], 0);
  return { pool, slots, commands: sum('commands'), waiting: sum('waiting'), running: sum('running'), runs: perRun.length, perRun };
}

/** What `GET /demand?pool=POOL` answers: the numbers, without the per-run detail. */
export function demandAnswer(demand: PoolDemand): Omit<PoolDemand, 'perRun'> {
  return { pool: demand.pool, slots: demand.slots, commands: demand.commands, waiting: demand.waiting, running: demand.running, runs: demand.runs };
}

/** Reads the pool's live demand entries and the workers' heartbeats (two Redis reads). */
export async function readPoolDemand(store: Pick<RunStore, 'poolDemand' | 'workers'>, pool: string): Promise<PoolDemand> {
  const [entries, workers] = await Promise.all([store.poolDemand(pool), store.workers()]);
  return poolDemand(pool, entries, workers);
}
