import type { Logger } from '../../shared/observe/logger.js';
import type { Cancellation } from '../../shared/state/run-store.js';

/**
 * A distributed run's tasker looks in Redis every second whether an operator cancelled the run
 * (`tasker cancel`, maybe from another machine); the first time it finds it so, `onCancel` stops
 * the run as an interrupt does. A failed look is retried at the next tick.
 */

export interface CancelWatch {
  /** The cancel, once seen. */
  seen(): Cancellation | undefined;
  stop(): void;
}

export function startCancelWatch(look: () => Promise<Cancellation | undefined>, intervalMs: number, onCancel: (cancellation: Cancellation) => void, logger: Logger): CancelWatch {
  let seen: Cancellation | undefined;
  let looking = false;
  const tick = (): void => {
    if (looking || seen !== undefined) return;
    looking = true;
    look()
      .then((found) => {
        if (found === undefined || seen !== undefined) return;
        seen = found;
        clearInterval(timer);
        onCancel(found);
      })
      .catch((error: unknown) => logger.debug({ err: error }, 'could not look whether the run was cancelled'))
      .finally(() => {
        looking = false;
      });
  };
  const timer = setInterval(tick, intervalMs);
  return { seen: () => seen, stop: () => clearInterval(timer) };
}
