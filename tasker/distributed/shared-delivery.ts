import type { Delivery } from '../../shared/broker/amqp-session.js';

/**
 * One delivery per record of a message that carries several (a bundle's results): the message
 * is acked once every record was, or requeued as soon as one is.
 */
export function shareDelivery(delivery: Delivery, count: number): Delivery[] {
  if (count === 1) return [delivery];
  let acked = 0;
  let settled = false;
  const once = (settle: () => void) => () => {
    if (settled) return;
    settled = true;
    settle();
  };
  const requeue = once(() => delivery.requeue());
  const reject = once(() => delivery.reject());
  const ackAll = once(() => delivery.ack());
  const part: Delivery = {
    ...delivery,
    ack: () => {
      if (++acked === count) ackAll();
    },
    requeue,
    reject,
  };
  return Array.from({ length: count }, () => part);
}
