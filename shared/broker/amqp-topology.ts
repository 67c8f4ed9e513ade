import type { Channel } from 'amqplib';
import { errorMessage } from '../errors.js';
import type { Names } from '../config/names.js';

/**
 * Declares what both tasker and workers rely on. Idempotent, so every (re)connect runs it.
 * Quorum queues only: durable and replicated, and RabbitMQ 4 refuses transient classic ones.
 */

export interface TopologyOptions {
  /** Deliveries of one message before it is dead-lettered (quorum x-delivery-limit). Default 10. */
  deliveryLimit: number;
}

export class TopologyError extends Error {
  readonly code = 'topology';
}

export async function declareTopology(channel: Channel, names: Names, options: TopologyOptions): Promise<void> {
  try {
    await channel.assertExchange(names.exchange, 'topic', { durable: true });
    await channel.assertExchange(names.deadExchange, 'topic', { durable: true });
    await channel.assertQueue(names.workQueue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': names.deadExchange,
        'x-delivery-limit': options.deliveryLimit,
      },
    });
    await channel.bindQueue(names.workQueue, names.exchange, 'run.*');
    await channel.assertQueue(names.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.bindQueue(names.deadQueue, names.deadExchange, '#');
  } catch (error) {
    const message = errorMessage(error);
    if (/PRECONDITION_FAILED/.test(message)) {
      throw new TopologyError(
        `RabbitMQ already has ${names.workQueue} (or its exchanges) with other settings: ${message}. ` +
          'Use the same TASKER_DELIVERY_LIMIT everywhere, or another TASKER_NAMESPACE.',
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * The run's own result queue: results sent by workers, and this run's dead-lettered commands
 * (bound to the dead-letter exchange by the run's routing key). Deleted when the run ends.
 */
export async function declareRunQueue(channel: Channel, names: Names, runId: string): Promise<void> {
  const queue = names.runQueue(runId);
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(queue, names.deadExchange, names.runRoutingKey(runId));
}

export interface QueueDepth {
  ready: number;
  consumers: number;
}

export async function queueDepth(channel: Channel, queue: string): Promise<QueueDepth | undefined> {
  try {
    const reply = await channel.checkQueue(queue);
    return { ready: reply.messageCount, consumers: reply.consumerCount };
  } catch {
    return undefined; // 404: the queue does not exist
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
