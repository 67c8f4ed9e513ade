import type { Consumer } from '../../shared/broker/amqp-session.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * Consumers beyond the main one, each with prefetch 1: how a worker holds more messages than its
 * concurrency for a while. RabbitMQ keeps a running consumer's prefetch as it was, so one more
 * message held means one more consumer, cancelled when no longer wanted. Two holders:
 * - the lookahead (lookahead.ts): while commands are short, one message ahead, so the next
 *   command starts the moment one ends;
 * - messages waiting for another worker's lease (begin-attempt.ts: a redelivered copy of a
 *   command running, or held by a worker that died, elsewhere): each holds neither a slot nor the
 *   worker's prefetch, so a worker given a dead worker's messages keeps running the queue's other
 *   commands while it waits for their holder to be known dead (or for their lease to expire).
 *
 * Why not hand a waiting message back to the queue instead: a quorum queue (RabbitMQ 3.10 and
 * later) gives a returned message straight back to the first consumer with room, which is this
 * worker, so a message requeued at once comes back at once (a hot loop), and one held a while
 * first holds the prefetch for that while. How many can wait at once is bounded by what the
 * workers they wait for held unacked (their prefetch).
 */

export interface ExtraConsumersOptions {
  /** Opens one more consumer of the work queue(s), feeding the same handler as the main one. */
  consume(prefetch: number): Promise<Consumer>;
  logger: Logger;
}

export interface ExtraConsumers {
  /** One more consumer is wanted (a message to hold); call the returned function (once) when it no longer is. */
  begin(): () => void;
  /** For shutdown: no consumer is opened any more; resolves once the open ones are cancelled. */
  stop(): Promise<void>;
}

export function createExtraConsumers(options: ExtraConsumersOptions): ExtraConsumers {
  const { consume, logger } = options;
  let waiting = 0;
  let stopped = false;
  const consumers: Consumer[] = [];
  // One change at a time, in order: the number of consumers follows the number of waits.
  let change = Promise.resolve();
  const reconcile = (): void => {
    change = change
      .then(async () => {
        const wanted = stopped ? 0 : waiting;
        while (consumers.length < wanted) consumers.push(await consume(1));
        while (consumers.length > wanted) await consumers.pop()!.cancel();
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not change the worker\'s extra consumers (lookahead, messages waiting for a lease)'));
  };
  return {
    begin() {
      waiting++;
      logger.debug({ extra: waiting }, 'one more consumer');
      reconcile();
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        waiting--;
        reconcile();
      };
    },
    stop() {
      stopped = true;
      reconcile();
      return change;
    },
  };
}
