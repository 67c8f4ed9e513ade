import type { ExecutionResult } from '../shared/exec/executor.js';
import type { Logger } from '../shared/observe/logger.js';
import { parseCommandMessage, type CommandMessage } from '../shared/broker/messages.js';
import { applyUploadReport, type OutputSpec, type OutputWatch } from '../shared/storage/outputs.js';
import type { RunStore } from '../shared/state/redis-store.js';
import { toResultRecord, type ResultRecord } from '../shared/state/results.js';

/**
 * What a worker does with one delivery from the work queue. Knows no client library: the
 * store, the executor and the publisher are ports. Returns how to settle the message, and
 * what to do once it is settled.
 *
 * Guarantees:
 * - an invalid message, or with a signing key one whose signature does not verify, is
 *   dead-lettered, never run, never requeued;
 * - a command whose result is already recorded is not run again (duplicate delivery); its
 *   result is sent again, in case the first sender died before sending it;
 * - one lease per command: a redelivered copy of a command that is still running elsewhere
 *   (broker consumer timeout, reconnect) waits for that run instead of starting another;
 * - the result is recorded in Redis before the message is acked. It is then sent to the
 *   tasker; should that send be lost with its worker, the tasker finds the result in Redis.
 */

export type Decision = 'ack' | 'reject' | 'requeue';

export interface Handled {
  decision: Decision;
  /** Runs after the message is settled: sending the result to the tasker. */
  afterSettle?: () => Promise<void>;
}

export interface StartedCommand {
  result: Promise<ExecutionResult>;
  kill(reason: string): void;
  /** False while it waits for the executor's free slot (handed over early). */
  started(): boolean;
  /** Log path relative to the workdir. */
  log: string;
}

export type DeliveryStore = Pick<RunStore, 'beginCommand' | 'finishCommand' | 'abandonCommand' | 'renewLease'>;

export interface DeliveryPorts {
  store: DeliveryStore;
  start(message: CommandMessage): StartedCommand;
  publishResult(message: CommandMessage, record: ResultRecord): Promise<void>;
  /** With TASKER_SIGNING_KEY: why a message is not authentic, undefined when it is. Unset: all are run. */
  authenticate?: ((content: Buffer, headers: Record<string, unknown>) => string | undefined) | undefined;
  /** Snapshot before a command whose message asks for uploads; `finish()` uploads its outputs. */
  watchOutputs(spec: OutputSpec): Promise<OutputWatch>;
  sleep(ms: number): Promise<void>;
  logger: Logger;
  workerId: string;
  /** A lease not renewed for this long is taken over (its worker is presumed dead). */
  leaseTtlMs: number;
}

export interface DeliveryControl {
  /** True once the worker is shutting down: commands not started yet go back to the queue. */
  draining(): boolean;
  /** Waits for one of the worker's `concurrency` slots; resolves with its release, or undefined when draining. */
  acquireSlot(): Promise<(() => void) | undefined>;
  /** Registers a running command so shutdown can kill it; returns the unregister function. */
  track(command: StartedCommand, message: CommandMessage): () => void;
  /** Set by shutdown for commands it killed: they are requeued, not recorded. */
  killedForDrain(command: StartedCommand): boolean;
}

let leaseCounter = 0;

export async function handleDelivery(content: Buffer, ports: DeliveryPorts, control: DeliveryControl, headers: Record<string, unknown> = {}): Promise<Handled> {
  const { logger, store } = ports;
  const forged = ports.authenticate?.(content, headers);
  if (forged !== undefined) {
    logger.error({ problem: forged, bytes: content.length, hint: 'this worker runs only commands signed with its TASKER_SIGNING_KEY; the tasker must have the same key' }, 'message not authentic: dead-lettered, not run');
    return { decision: 'reject' };
  }
  const parsed = parseCommandMessage(content);
  if (!parsed.ok) {
    logger.error({ problem: parsed.problem, bytes: content.length }, 'invalid message: dead-lettered, not run');
    return { decision: 'reject' };
  }
  const message = parsed.value;
  const fields = { runId: message.runId, phase: message.phase, commandId: message.id, attempt: message.attempt };
  const resend = (record: ResultRecord) => () => ports.publishResult(message, record);

  const release = await control.acquireSlot();
  if (release === undefined) return { decision: 'requeue' };
  try {
    const owner = `${ports.workerId}#${++leaseCounter}`;
    const running = { worker: ports.workerId, attempt: message.attempt, since: new Date().toISOString(), command: message.command.slice(0, 500), phase: message.phase };
    for (let waited = 0; ; waited++) {
      const begin = await store.beginCommand(message.runId, message.id, message.attempt, owner, ports.leaseTtlMs, running);
      if (begin.kind === 'cancelled') {
        logger.info(fields, 'run was purged: dropping its command');
        return { decision: 'ack' };
      }
      if (begin.kind === 'finished') {
        logger.info({ ...fields, outcome: begin.record.outcome }, 'duplicate delivery of a finished command: not run again');
        return { decision: 'ack', afterSettle: resend(begin.record) };
      }
      if (begin.kind === 'started') break;
      if (waited === 0) logger.info({ ...fields, holder: begin.holder }, 'command is running elsewhere: waiting for it instead of running it twice');
      if (control.draining()) return { decision: 'requeue' };
      await ports.sleep(Math.min(1000, ports.leaseTtlMs / 3));
    }

    const upload = message.upload;
    const watch = upload === undefined || upload.patterns.length === 0 ? undefined : await ports.watchOutputs(upload);
    const started = ports.start(message);
    const untrack = control.track(started, message);
    // Renewed until the uploads are done too: a slow upload must not let another worker take over.
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
      try {
        result = await started.result;
      } finally {
        untrack();
      }
      // Done only when its outputs are uploaded: a failed upload fails the attempt.
      if (watch !== undefined && result.outcome === 'succeeded' && !control.killedForDrain(started)) result = applyUploadReport(result, await watch.finish());
    } finally {
      clearInterval(renew);
    }

    if (control.killedForDrain(started)) {
      await store.abandonCommand(message.runId, message.id, owner);
      logger.info(fields, 'not run to its end here (shutdown, or handed back before it started): back to the queue for another worker');
      return { decision: 'requeue' };
    }
    const record = toResultRecord(message, message.attempt, result, ports.workerId, started.log);
    await store.finishCommand(message.runId, record, owner);
    logger.info({ ...fields, outcome: record.outcome, exitCode: record.exitCode, durationMs: record.durationMs }, 'command finished');
    return { decision: 'ack', afterSettle: resend(record) };
  } finally {
    release();
  }
}
