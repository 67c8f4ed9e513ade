import type { Decision, Delivery, DeliveryHandler } from '../../shared/broker/amqp-session.js';
import { decodeMessage, messageKind, parseResultMessage, type DecodedMessage } from '../../shared/broker/messages.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { verifyMessage } from '../../shared/broker/signing.js';
import type { Names } from '../../shared/config/names.js';
import { deliverDeadLettered, type DeadLetterOptions } from './dead-letters.js';
import { combinedDecision } from './result-inbox.js';

/**
 * What arrives on the run's own queue: results sent by workers, and our own commands that
 * RabbitMQ dead-lettered. Only those of this run, signed for what they claim to be when a key is
 * set, are delivered: a result signed as a result for this queue, a dead letter that came through
 * the dead-letter exchange signed as work for the routing key it keeps.
 */

export interface RunQueueOptions extends DeadLetterOptions {
  /** TASKER_SIGNING_KEY: only messages signed with it are counted. */
  signingKey: string | undefined;
  /** Where each result goes (the inbox, result-inbox.ts); resolves with the message's decision for it. */
  deliver: (record: ResultRecord) => Promise<Decision>;
  /** The run queue a result must be signed for, the dead-letter exchange a dead letter must come through. */
  names: Pick<Names, 'runQueue' | 'deadExchange'>;
}

function deliverResult(delivery: Delivery, decoded: DecodedMessage, options: RunQueueOptions): Promise<Decision> {
  const parsed = parseResultMessage(delivery.content, decoded);
  if (!parsed.ok || parsed.value.runId !== options.runId) {
    options.logger.warn({ problem: parsed.ok ? `result of run ${parsed.value.runId}` : parsed.problem }, 'ignoring a message that is not a result of this run');
    return Promise.resolve('ack');
  }
  return combinedDecision(parsed.value.records.map((record) => options.deliver(record)));
}

/** Why a message on the run queue is not to be counted, for the log; undefined when it is (its kind decides what it must be). */
function refusal(delivery: Delivery, kind: 'result' | 'work', options: RunQueueOptions): { problem: string; message: string } | undefined {
  const { signingKey, names } = options;
  if (kind === 'work' && delivery.exchange !== names.deadExchange) {
    const from = delivery.exchange === '' ? 'the default exchange' : `exchange ${delivery.exchange}`;
    return { problem: `it came from ${from}, not ${names.deadExchange}`, message: 'ignoring a command on the run queue that was not dead-lettered: a replayed command, not counted' };
  }
  if (signingKey === undefined) return undefined;
  const destination = kind === 'result' ? names.runQueue(options.runId) : delivery.routingKey;
  const problem = verifyMessage(signingKey, delivery.content, delivery.headers, { purpose: kind, destination });
  return problem === undefined ? undefined : { problem, message: `ignoring a message on the run queue that is not signed with TASKER_SIGNING_KEY as ${kind === 'work' ? 'a dead-lettered command' : 'a result'} of this run` };
}

/** The handler of the run queue's consumer: each message's decision, carried out by the broker adapter. */
export function createRunQueueHandler(options: RunQueueOptions): DeliveryHandler {
  const { logger } = options;
  return async (delivery) => {
    // Decoded once: a bundle's results are one large JSON text.
    const decoded = decodeMessage(delivery.content);
    const kind = messageKind(delivery.content, decoded);
    const claimed = kind === 'result' ? 'result' : kind === 'command' || kind === 'bundle' ? 'work' : undefined;
    if (claimed === undefined) {
      logger.warn('ignoring an unknown message on the run queue');
      return 'ack';
    }
    const refused = refusal(delivery, claimed, options);
    if (refused !== undefined) {
      // Not from one of our workers, nor our own command dead-lettered: counting it would let
      // anyone who can publish mark commands as done or failed. The real result is still to come,
      // or found in Redis by the reconciliation (lost-result-recovery.ts).
      logger.error({ problem: refused.problem, kind, routingKey: delivery.routingKey, hint: 'every worker needs the same TASKER_SIGNING_KEY as the tasker' }, refused.message);
      return 'ack';
    }
    if (claimed === 'result') return deliverResult(delivery, decoded, options);
    return deliverDeadLettered(delivery, options).catch((error: unknown) => {
      // Redis did not answer for the worker's record: back to the queue, read again later.
      logger.warn({ err: error }, 'could not look up a dead-lettered command; it is read again later');
      return 'requeue' as const;
    });
  };
}
