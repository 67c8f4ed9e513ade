import type { Decision } from '../../shared/broker/amqp-session.js';

/**
 * One decision for a message that carries several records (a bundle's results): ack once every
 * record's decision is ack; requeue or reject as soon as one record's decision is.
 */
export function combinedDecision(decisions: readonly Promise<Decision>[]): Promise<Decision> {
  if (decisions.length === 1) return decisions[0]!;
  return new Promise((resolve, reject) => {
    let acked = 0;
    for (const decision of decisions) {
      decision.then((one) => {
        if (one !== 'ack') resolve(one);
        else if (++acked === decisions.length) resolve('ack');
      }, reject);
    }
  });
}
