import type { AmqpSession } from '../../shared/broker/amqp-session.js';
import { queueDepth } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import type { Logger } from '../../shared/observe/logger.js';

/** Warns while commands are in flight and no worker consumes the work queue, or nothing finishes. */

export interface StallWarningOptions {
  session: Pick<AmqpSession, 'withChannel'>;
  workQueue: string;
  /** Warn when no worker consumes, or nothing finished, for this long; also how often to check. */
  stallWarningMs: number;
  inFlight: () => number;
  /** When the last result arrived (ms since the epoch). */
  lastProgressAt: () => number;
  logger: Logger;
}

async function checkForStall(options: StallWarningOptions): Promise<void> {
  const { workQueue, logger } = options;
  const depth = await options.session.withChannel((channel) => queueDepth(channel, workQueue));
  // Read after the check: the count the warning gives is the one at the time it is logged.
  const waiting = options.inFlight();
  if (depth !== undefined && depth.consumers === 0) {
    logger.warn(
      { queue: workQueue, waiting, ready: depth.ready },
      `no worker is consuming ${workQueue}: ${waiting} commands are waiting. Start workers (e.g. kubectl scale deployment/tasker-worker --replicas=4)`,
    );
  }
  const idleMs = Date.now() - options.lastProgressAt();
  if (idleMs >= options.stallWarningMs) {
    logger.warn({ waiting, idleMs }, `nothing finished for ${formatDuration(idleMs)} (${waiting} commands in flight); the run goes on`);
  }
}

/** Checks every `stallWarningMs` until the returned function stops it. */
export function startStallWarnings(options: StallWarningOptions): () => void {
  const timer = setInterval(() => {
    if (options.inFlight() === 0) return;
    checkForStall(options).catch((error: unknown) => options.logger.debug({ err: error }, 'stall check failed'));
  }, options.stallWarningMs);
  timer.unref();
  return () => clearInterval(timer);
}
