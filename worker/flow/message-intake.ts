import type { Consumer, Delivery, DeliveryHandler, Settlement } from '../../shared/broker/amqp-session.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { WorkerMetrics } from '../ports.js';
import { createExtraConsumers, type ExtraConsumers } from './extra-consumers.js';

/**
 * Where the work queues' messages arrive, from the main consumer and the extra ones alike: each is
 * handled and its decision handed to the broker adapter. Counts the messages in flight, for the
 * drain and the idle exit.
 */

export interface MessageIntakeOptions {
  /** Opens a consumer of the worker's work queue(s) with this prefetch, feeding `handler`; `extra`: the serial of an extra consumer, undefined for the main one. */
  consume(prefetch: number, handler: DeliveryHandler, extra?: number): Promise<Consumer>;
  /** The main consumer's prefetch: the worker's concurrency. */
  concurrency: number;
  logger: Logger;
  metrics?: WorkerMetrics | undefined;
}

export interface MessageIntake {
  /** Consumers beyond the main one (the lookahead, messages waiting for a lease), feeding this intake. */
  extra: ExtraConsumers;
  /**
   * Starts the main consumer, every message going to `handle`; called once, when the pipeline is
   * built. `idle`: called each time the last message in flight is settled (and its result sent).
   */
  open(handle: (delivery: Delivery) => Promise<Settlement>, idle?: () => void): Promise<Consumer>;
  inFlight(): number;
  /** When a message last arrived or was settled (ms since the epoch). */
  lastActivityMs(): number;
  /** Resolves once no message is in flight. */
  whenIdle(): Promise<void>;
}

/** How long a message counts as in flight while its result is being sent (confirms are quick; a broker gone is not waited for). */
const resultSendWaitMs = 5000;

export function createMessageIntake(options: MessageIntakeOptions): MessageIntake {
  const { logger, metrics } = options;
  let handle: ((delivery: Delivery) => Promise<Settlement>) | undefined;
  let onIdle: (() => void) | undefined;
  let inFlight = 0;
  let lastActivity = Date.now();
  const idleWaiters: (() => void)[] = [];
  const settled = (): void => {
    inFlight--;
    lastActivity = Date.now();
    if (inFlight > 0) return;
    onIdle?.();
    for (const resolve of idleWaiters.splice(0)) resolve();
  };
  const receive = async (delivery: Delivery): Promise<Settlement> => {
    inFlight++;
    lastActivity = Date.now();
    // Set by the tasker when it publishes (ms since the epoch); absent from foreign messages.
    const publishedAt = Number(delivery.headers['x-published-at']);
    const pickedAt = lastActivity;
    let sending = false;
    try {
      const { decision, afterSettle } = await handle!(delivery);
      // One lag per message, where it is settled: one handed back (requeued) is counted by the worker that takes it next.
      if (publishedAt > 0 && decision !== 'requeue') metrics?.messagePickedUp(pickedAt - publishedAt);
      if (afterSettle === undefined) return { decision };
      sending = true;
      // Counted out once its result is sent too (or after resultSendWaitMs): a drain that closed
      // the connection under a result still being confirmed would lose the message's last word.
      let counted = false;
      return {
        decision,
        afterSettle: () =>
          sendResult(afterSettle).finally(() => {
            if (!counted) settled();
            counted = true;
          }),
      };
    } finally {
      // Else counted out once the broker adapter settled the message (it does so as this promise
      // resolves, before any timer): the drain must not close the connection under it.
      if (!sending) setImmediate(settled);
    }
  };
  const sendResult = (send: () => Promise<void>): Promise<void> => {
    const sent = Promise.resolve().then(send).catch((error: unknown) =>
      // The result is in Redis: the tasker picks it up from there if this message is lost.
      logger.warn({ reason: errorMessage(error) }, 'could not send a result to the tasker; it will find it in Redis'),
    );
    return Promise.race([sent, new Promise<void>((resolve) => setTimeout(resolve, resultSendWaitMs).unref())]);
  };
  const extra = createExtraConsumers({ consume: (prefetch, serial) => options.consume(prefetch, receive, serial), logger });
  return {
    extra,
    open(handler, idle) {
      handle = handler;
      onIdle = idle;
      return options.consume(options.concurrency, receive);
    },
    inFlight: () => inFlight,
    lastActivityMs: () => lastActivity,
    whenIdle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
  };
}
