import type { Decision, Delivery, DeliveryHandler } from '../../shared/broker/amqp-session.js';
import { messageKind, parseResultMessage } from '../../shared/broker/messages.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { verifyBody } from '../../shared/broker/signing.js';
import { deliverDeadLettered, type DeadLetterOptions } from './dead-letters.js';
import { combinedDecision } from './combined-decision.js';

/**
 * What arrives on the run's own queue: results sent by workers, and our own commands that
 * RabbitMQ dead-lettered. Only those of this run, signed when a key is set, are delivered.
 */

export interface RunQueueOptions extends DeadLetterOptions {
  /** TASKER_SIGNING_KEY: only messages signed with it are counted. */
  signingKey: string | undefined;
  /** Where each result goes (the inbox, result-inbox.ts); resolves with the message's decision for it. */
  deliver: (record: ResultRecord) => Promise<Decision>;
}

function deliverResult(delivery: Delivery, options: RunQueueOptions): Promise<Decision> {
  const parsed = parseResultMessage(delivery.content);
  if (!parsed.ok || parsed.value.runId !== options.runId) {
    options.logger.warn({ problem: parsed.ok ? `result of run ${parsed.value.runId}` : parsed.problem }, 'ignoring a message that is not a result of this run');
    return Promise.resolve('ack');
  }
  return combinedDecision(parsed.value.records.map((record) => options.deliver(record)));
}

/** The handler of the run queue's consumer: each message's decision, carried out by the broker adapter. */
export function createRunQueueHandler(options: RunQueueOptions): DeliveryHandler {
  const { logger, signingKey } = options;
  return async (delivery) => {
    const forged = signingKey === undefined ? undefined : verifyBody(signingKey, delivery.content, delivery.headers);
    if (forged !== undefined) {
      // Not from one of our workers (or our own command, dead-lettered): counting it would let
      // anyone who can publish mark commands as done or failed. The real result is still to come,
      // or found in Redis by the reconciliation (lost-result-recovery.ts).
      logger.error({ problem: forged, hint: 'every worker needs the same TASKER_SIGNING_KEY as the tasker' }, 'ignoring a message on the run queue that is not signed with TASKER_SIGNING_KEY');
      return 'ack';
    }
    const kind = messageKind(delivery.content);
    if (kind === 'result') return deliverResult(delivery, options);
    if (kind === 'command' || kind === 'bundle') {
      return deliverDeadLettered(delivery, options).catch((error: unknown) => {
        // Redis did not answer for the worker's record: back to the queue, read again later.
        logger.warn({ err: error }, 'could not look up a dead-lettered command; it is read again later');
        return 'requeue' as const;
      });
    }
    logger.warn('ignoring an unknown message on the run queue');
    return 'ack';
  };
}
