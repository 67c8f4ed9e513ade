import { UnroutableError, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { backoffMs } from '../../shared/config/backoff.js';
import { encodeMessage, maxMessageBytes, type BundleMessage, type CommandMessage, type RunOrigin } from '../../shared/broker/messages.js';
import { signatureHeaders } from '../../shared/broker/signing.js';
import type { Names } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { CommandRef } from '../../shared/state/results.js';

/**
 * Publishes attempts to their phase's pool queue, one per message or several in a bundle, each
 * with this run's queue to reply to, and marks them published in Redis once a queue has them.
 * No message over maxMessageBytes is ever sent: bundles are cut to fit (the bundler, with
 * `attemptBytesBudget`), and a message that would still be larger fails the run instead. A message
 * RabbitMQ returns unrouted (its pool's work queue was deleted while the run goes) is published
 * again once the tasker declared its queues again (below).
 */

export interface BundledAttempt {
  command: CommandRef;
  attempt: number;
}

/** Publishes attempts of one phase in one message; resolves once the broker has it. */
export type PublishBundle = (phase: PhaseSpec, attempts: readonly BundledAttempt[]) => Promise<void>;

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

// ---- a message RabbitMQ returned: published `mandatory`, routed to no queue

/** Returns of one message before the tasker gives up on it. */
export const maxReturns = 5;

/** The wait before publishing a message again after its `returns`-th return: 250 ms, doubling, at most 4 s. */
export function republishDelayMs(returns: number): number {
  return backoffMs(returns, 250, 4000, () => 1); // no jitter: one tasker retries, nobody to spread from
}

export interface ReturnedPublishesOptions {
  session: Pick<AmqpSession, 'redeclare'>;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** What a message holds and where it goes, for the warning. */
export interface Destination {
  pool: string;
  queue: string;
  routingKey: string;
  commandIds: readonly string[];
}

/**
 * Publishes through `publish` until the message is routed to a queue; rejects after `maxReturns`
 * returns. `describe` is called only for a returned message: nothing is spent on the others.
 */
export type PublishRouted = (publish: () => Promise<void>, describe: () => Destination) => Promise<void>;

/**
 * The broker confirms a returned message too: without this it would be dropped in silence and the
 * tasker would wait for its commands for ever. The queues are declared again as on a reconnect
 * (the session's setup: exchanges, the run's pool queues and result queue). A returned message is
 * in no queue, so publishing it again never makes a second copy. After `maxReturns` returns of the
 * same message the publish fails, and with it the run (exit 3, resumable), rather than wait for
 * commands no queue holds.
 */
export function createReturnedPublishes(options: ReturnedPublishesOptions): PublishRouted {
  const { session, logger } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  // Many messages in flight come back together: they share one declaration, and one warning.
  let redeclaring: Promise<void> | undefined;
  const redeclareOnce = (destination: Destination, returns: number, reason: string): Promise<void> => {
    if (redeclaring !== undefined) return redeclaring;
    logger.warn(
      { pool: destination.pool, queue: destination.queue, routingKey: destination.routingKey, commands: destination.commandIds.length, commandId: destination.commandIds[0], returns, reason },
      `RabbitMQ returned a message of ${destination.commandIds.length} command(s) unrouted: the work queue ${destination.queue} does not exist (was it deleted while the run goes?). ` +
        `Declaring the run's queues again and publishing the message again (return ${returns} of at most ${maxReturns})`,
    );
    redeclaring = session.redeclare().finally(() => {
      redeclaring = undefined;
    });
    return redeclaring;
  };

  return async (publish, describe) => {
    for (let returns = 1; ; returns++) {
      try {
        await publish();
        return;
      } catch (error) {
        if (!(error instanceof UnroutableError)) throw error;
        const destination = describe();
        if (returns >= maxReturns) {
          throw new Error(
            `RabbitMQ returned the message of ${describeCommands(destination.commandIds)} ${returns} times: the work queue ${destination.queue} is missing (or not bound to routing key ${destination.routingKey}) ` +
              `even after the tasker declared it again each time. The tasker stops rather than wait for commands no queue holds; check the queue and its bindings (rabbitmqctl list_bindings), then resume the run`,
            { cause: error },
          );
        }
        await redeclareOnce(destination, returns, error.replyText).catch((redeclareError: unknown) =>
          // E.g. the connection dropped meanwhile: a reconnect declares the queues too; the next try tells.
          logger.warn({ err: redeclareError, queue: destination.queue }, 'could not declare the queues again yet'),
        );
        await sleep(republishDelayMs(returns));
      }
    }
  };
}

/** `command f1-L3`, or `commands f1-L3, f1-L4, f1-L5 and 97 more`. */
export function describeCommands(ids: readonly string[]): string {
  if (ids.length === 1) return `command ${ids[0]}`;
  const shown = ids.slice(0, 3).join(', ');
  return ids.length <= 3 ? `commands ${shown}` : `commands ${shown} and ${ids.length - 3} more`;
}
