import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore, WorkerInfo } from '../../shared/state/run-store.js';
import { poolSlots } from '../../shared/state/pool-demand.js';

/**
 * How many commands the workers of a pool run at once (the sum of their --concurrency), from
 * their heartbeats, read again every `intervalMs`. Sizes bundles; `fallback` until the first
 * reading (or while no worker of the pool is heard of). A worker serving several pools counts
 * fully in each: its slots are shared, and only one of its pools is usually busy. `refresh`: read
 * now (a phase starts: workers may have come since the last reading). `onRead` gets
 * each reading too (the workers that cannot see the run, unseen-run-warnings.ts).
 */
export function watchWorkerLanes(store: Pick<RunStore, 'workers'>, intervalMs: number, logger: Logger, fallback = 4, onRead?: (workers: readonly WorkerInfo[]) => void): { lanes(pool: string): number; refresh(): void; stop(): void } {
  let workers: WorkerInfo[] = [];
  // Per pool, from the last reading: lanes() is asked several times per command (room, bundle sizes).
  const slotsByPool = new Map<string, number>();
  const read = (): void => {
    store.workers().then(
      (found) => {
        workers = found;
        slotsByPool.clear();
        onRead?.(found);
      },
      (error: unknown) => logger.debug({ err: error }, 'could not read the workers'),
    );
  };
  read();
  const timer = setInterval(read, intervalMs);
  timer.unref();
  const lanes = (pool: string): number => {
    let slots = slotsByPool.get(pool);
    if (slots === undefined) {
      slots = poolSlots(workers, pool);
      slotsByPool.set(pool, slots);
    }
    return slots > 0 ? slots : fallback;
  };
  return { lanes, refresh: read, stop: () => clearInterval(timer) };
}
