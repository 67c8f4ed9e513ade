import { UnroutableError, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { encodeMessage, resultMessage, type CommandMessage } from '../../shared/broker/messages.js';
import { signatureHeaders, signatureOf, verifyMessage } from '../../shared/broker/signing.js';
import type { Names } from '../../shared/config/names.js';
import type { Executor } from '../../shared/exec/executor-contract.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { attemptRequest, runLayout } from '../../shared/run-dir/run-layout.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { RunDirectoryCheck } from '../message/run-directory-check.js';
import type { AttemptStore, Envelope, MessagePorts, StartedCommand, WorkerMetrics } from '../ports.js';
import type { Presence } from './redis-presence.js';
import type { Placement } from '../../shared/state/placement.js';
import type { S3OnDemand } from './s3-on-demand.js';

/** `MessagePorts` on the real outside world: Redis, the executor, the result queue, S3, the workdir. */

export interface MessagePortsOptions {
  workerId: string;
  /** Where this worker runs, recorded with each result; undefined: not recorded. */
  placement?: Placement | undefined;
  /** Absolute. */
  workdir: string;
  leaseTtlMs: number;
  /** TASKER_DELIVERY_LIMIT: starts without a result before an attempt is dead-lettered. */
  startLimit: number;
  signingKey: string | undefined;
  names: Pick<Names, 'runQueue'>;
  store: AttemptStore & Pick<RunStore, 'workerPresent' | 'runStanding'>;
  /** This worker's presence in Redis: with it, a dead lease holder is known dead at once. */
  presence: Pick<Presence, 'upSinceMs'>;
  session: Pick<AmqpSession, 'publish'>;
  executor: Pick<Executor, 'start'>;
  s3: Pick<S3OnDemand, 'get'>;
  /** Whether the worker sees a run's directory in its workdir: commands of runs it cannot see are not run here. */
  runDirectories: Pick<RunDirectoryCheck, 'sees' | 'holdMs'>;
  logger: Logger;
  metrics?: WorkerMetrics | undefined;
}

export function createMessagePorts(options: MessagePortsOptions): MessagePorts {
  const { workerId, workdir, signingKey, names, session, executor, s3, logger } = options;
  // With a signing key, results are signed too: the tasker counts only results from real workers.
  const publishSigned = async (runId: string, queue: string, body: Buffer): Promise<void> => {
    try {
      await session.publish('', queue, body, { headers: signatureHeaders(signingKey, body, { purpose: 'result', destination: queue }) });
    } catch (error) {
      if (!(error instanceof UnroutableError)) throw error;
      // The run's queue is its tasker's: gone once the run ended or was purged, or deleted by
      // hand. The worker does not declare it (it would outlive the run); the result is already in
      // Redis, where a running tasker finds it (lost-result-recovery.ts) and declares its queue again.
      logger.warn({ runId, queue }, `RabbitMQ returned a result: the run's queue ${queue} does not exist (the run ended or was purged, or the queue was deleted). The result is recorded in Redis, where the run's tasker finds it`);
    }
  };
  return {
    store: countingFinishedCommands(options.store, options.metrics),
    logger,
    authenticate: authenticator(signingKey),
    watchOutputs: async (spec: OutputSpec) => (await s3.get()).watchOutputs(spec, workdir),
    seesRun: (message: CommandMessage) => options.runDirectories.sees(message),
    unseenHoldMs: (runId: string) => options.runDirectories.holdMs(runId),
    runStanding: (runId: string) => options.store.runStanding(runId),
    workerId,
    placement: options.placement,
    leaseTtlMs: options.leaseTtlMs,
    startLimit: options.startLimit,
    presence: {
      workerPresent: (id: string) => options.store.workerPresent(id),
      ownUpSinceMs: () => options.presence.upSinceMs(),
      nowMs: () => Date.now(),
    },
    sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    logOf: (message: CommandMessage) => runLayout(workdir, message.runId).logRelativePath({ index: message.phaseIndex, name: message.phase }, message.id, message.attempt),
    start(message: CommandMessage, beforeStart?: () => boolean | Promise<boolean>): StartedCommand {
      const { request, log } = attemptRequest(runLayout(workdir, message.runId), {
        phase: { index: message.phaseIndex, name: message.phase },
        commandId: message.id,
        command: message.command,
        attempt: message.attempt,
        timeoutMs: message.timeoutMs ?? undefined,
        killGraceMs: message.killGraceMs,
      });
      const handle = executor.start(request, beforeStart === undefined ? undefined : { beforeStart });
      return { result: handle.result, kill: handle.kill, started: handle.started, whenStarted: handle.whenStarted, log };
    },
    // The reply queue is derived from the run id, never taken from the message: a forged
    // message cannot make a worker write into another queue.
    publishResults: (runId: string, records: readonly ResultRecord[]) => publishSigned(runId, names.runQueue(runId), encodeMessage(resultMessage(runId, records))),
  };
}

/**
 * With a key: only work signed for the routing key it came with. Without (TASKER_SIGNING=off): a
 * signed message is refused, for its tasker has a key this worker lacks (fail closed both ways).
 */
function authenticator(signingKey: string | undefined): (content: Buffer, envelope: Envelope) => string | undefined {
  if (signingKey !== undefined) return (content, envelope) => verifyMessage(signingKey, content, envelope.headers, { purpose: 'work', destination: envelope.routingKey });
  return (_content, envelope) =>
    signatureOf(envelope.headers) === undefined
      ? undefined
      : 'signed message, and this worker runs unsigned (TASKER_SIGNING=off): its tasker has a TASKER_SIGNING_KEY, give this worker the same key';
}

// Metrics count each attempt run here once, with the outcome as recorded (after its uploads,
// which can fail it); a command stopped by the drain is counted as requeued (in
// flow/attempt-control.ts, when it is tracked).
function countingFinishedCommands(store: AttemptStore, metrics: WorkerMetrics | undefined): AttemptStore {
  return {
    beginCommand: (...args) => store.beginCommand(...args),
    recordStart: (...args) => store.recordStart(...args),
    abandonCommand: (...args) => store.abandonCommand(...args),
    renewLease: (...args) => store.renewLease(...args),
    ...(store.lastUsage === undefined ? {} : { lastUsage: store.lastUsage.bind(store) }),
    async finishCommand(runId, record, owner) {
      await store.finishCommand(runId, record, owner);
      metrics?.commandFinished(record.outcome, record.durationMs);
    },
  };
}
