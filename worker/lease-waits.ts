import type { Consumer } from '../shared/broker/amqp-session.js';
import type { Logger } from '../shared/observe/logger.js';

/**
 * Messages that wait for another worker's lease (a redelivered copy of a command running, or
 * held by a worker that died, elsewhere) hold neither a slot nor the worker's prefetch: for each
 * of them the worker opens one more consumer (prefetch 1), as the lookahead does, and cancels it
 * when the wait ends. So a worker given a dead worker's messages keeps running the queue's other
 * commands while it waits for their holder to be known dead (or for their lease to expire).
 *
 * Why not hand the message back to the queue instead: a quorum queue (RabbitMQ 3.10 and later)
 * gives a returned message straight back to the first consumer with room, which is this worker,
 * so a message requeued at once comes back at once (a hot loop), and one held a while first
 * holds the prefetch for that while. Why one consumer per waiting message: RabbitMQ keeps a
 * running consumer's prefetch as it was (see lookahead.ts). How many can wait at once is bounded
 * by what the workers they wait for held unacked (their prefetch).
 */

export interface LeaseWaitsOptions {
  /** Opens one more consumer of the work queue(s), feeding the same handler as the main one. */
  consume(prefetch: number): Promise<Consumer>;
  logger: Logger;
}

export interface LeaseWaits {
  /** A message starts waiting for a lease; call the returned function (once) when it stops. */
  begin(): () => void;
  /** For shutdown: no consumer is opened any more; resolves once the open ones are cancelled. */
  stop(): Promise<void>;
}

export function createLeaseWaits(options: LeaseWaitsOptions): LeaseWaits {
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
      .catch((error: unknown) => logger.warn({ err: error }, 'could not change the consumers of messages waiting for a lease'));
  };
  return {
    begin() {
      waiting++;
      logger.debug({ waiting }, 'a message waits for a lease: one more consumer meanwhile');
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
