import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from '../observe/logger.js';
import type { TlsFiles } from '../config/tls-config.js';
import { AmqpConnection } from './amqp-connection.js';
import { AmqpConsumers, type Consumer, type DeliveryHandler } from './amqp-consumer.js';
import { AmqpPublisher } from './amqp-publisher.js';
import { probeQueue, type OnOwnChannel, type QueueDepth } from './amqp-topology.js';

export { describeConnectError, isPermanentConnectError } from './amqp-connection.js';
export type { Consumer, Decision, Delivery, DeliveryHandler, Settlement } from './amqp-consumer.js';
export { PublishRefusedError, UnroutableError } from './amqp-publisher.js';

/**
 * The one RabbitMQ adapter. A session keeps a connection that recovers by itself (amqplib's
 * recovery, jittered exponential backoff) and, after every (re)connect, declares the topology
 * again and re-creates every consumer. Publishes wait for a connection and for the broker's
 * confirm, and are retried across reconnects: at-least-once, so consumers deduplicate.
 * The parts: amqp-connection (connecting, reconnecting, start-up errors), amqp-publisher,
 * amqp-consumer; this file puts them together.
 */

export interface AmqpSession {
  /** Rejects with an UnroutableError when the broker confirms the message but routes it to no queue. */
  publish(exchange: string, routingKey: string, content: Buffer, options?: { headers?: Record<string, unknown> }): Promise<void>;
  /**
   * The handler returns its decision; this session settles the message (amqp-consumer.ts).
   * `consumerTag`: how `rabbitmqctl list_consumers` names it (default: the broker's `amq.ctag-...`).
   */
  consume(queue: string, prefetch: number, handler: DeliveryHandler, consumerTag?: string): Promise<Consumer>;
  /** Runs an operation on a short-lived channel (declare, check, delete). Channel errors reject. */
  withChannel<T>(operation: (channel: Channel) => Promise<T>): Promise<T>;
  /** Runs the session's setup again now, as a reconnect does: declares again what someone deleted. */
  redeclare(): Promise<void>;
  isConnected(): boolean;
  close(): Promise<void>;
}

/** A queue's depth, or 'missing' (404); other errors reject. */
export type QueueProbe = (queue: string) => Promise<QueueDepth | 'missing'>;

export interface AmqpSessionOptions {
  url: string;
  /** CA, client certificate and key for amqps:// (AMQP_TLS_*). Default: the system's CAs. */
  tls?: TlsFiles;
  logger: Logger;
  /** Shown by `rabbitmqctl list_connections` and the management UI. */
  connectionName: string;
  /**
   * Declares exchanges and queues; runs after every (re)connect, before consumers start.
   * `probe` looks at a queue on a channel of its own (a 404 closes the channel it happens on);
   * `apart` runs any operation so (a refused declare closes its channel too).
   */
  setup: (channel: Channel, probe: QueueProbe, apart: OnOwnChannel) => Promise<void>;
  /** Retries of the first connection before giving up (start-up fails fast). Default 4. */
  initialRetries?: number;
  /** Publishes awaiting a confirm at once. Default 256. */
  maxUnconfirmed?: number;
  /** The broker cancelled a consumer of this session because its queue was deleted. */
  onQueueDeleted?: (queue: string) => void;
}

export async function createAmqpSession(options: AmqpSessionOptions): Promise<AmqpSession> {
  const { logger } = options;
  const connection = new AmqpConnection({ url: options.url, tls: options.tls, logger, connectionName: options.connectionName, initialRetries: options.initialRetries ?? 4 });
  const publisher = new AmqpPublisher({ connection, logger, maxUnconfirmed: options.maxUnconfirmed ?? 256 });
  const consumers = new AmqpConsumers({ connection, logger, redeclare: (model) => runSetup(model, options.setup), onQueueDeleted: options.onQueueDeleted });
  await connection.open({
    prepare: async (model) => {
      await runSetup(model, options.setup);
      await publisher.openChannel(model);
    },
    restore: (model) => consumers.startAll(model),
    lost: () => {
      publisher.forgetChannel();
      consumers.detachAll();
    },
  });

  let closed: Promise<void> | undefined;
  return {
    publish: (exchange, routingKey, content, publishOptions) => publisher.publish(exchange, routingKey, content, publishOptions?.headers),
    consume: (queue, prefetch, handler, consumerTag) => consumers.add(queue, prefetch, handler, consumerTag),

    async withChannel(operation) {
      await connection.whenConnected();
      const model = connection.current;
      if (model === undefined || closed !== undefined) throw new Error('RabbitMQ session is closed');
      const channel = await model.createChannel();
      // A failed operation (e.g. 404 on checkQueue) closes the channel with an error event.
      channel.on('error', () => undefined);
      try {
        return await operation(channel);
      } finally {
        await channel.close().catch(() => undefined); // already closed by a channel error
      }
    },

    async redeclare() {
      await connection.whenConnected();
      const model = connection.current;
      if (model === undefined || closed !== undefined) throw new Error('RabbitMQ session is closed');
      await runSetup(model, options.setup);
    },

    isConnected: () => closed === undefined && connection.current !== undefined,

    // Idempotent: every caller waits for the same close.
    close() {
      closed ??= (async () => {
        consumers.stopAll();
        await connection.close();
      })();
      return closed;
    },
  };
}

/** Runs the session's setup (topology) on a channel of its own. */
async function runSetup(model: ChannelModel, setup: AmqpSessionOptions['setup']): Promise<void> {
  const setupChannel = await model.createChannel();
  // A refused declaration closes the channel with an error event: the operation's rejection says
  // it; unheard, the event would take the whole connection down (amqplib).
  setupChannel.on('error', () => undefined);
  const apart: OnOwnChannel = async (operation) => {
    const channel = await model.createChannel();
    channel.on('error', () => undefined); // a 404 or a refused declare closes it; the operation rejects
    try {
      return await operation(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  };
  const probe: QueueProbe = (queue) => apart((channel) => probeQueue(channel, queue));
  try {
    await setup(setupChannel, probe, apart);
  } finally {
    await setupChannel.close().catch(() => undefined); // a failed setup may have closed it already
  }
}
