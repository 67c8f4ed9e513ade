import type { Channel } from 'amqplib';
import { errorMessage } from '../errors.js';
import type { Names } from '../config/names.js';

/**
 * Declares what both tasker and workers rely on. Idempotent, so every (re)connect runs it.
 * Quorum queues only: durable and replicated, and RabbitMQ 4 refuses transient classic ones.
 */

/**
 * The work queue's own delivery limit (quorum `x-delivery-limit`): a backstop only. Poison is
 * decided by the workers, which count how often a command *started* without a result
 * (TASKER_DELIVERY_LIMIT, worker/message/lease.ts). RabbitMQ before 4.3 counts every return of a
 * message (a hand-back, a drain, a closed channel, a broker restart, a consumer timeout) as a
 * delivery, so a healthy command under worker churn can pile up dozens; 4.3 and later count only
 * failed returns (`basic.reject`, a closed channel; not `basic.nack`, which workers use to hand a
 * message back). Either way this limit is reached only by a message that brings its worker down
 * before the start can be counted, and it is the same on every version (RabbitMQ 4 would
 * otherwise apply its default of 20). One fixed value, so TASKER_DELIVERY_LIMIT can change
 * without redeclaring the queue.
 */
export const brokerDeliveryLimit = 1000;

export class TopologyError extends Error {
  readonly code = 'topology';
}

/**
 * The dead-letter queue's bound: it keeps what workers refused (invalid, not authentic, replayed)
 * for inspection, never for ever, so a flood of refused messages cannot fill the broker. Quorum
 * queues (RabbitMQ 3.10 and later) take both; over the length, the oldest go first (drop-head).
 */
export const deadQueueBound = { maxLength: 100_000, maxAgeMs: 14 * 24 * 3600 * 1000 } as const;

/** Runs an operation on a channel of its own: a declare the broker refuses closes the channel it happens on. */
export type OnOwnChannel = <T>(operation: (channel: Channel) => Promise<T>) => Promise<T>;

/** How the dead-letter queue is declared: apart, so that an older queue without the bound does not fail the rest. */
export interface DeadQueueDeclare {
  apart: OnOwnChannel;
  /** Told that the queue exists without the bound (an older version made it): the caller says so once. */
  unbounded(problem: string): void;
}

/**
 * Exchanges, the dead-letter queue and the work queue of every pool in `pools` (default: the
 * default pool only). The tasker declares the pools its run uses, so no command is unroutable
 * before a worker of its pool starts; a worker declares the pools it consumes.
 */
export async function declareTopology(channel: Channel, names: Names, pools: readonly string[], deadQueue: DeadQueueDeclare): Promise<void> {
  try {
    await channel.assertExchange(names.exchange, 'topic', { durable: true });
    await channel.assertExchange(names.deadExchange, 'topic', { durable: true });
    for (const pool of pools) await declarePoolQueue(channel, names, pool);
    if (await declareDeadQueue(names, deadQueue)) await channel.bindQueue(names.deadQueue, names.deadExchange, '#');
  } catch (error) {
    const message = errorMessage(error);
    if (/PRECONDITION_FAILED/.test(message)) {
      const queues = pools.map((pool) => names.poolQueue(pool)).join(', ');
      throw new TopologyError(
        `RabbitMQ already has ${queues} (or its exchanges) with other settings: ${message}. ` +
          `Made by an older tasker (whose x-delivery-limit was TASKER_DELIVERY_LIMIT; it is now ${brokerDeliveryLimit})? ` +
          `Once it is empty, delete it (rabbitmqctl delete_queue ${names.workQueue}) and start again, or use another TASKER_NAMESPACE.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * The dead-letter queue, bounded. One made before the bound (its arguments differ:
 * PRECONDITION_FAILED) is kept as it is, unbounded, rather than failing the start: it holds what
 * an operator may still want to read; `unbounded` says how to get the bound. A user that may not
 * configure it (a worker of the Kubernetes manifests, which consumes only its pool's queue:
 * docs/kubernetes.md, "Least privilege") is refused (403), and leaves it, and its binding, to
 * the tasker, which may: returns false then.
 */
async function declareDeadQueue(names: Names, deadQueue: DeadQueueDeclare): Promise<boolean> {
  const args = { 'x-queue-type': 'quorum', 'x-max-length': deadQueueBound.maxLength, 'x-overflow': 'drop-head', 'x-message-ttl': deadQueueBound.maxAgeMs };
  try {
    await deadQueue.apart((channel) => channel.assertQueue(names.deadQueue, { durable: true, arguments: args }));
  } catch (error) {
    if ((error as { code?: unknown }).code === 403) return false;
    const message = errorMessage(error);
    if (!/PRECONDITION_FAILED/.test(message)) throw error;
    deadQueue.unbounded(
      `RabbitMQ already has the dead-letter queue ${names.deadQueue} without its bound (made by an older version: ${message}); it is used as it is, and keeps every dead letter until deleted. ` +
        `To bound it (${deadQueueBound.maxLength} messages, ${deadQueueBound.maxAgeMs / 86_400_000} days): once it is empty (or its messages read), rabbitmqctl delete_queue ${names.deadQueue}; the next tasker or worker declares it bounded`,
    );
  }
  return true;
}

/** A warning said once per process (every reconnect declares the topology again). */
export function onceOnly(say: (problem: string) => void): (problem: string) => void {
  let said = false;
  return (problem) => {
    if (!said) say(problem);
    said = true;
  };
}

/** Every pool's work queue has the same arguments: only its name and binding differ. */
async function declarePoolQueue(channel: Channel, names: Names, pool: string): Promise<void> {
  const queue = names.poolQueue(pool);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': names.deadExchange,
      'x-delivery-limit': brokerDeliveryLimit,
    },
  });
  await channel.bindQueue(queue, names.exchange, names.poolBinding(pool));
}

/**
 * The run's own result queue: results sent by workers, and this run's dead-lettered commands
 * (bound to the dead-letter exchange by the run's routing key). Deleted when the run ends.
 */
export async function declareRunQueue(channel: Channel, names: Names, runId: string): Promise<void> {
  const queue = names.runQueue(runId);
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(queue, names.deadExchange, names.runRoutingKey(runId));
  // A dead-lettered command keeps the key it was published with; a non-default pool's has this shape.
  await channel.bindQueue(queue, names.deadExchange, names.poolRoutingKey('*', runId));
}

export interface QueueDepth {
  ready: number;
  consumers: number;
}

/** The queue's depth; undefined when it does not exist, or the look failed. */
export async function queueDepth(channel: Channel, queue: string): Promise<QueueDepth | undefined> {
  const depth = await probeQueue(channel, queue).catch(() => undefined);
  return depth === 'missing' ? undefined : depth;
}

/**
 * Before the pool queues are declared: each one that does not exist goes to `missing` (someone
 * deleted it, with the commands that waited in it, or it was never made; the callers count it
 * as lost in Redis, shared/redis/redis-queue-losses.ts). Never throws: a failed look is no loss.
 */
export async function reportMissingPoolQueues(
  probe: (queue: string) => Promise<QueueDepth | 'missing'>,
  names: Names,
  pools: readonly string[],
  missing: (queue: string) => Promise<void>,
): Promise<void> {
  for (const pool of pools) {
    const queue = names.poolQueue(pool);
    if ((await probe(queue).catch(() => undefined)) === 'missing') await missing(queue).catch(() => undefined);
  }
}

/** The queue's depth, or 'missing' when the broker says it does not exist (404); any other error rejects. */
export async function probeQueue(channel: Channel, queue: string): Promise<QueueDepth | 'missing'> {
  try {
    const reply = await channel.checkQueue(queue);
    return { ready: reply.messageCount, consumers: reply.consumerCount };
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return 'missing';
    throw error;
  }
}

export async function deleteQueue(channel: Channel, queue: string): Promise<boolean> {
  try {
    await channel.deleteQueue(queue);
    return true;
  } catch {
    return false; // already gone
  }
}
