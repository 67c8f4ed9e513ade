import type { Delivery, Settlement } from '../../shared/broker/amqp-session.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Handled } from '../message/handle-attempt.js';
import type { WorkerMetrics } from '../service/worker-metrics.js';

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
  /** The consumers' handler: the decision is carried out by the broker adapter. */
  receive(delivery: Delivery): Promise<Settlement>;
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
  const receive = async (delivery: Delivery): Promise<Settlement> => {
    inFlight++;
    lastActivity = Date.now();
    // Set by the tasker when it publishes (ms since the epoch); absent from foreign messages.
    const publishedAt = Number(delivery.headers['x-published-at']);
    if (publishedAt > 0) metrics?.messagePickedUp(lastActivity - publishedAt);
    try {
      const { decision, afterSettle } = await handle(delivery);
      return {
        decision,
        afterSettle: afterSettle && (() => afterSettle().catch((error: unknown) =>
          // The result is in Redis: the tasker picks it up from there if this message is lost.
          logger.warn({ err: error }, 'could not send a result to the tasker; it will find it in Redis'),
        )),
      };
    } finally {
      // After the broker adapter settled the message (it does so as this promise resolves): the
      // drain closes the connection once idle, and must not close it under an unsettled message.
      setImmediate(() => {
        inFlight--;
        lastActivity = Date.now();
        if (inFlight === 0) for (const resolve of idleWaiters.splice(0)) resolve();
      });
    }
  };
  return {
    receive,
    inFlight: () => inFlight,
    lastActivityMs: () => lastActivity,
    whenIdle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
  };
}
