import type { ExecutionResult } from '../shared/executor.js';
import type { Logger } from '../shared/logger.js';
import { parseCommandMessage, type CommandMessage } from '../shared/messages.js';
import type { RunStore } from '../shared/redis-store.js';
import { toResultRecord, type ResultRecord } from '../shared/results.js';

/**
 * What a worker does with one delivery from the work queue. Knows no client library: the
 * store, the executor and the publisher are ports. Returns how to settle the message.
 *
 * Guarantees:
 * - an invalid message is dead-lettered, never run, never requeued;
 * - a command whose result is already recorded is not run again (duplicate delivery); its
 *   result is sent again, in case the first sender died before sending it;
 * - one lease per command: a redelivered copy of a command that is still running elsewhere
 *   (broker consumer timeout, reconnect) waits for that run instead of starting another;
 * - the result is in Redis and sent to the tasker before the message is acked.
 */

export type Decision = 'ack' | 'reject' | 'requeue';

export interface StartedCommand {
  result: Promise<ExecutionResult>;
  kill(reason: string): void;
  /** Log path relative to the workdir. */
  log: string;
}

export type DeliveryStore = Pick<
  RunStore,
  'isCancelled' | 'succeededAttempt' | 'latestResult' | 'recordResult' | 'acquireLease' | 'renewLease' | 'releaseLease' | 'leaseHolder' | 'setRunning' | 'clearRunning'
>;

export interface DeliveryPorts {
  store: DeliveryStore;
  start(message: CommandMessage): StartedCommand;
  publishResult(message: CommandMessage, record: ResultRecord): Promise<void>;
  sleep(ms: number): Promise<void>;
  logger: Logger;
  workerId: string;
  /** A lease not renewed for this long is taken over (its worker is presumed dead). */
  leaseTtlMs: number;
}

export interface DeliveryControl {
  /** True once the worker is shutting down: waiting copies go back to the queue. */
  draining(): boolean;
  /** Registers a running command so shutdown can kill it; returns the unregister function. */
  track(command: StartedCommand, message: CommandMessage): () => void;
  /** Set by shutdown for commands it killed: they are requeued, not recorded. */
  killedForDrain(command: StartedCommand): boolean;
}

let leaseCounter = 0;

export async function handleDelivery(content: Buffer, ports: DeliveryPorts, control: DeliveryControl): Promise<Decision> {
  const { logger, store } = ports;
  const parsed = parseCommandMessage(content);
  if (!parsed.ok) {
    logger.error({ problem: parsed.problem, bytes: content.length }, 'invalid message: dead-lettered, not run');
    return 'reject';
  }
  const message = parsed.value;
  const fields = { runId: message.runId, phase: message.phase, commandId: message.id, attempt: message.attempt };

  if (await store.isCancelled(message.runId)) {
    logger.info(fields, 'run was purged: dropping its command');
    return 'ack';
  }

  // Already finished (this attempt, or any attempt that succeeded): send the result again, do not run.
  const finished = await findFinished(store, message);
  if (finished !== undefined) {
    logger.info({ ...fields, outcome: finished.outcome }, 'duplicate delivery of a finished command: not run again');
    await ports.publishResult(message, finished);
    return 'ack';
  }

  const owner = `${ports.workerId}#${++leaseCounter}`;
  for (let waited = 0; !(await store.acquireLease(message.runId, message.id, owner, ports.leaseTtlMs)); waited++) {
    if (waited === 0) logger.info(fields, 'command is running elsewhere: waiting for it instead of running it twice');
    if (control.draining()) return 'requeue';
    await ports.sleep(Math.min(1000, ports.leaseTtlMs / 3));
    const done = await findFinished(store, message);
    if (done !== undefined) {
      await ports.publishResult(message, done);
      return 'ack';
    }
  }

  // Holding the lease: one more check, the previous holder may have finished just now.
  const justDone = await findFinished(store, message);
  if (justDone !== undefined) {
    await store.releaseLease(message.runId, message.id, owner);
    await ports.publishResult(message, justDone);
    return 'ack';
  }

  const since = new Date().toISOString();
  await store.setRunning(message.runId, message.id, { worker: ports.workerId, attempt: message.attempt, since, command: message.command, phase: message.phase });
  const started = ports.start(message);
  const untrack = control.track(started, message);
  const renew = setInterval(() => {
    store.renewLease(message.runId, message.id, owner, ports.leaseTtlMs).then(
      (held) => {
        if (!held) logger.warn(fields, 'lost the lease of a running command (Redis was unreachable for too long?)');
      },
      (error: unknown) => logger.warn({ ...fields, err: error }, 'could not renew the lease'),
    );
  }, Math.max(100, Math.floor(ports.leaseTtlMs / 3)));
  let result: ExecutionResult;
  try {
    result = await started.result;
  } finally {
    clearInterval(renew);
    untrack();
  }

  if (control.killedForDrain(started)) {
    await store.clearRunning(message.runId, message.id);
    await store.releaseLease(message.runId, message.id, owner);
    logger.warn(fields, 'stopped by shutdown: back to the queue for another worker');
    return 'requeue';
  }

  const record = toResultRecord(message, message.attempt, result, ports.workerId, started.log);
  // Order matters: Redis first (the truth for duplicates), then the tasker, then the ack.
  await store.recordResult(message.runId, record);
  await ports.publishResult(message, record);
  await store.releaseLease(message.runId, message.id, owner);
  logger.info({ ...fields, outcome: record.outcome, exitCode: record.exitCode, durationMs: record.durationMs }, 'command finished');
  return 'ack';
}

async function findFinished(store: DeliveryStore, message: CommandMessage): Promise<ResultRecord | undefined> {
  const latest = await store.latestResult(message.runId, message.id);
  if (latest === undefined) return undefined;
  if (latest.attempt === message.attempt) return latest;
  if ((await store.succeededAttempt(message.runId, message.id)) !== undefined && latest.outcome === 'succeeded') return latest;
  return undefined;
}
