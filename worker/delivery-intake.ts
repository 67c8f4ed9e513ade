import type { Delivery } from '../shared/broker/amqp-session.js';
import type { Logger } from '../shared/observe/logger.js';
import type { Decision, Handled } from './handle-delivery.js';
import type { WorkerMetrics } from './worker-metrics.js';

/**
 * Where the work queue's deliveries arrive: each is handled, then settled as decided. Counts
 * the deliveries in flight, for the drain and the idle exit.
 */

export interface DeliveryIntakeOptions {
  handle(delivery: Delivery): Promise<Handled>;
  logger: Logger;
  metrics?: WorkerMetrics | undefined;
}

export interface DeliveryIntake {
  /** The consumers' handler. */
  receive(delivery: Delivery): void;
  inFlight(): number;
  /** When a delivery last arrived or was settled (ms since the epoch). */
  lastActivityMs(): number;
  /** Resolves once no delivery is in flight. */
  whenIdle(): Promise<void>;
}

export function createDeliveryIntake(options: DeliveryIntakeOptions): DeliveryIntake {
  const { handle, logger, metrics } = options;
  let inFlight = 0;
  let lastActivity = Date.now();
  const idleWaiters: (() => void)[] = [];
  const receive = (delivery: Delivery): void => {
    inFlight++;
    lastActivity = Date.now();
    // Set by the tasker when it publishes (ms since the epoch); absent from foreign messages.
    const publishedAt = Number(delivery.headers['x-published-at']);
    if (publishedAt > 0) metrics?.messagePickedUp(lastActivity - publishedAt);
    handle(delivery)
      .then(
        (handled) => {
          settle(delivery, handled.decision);
          handled.afterSettle?.().catch((error: unknown) =>
            // The result is in Redis: the tasker picks it up from there if this message is lost.
            logger.warn({ err: error }, 'could not send a result to the tasker; it will find it in Redis'),
          );
        },
        (error: unknown) => {
          // Our own failure (Redis or broker gone for good): give the command back, never lose it.
          logger.error({ err: error }, 'could not handle a message; requeueing it');
          delivery.requeue();
        },
      )
      .finally(() => {
        inFlight--;
        lastActivity = Date.now();
        if (inFlight === 0) for (const resolve of idleWaiters.splice(0)) resolve();
      });
  };
  return {
    receive,
    inFlight: () => inFlight,
    lastActivityMs: () => lastActivity,
    whenIdle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
  };
}

function settle(delivery: Delivery, decision: Decision): void {
  if (decision === 'ack') delivery.ack();
  else if (decision === 'reject') delivery.reject();
  else delivery.requeue();
}
