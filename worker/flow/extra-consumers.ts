import type { Consumer } from '../../shared/broker/amqp-session.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * Consumers beyond the main one, each with prefetch 1: how a worker holds more messages than its
 * concurrency for a while (RabbitMQ keeps a running consumer's prefetch as it was). Held for the
 * lookahead and for each message waiting for another worker's lease; why: docs/architecture.md.
 */

/**
 * Extra consumers open at once, at most (each is a channel). Waits past it open none: a flood of
 * copies of one command (replayed, all waiting for its lease) cannot make the worker open channels
 * without end; each such wait holds a place of the worker's prefetch instead, as any message does.
 */
export const maxExtraConsumers = 32;

export interface ExtraConsumersOptions {
  /** Opens one more consumer of the work queue(s), feeding the same handler as the main one; `serial`: 1 for the first opened, 2 for the next... (its consumer tag). */
  consume(prefetch: number, serial: number): Promise<Consumer>;
  logger: Logger;
  /** Default maxExtraConsumers. */
  max?: number;
}

export interface ExtraConsumers {
  /** One more consumer is wanted (a message to hold); call the returned function (once) when it no longer is. */
  begin(): () => void;
  /** For shutdown: no consumer is opened any more; resolves once the open ones are cancelled. */
  stop(): Promise<void>;
}

export function createExtraConsumers(options: ExtraConsumersOptions): ExtraConsumers {
  const { consume, logger } = options;
  const max = options.max ?? maxExtraConsumers;
  let waiting = 0;
  let stopped = false;
  let capped = false;
  const consumers: Consumer[] = [];
  let opened = 0;
  // One change at a time, in order: the number of consumers follows the number of waits.
  let change = Promise.resolve();
  const reconcile = (): void => {
    change = change
      .then(async () => {
        const wanted = stopped ? 0 : Math.min(waiting, max);
        while (consumers.length < wanted) consumers.push(await consume(1, ++opened));
        while (consumers.length > wanted) await consumers.pop()!.cancel();
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not change the worker\'s extra consumers (lookahead, messages waiting for a lease)'));
  };
  return {
    begin() {
      waiting++;
      logger.debug({ extra: waiting }, 'one more consumer');
      // Said once each time the cap is reached, not for every wait past it.
      if (waiting > max && !capped) logger.warn({ extra: waiting, max }, `more than ${max} messages wait at once (for leases held elsewhere): no more extra consumers are opened; the ones past it wait in the worker's prefetch`);
      capped = waiting > max;
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
