import type { AmqpSession } from '../../shared/broker/amqp-session.js';
import { probeQueue } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import { defaultPool } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * Warns while commands are in flight and no worker consumes the running phase's pool queue, or
 * nothing finishes. The no-consumer warning is also kept as text (`current()`) for the progress
 * line and `tasker status`, and cleared, with a log line, once a worker of that pool consumes.
 */

export interface StallWarningOptions {
  session: Pick<AmqpSession, 'withChannel'>;
  /** The running phase's pool and its work queue; undefined between phases. */
  currentPool: () => { pool: string; queue: string } | undefined;
  /** Warn when no worker consumes, or nothing finished, for this long. */
  stallWarningMs: number;
  inFlight: () => number;
  /** When the last result arrived (ms since the epoch). */
  lastProgressAt: () => number;
  /** The running phase's queue does not exist (someone deleted it). */
  onQueueMissing?: (queue: string) => void;
  logger: Logger;
  now?: () => number;
}

export interface StallWarnings {
  /** The warning in force (no worker consumes the running phase's pool), for the progress line. */
  current(): string | undefined;
  stop(): void;
}

/** How often the queue is looked at: a worker that starts clears the warning within this. */
const checkEveryMs = 2000;

interface StallState {
  /** Since when the running phase's queue has had no consumer; undefined while it has one. */
  noConsumerSince: number | undefined;
  warning: string | undefined;
  warnedAt: number;
  idleWarnedAt: number;
}

/** How a user gives a pool workers: the command, and where it is in Kubernetes. */
export function startWorkersHint(pool: string): string {
  return `${pool === defaultPool ? 'worker' : `worker --pool ${pool}`}; in Kubernetes, scale the pool's Deployment`;
}

function noConsumerText(pool: string, queue: string, waiting: number): string {
  const commands = waiting === 1 ? '1 command is' : `${waiting} commands are`;
  return `no worker of pool ${pool} is consuming ${queue}: ${commands} waiting. Start workers (${startWorkersHint(pool)})`;
}

/** The pool has a consumer again (or its commands all finished, so one consumed them): said once. */
function clearWarning(state: StallState, current: { pool: string; queue: string } | undefined, logger: Logger): void {
  if (state.warning !== undefined && current !== undefined) logger.info({ pool: current.pool, queue: current.queue }, `a worker of pool ${current.pool} is consuming ${current.queue} again`);
  state.noConsumerSince = undefined;
  state.warning = undefined;
}

async function checkConsumers(options: StallWarningOptions, state: StallState, now: number): Promise<void> {
  const { logger } = options;
  const current = options.currentPool();
  const probed = current === undefined ? undefined : await options.session.withChannel((channel) => probeQueue(channel, current.queue));
  if (current !== undefined && probed === 'missing') options.onQueueMissing?.(current.queue);
  const depth = probed === 'missing' ? undefined : probed;
  // The broker's consumer count, not the heartbeats: a SIGKILLed worker's heartbeat lives on for 15 s.
  if (current === undefined || depth === undefined || depth.consumers > 0) {
    clearWarning(state, current, logger);
    return;
  }
  state.noConsumerSince ??= now;
  if (now - state.noConsumerSince < options.stallWarningMs || now - state.warnedAt < options.stallWarningMs) return;
  // Read after the check: the count the warning gives is the one at the time it is logged.
  const waiting = options.inFlight();
  state.warning = noConsumerText(current.pool, current.queue, waiting);
  state.warnedAt = now;
  logger.warn({ pool: current.pool, queue: current.queue, waiting, ready: depth.ready }, state.warning);
}

function checkIdle(options: StallWarningOptions, state: StallState, now: number): void {
  const idleMs = now - options.lastProgressAt();
  if (idleMs < options.stallWarningMs || now - state.idleWarnedAt < options.stallWarningMs) return;
  state.idleWarnedAt = now;
  const waiting = options.inFlight();
  options.logger.warn({ waiting, idleMs }, `nothing finished for ${formatDuration(idleMs)} (${waiting} commands published, waiting or running); the run goes on`);
}

/** Checks every few seconds until `stop()`. */
export function startStallWarnings(options: StallWarningOptions): StallWarnings {
  const now = options.now ?? Date.now;
  const state: StallState = { noConsumerSince: undefined, warning: undefined, warnedAt: 0, idleWarnedAt: 0 };
  let checking = false;
  const timer = setInterval(() => {
    if (options.inFlight() === 0) {
      clearWarning(state, options.currentPool(), options.logger);
      return;
    }
    if (checking) return;
    checking = true;
    const at = now();
    checkConsumers(options, state, at)
      .catch((error: unknown) => options.logger.debug({ err: error }, 'stall check failed'))
      .finally(() => {
        // A pool nobody consumes says why nothing finishes: its own warning names the pool.
        if (state.noConsumerSince === undefined) checkIdle(options, state, at);
        checking = false;
      });
  }, Math.min(checkEveryMs, options.stallWarningMs));
  timer.unref();
  return {
    // Nothing waits once nothing is in flight (the run may end before the next check).
    current: () => (options.inFlight() === 0 ? undefined : state.warning),
    stop: () => {
      clearInterval(timer);
      state.warning = undefined;
    },
  };
}
