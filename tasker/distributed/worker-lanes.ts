import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/redis-store.js';

/**
 * How many commands the workers run at once (the sum of their --concurrency), from their
 * heartbeats, read again every `intervalMs`. Sizes bundles; `fallback` until the first reading
 * (or while no worker is heard of).
 */
export function watchWorkerLanes(store: Pick<RunStore, 'workers'>, intervalMs: number, logger: Logger, fallback = 4): { lanes(): number; stop(): void } {
  let lanes = fallback;
  const read = (): void => {
    store.workers().then(
      (workers) => {
        const slots = workers.reduce((sum, worker) => sum + Math.max(1, worker.concurrency), 0);
        lanes = slots > 0 ? slots : fallback;
      },
      (error: unknown) => logger.debug({ err: error }, 'could not read the workers'),
    );
  };
  read();
  const timer = setInterval(read, intervalMs);
  timer.unref();
  return { lanes: () => lanes, stop: () => clearInterval(timer) };
}
