import type { AmqpSession } from '../../shared/broker/amqp-session.js';
import { encodeMessage, maxMessageBytes, type BundleMessage, type CommandMessage, type RunOrigin } from '../../shared/broker/messages.js';
import { signatureHeaders } from '../../shared/broker/signing.js';
import type { Names } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { BundledAttempt, PublishBundle } from './phase-bundler.js';
import { createReturnedPublishes, describeCommands } from './returned-publishes.js';

/**
 * Publishes attempts to their phase's pool queue, one per message or several in a bundle, each
 * with this run's queue to reply to, and marks them published in Redis once a queue has them.
 * No message over maxMessageBytes is ever sent: bundles are cut to fit (phase-bundler.ts, with
 * `attemptBytesBudget`), and a message that would still be larger fails the run instead.
 */

export interface CommandPublisherOptions {
  session: Pick<AmqpSession, 'publish' | 'redeclare'>;
  store: Pick<RunStore, 'markPublished'>;
  names: Names;
  runId: string;
  timeoutMs: number | undefined;
  killGraceMs: number;
  /** Outputs workers upload after each success; undefined: none. */
  upload: OutputSpec | undefined;
  /** TASKER_SIGNING_KEY: commands are signed with it; undefined: unsigned. */
  signingKey: string | undefined;
  /** The tasker's workdir and the run token: workers run a command only where they find the token. */
  origin: RunOrigin;
  logger: Logger;
  /** False: the attempts are not marked published in Redis (copies of attempts marked already). Default true. */
  markPublished?: boolean;
  /** Waits between publishes of a returned message (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
}

function messageOf(phase: PhaseSpec, attempts: readonly BundledAttempt[], options: MessageParts): CommandMessage | BundleMessage {
  const shared = {
    v: 1 as const,
    runId: options.runId,
    phase: phase.name,
    phaseIndex: phase.index,
    timeoutMs: options.timeoutMs ?? null,
    killGraceMs: options.killGraceMs,
    replyTo: options.names.runQueue(options.runId),
    ...(options.upload === undefined ? {} : { upload: options.upload }),
    origin: options.origin,
  };
  const attemptsOf = attempts.map(({ command, attempt }) => ({ id: command.id, attempt, command: command.command, file: command.file, line: command.line }));
  return attemptsOf.length === 1 ? { ...shared, kind: 'command', ...attemptsOf[0]! } : { ...shared, kind: 'bundle', commands: attemptsOf };
}

type MessageParts = Pick<CommandPublisherOptions, 'runId' | 'timeoutMs' | 'killGraceMs' | 'names' | 'upload' | 'origin'>;

/** What the attempts of one message of this phase may take: the message's limit less the rest of it. */
export function attemptBytesBudget(phase: PhaseSpec, options: MessageParts): number {
  return maxMessageBytes - encodeMessage(messageOf(phase, [], options)).length;
}

export function createCommandPublisher(options: CommandPublisherOptions): PublishBundle {
  const { session, store, names, runId } = options;
  const publishRouted = createReturnedPublishes({ session, logger: options.logger, sleep: options.sleep });
  return async (phase, attempts) => {
    // x-published-at: workers report how long commands waited in the queue (metrics). It is
    // outside the signed body: a wrong value can only skew a metric.
    const body = encodeMessage(messageOf(phase, attempts, options));
    if (body.length > maxMessageBytes) {
      throw new Error(
        `the message of ${describeCommands(attempts.map(({ command }) => command.id))} would take ${body.length} bytes, more than the ${maxMessageBytes} (4 MiB) a message to the workers may: ` +
          'the run\'s settings in every message (S3_UPLOAD patterns, S3_PREFIX, the workdir path) leave too little room for the command. Shorten them, then resume the run',
      );
    }
    // The pool's key reaches its queue only (names.ts); a bundle never spans pools, being one phase's.
    const routingKey = names.poolRoutingKey(phase.pool, runId);
    // Signed as work for this routing key: a copy published anywhere else does not verify.
    const headers = { 'x-published-at': Date.now(), ...signatureHeaders(options.signingKey, body, { purpose: 'work', destination: routingKey }) };
    const destination = () => ({ pool: phase.pool, queue: names.poolQueue(phase.pool), routingKey, commandIds: attempts.map(({ command }) => command.id) });
    await publishRouted(() => session.publish(names.exchange, routingKey, body, { headers }), destination);
    // Marked once a queue has it (confirmed, not returned): a crash in between means a duplicate, never a loss.
    if (options.markPublished === false) return;
    await store.markPublished(
      runId,
      attempts.map(({ command, attempt }) => ({ id: command.id, attempt })),
    );
  };
}
