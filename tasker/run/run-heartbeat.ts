import type { Logger } from '../../shared/observe/logger.js';
import type { RunningBackend } from '../distributed/distributed-backend.js';
import type { Progress } from '../dispatch/phase-ports.js';
import { maxHeartbeatIntervalMs } from '../report/run-view.js';

/** A distributed run's heartbeat in Redis: how `tasker status` sees its progress, and a restarted tasker sees it is alive. */

/** How often a distributed tasker refreshes its run's heartbeat in Redis. */
export function heartbeatIntervalMs(progressIntervalMs: number): number {
  return Math.min(maxHeartbeatIntervalMs, progressIntervalMs);
}

export interface RunHeartbeat {
  stop(): void;
}

/** Beats at once, then every `intervalMs` until stopped; a failed beat is logged at debug level only. */
export function startRunHeartbeat(backend: Pick<RunningBackend, 'heartbeat'>, progress: Progress, intervalMs: number, logger: Logger): RunHeartbeat {
  const beat = (): void => {
    backend.heartbeat(progress).catch((error: unknown) => logger.debug({ err: error }, 'run heartbeat failed'));
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  return { stop: () => clearInterval(timer) };
}
