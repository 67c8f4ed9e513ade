import type { AmqpSession, Consumer } from '../../shared/broker/amqp-session.js';
import type { Executor } from '../../shared/exec/executor-contract.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Presence } from './redis-presence.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { MessageIntake } from '../flow/message-intake.js';
import type { Heartbeat } from './heartbeat.js';
import type { ExtraConsumers } from '../flow/extra-consumers.js';
import type { Lookahead } from '../flow/lookahead.js';
import type { RunningCommands } from '../flow/running-commands.js';
import type { S3OnDemand } from './s3-on-demand.js';
import type { CommandSlots } from '../flow/command-slots.js';

/**
 * How the worker stops. Shutdown drains: stop taking work, let running commands finish until
 * the drain deadline, then kill and requeue them; then close what it opened. Also the idle exit.
 */

export interface WorkerParts {
  workerId: string;
  running: RunningCommands;
  executor: Pick<Executor, 'killAllNow'>;
  slots: Pick<CommandSlots, 'drain' | 'handBackWaiting'>;
  lookahead: Pick<Lookahead, 'stop'>;
  /** The extra consumers (the lookahead's, messages waiting for a lease). */
  extra: Pick<ExtraConsumers, 'stop'>;
  intake: Pick<MessageIntake, 'inFlight' | 'whenIdle' | 'lastActivityMs'>;
  /** The work queue's main consumer. */
  consumer: Pick<Consumer, 'cancel'>;
  heartbeat: Pick<Heartbeat, 'stop'>;
  /** The look for cancelled runs among what runs here (run-cancels.ts); absent: none. */
  runCancels?: { stop(): void };
  store: Pick<RunStore, 'removeWorker' | 'close'>;
  presence: Pick<Presence, 'close'>;
  session: Pick<AmqpSession, 'close'>;
  s3: Pick<S3OnDemand, 'close'>;
  logger: Logger;
}

export interface StopOptions {
  drainTimeoutMs: number;
  /** Shut down after this long without a delivery. Default: never. */
  exitWhenIdleMs: number | undefined;
}

export interface WorkerStop {
  /** Resolves with the exit code once the worker has stopped. */
  done: Promise<number>;
  /** Starts a graceful shutdown (idempotent); `force` kills running commands at once. */
  shutdown(reason: string, force?: boolean): Promise<void>;
}

export function createWorkerStop(parts: WorkerParts, options: StopOptions): WorkerStop {
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });
  let idleTimer: NodeJS.Timeout | undefined;
  let shutdownPromise: Promise<void> | undefined;

  const shutdown = (reason: string, force = false): Promise<void> => {
    if (force) {
      parts.running.killAll('worker shutdown');
      parts.executor.killAllNow();
    }
    shutdownPromise ??= (async () => {
      try {
        const lookaheadStopped = stopTakingWork(parts, reason);
        if (idleTimer !== undefined) clearInterval(idleTimer);
        await parts.consumer.cancel().catch((error: unknown) => parts.logger.warn({ err: error }, 'could not cancel the consumer'));
        await lookaheadStopped.catch((error: unknown) => parts.logger.warn({ err: error }, 'could not cancel the extra consumers')); // the drain goes on
        await drainRunning(parts, options.drainTimeoutMs);
      } finally {
        // Whatever failed above, the worker still closes what it opened and exits.
        parts.heartbeat.stop();
        parts.runCancels?.stop();
        await closeConnections(parts);
        parts.logger.info('worker stopped');
        resolveDone(0);
      }
    })();
    return shutdownPromise;
  };

  if (options.exitWhenIdleMs !== undefined) {
    const idleMs = options.exitWhenIdleMs;
    idleTimer = setInterval(() => {
      if (parts.intake.inFlight() === 0 && Date.now() - parts.intake.lastActivityMs() >= idleMs) {
        void shutdown(`idle for ${idleMs} ms`);
      }
    }, Math.min(1000, idleMs));
  }
  return { done, shutdown };
}

/** Resolves once the extra consumers (the lookahead's, those of messages waiting for a lease) are cancelled. */
function stopTakingWork(parts: WorkerParts, reason: string): Promise<void> {
  const { slots, running } = parts;
  slots.drain();
  parts.lookahead.stop();
  const lookaheadStopped = parts.extra.stop();
  slots.handBackWaiting(); // prefetched, not started: requeued
  running.killNotStarted('worker shutdown'); // handed over early, not started yet: requeued at once
  parts.logger.info({ reason, running: running.size }, 'shutting down: no new commands');
  return lookaheadStopped;
}

async function drainRunning(parts: WorkerParts, drainTimeoutMs: number): Promise<void> {
  const { intake, running } = parts;
  if (intake.inFlight() === 0) return;
  const drained = intake.whenIdle();
  const deadline = new Promise<'deadline'>((resolve) => setTimeout(() => resolve('deadline'), drainTimeoutMs).unref());
  if ((await Promise.race([drained, deadline])) === 'deadline') {
    parts.logger.warn({ running: running.size, drainTimeoutMs }, 'drain deadline reached: killing running commands and requeueing them');
    running.killAll('worker shutdown');
    await drained;
  }
}

async function closeConnections(parts: WorkerParts): Promise<void> {
  const { store, session, logger } = parts;
  // Reverse order of creation; each step runs even if an earlier one failed.
  await store.removeWorker(parts.workerId).catch((error: unknown) => logger.debug({ err: error }, 'could not remove the heartbeat'));
  await session.close().catch((error: unknown) => logger.warn({ err: error }, 'closing RabbitMQ failed'));
  // Once no command of this worker holds a lease (drained above): a lease whose holder's presence
  // is gone may be taken over at once.
  await parts.presence.close().catch((error: unknown) => logger.warn({ err: error }, 'closing the presence connection failed'));
  await store.close().catch((error: unknown) => logger.warn({ err: error }, 'closing Redis failed'));
  await parts.s3.close().catch((error: unknown) => logger.warn({ err: error }, 'closing S3 failed'));
}
