import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type RecoveringChannelModel } from 'amqplib';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { redactUrl } from '../config/urls.js';

/**
 * The one RabbitMQ adapter. A session keeps a connection that recovers by itself (amqplib's
 * recovery, jittered exponential backoff) and, after every (re)connect, declares the topology
 * again and re-creates every consumer. Publishes wait for a connection and for the broker's
 * confirm, and are retried across reconnects: at-least-once, so consumers deduplicate.
 */

export interface Delivery {
  content: Buffer;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** Settles on the channel the message came from; a no-op once that channel is gone (the broker redelivers it). */
  ack(): void;
  /** Dead-letters the message (never requeued). */
  reject(): void;
  /** Back to the queue for another consumer. */
  requeue(): void;
}

export interface Consumer {
  /** Stops deliveries; the channel closes once the messages already delivered are settled. */
  cancel(): Promise<void>;
  /** True while the broker delivers to it: not cancelled, and its channel is open and consuming. */
  isActive(): boolean;
}

export interface AmqpSession {
  publish(exchange: string, routingKey: string, content: Buffer, options?: { headers?: Record<string, unknown> }): Promise<void>;
  consume(queue: string, prefetch: number, handler: (delivery: Delivery) => void): Promise<Consumer>;
  /** Runs an operation on a short-lived channel (declare, check, delete). Channel errors reject. */
  withChannel<T>(operation: (channel: Channel) => Promise<T>): Promise<T>;
  isConnected(): boolean;
  close(): Promise<void>;
}

export interface AmqpSessionOptions {
  url: string;
  logger: Logger;
  /** Shown by `rabbitmqctl list_connections` and the management UI. */
  connectionName: string;
  /** Declares exchanges and queues; runs after every (re)connect, before consumers start. */
  setup: (channel: Channel) => Promise<void>;
  /** Retries of the first connection before giving up (start-up fails fast). Default 4. */
  initialRetries?: number;
  /** Publishes awaiting a confirm at once. Default 256. */
  maxUnconfirmed?: number;
}

/** How long a connection attempt may wait for the broker's AMQP handshake (or the TCP connect). */
const handshakeTimeoutMs = 5000;

// amqplib's wording for a server that is not RabbitMQ, or not its AMQP port.
const notAmqp = /Frame size|Expected ConnectionStart|Expected connection\.|Socket closed abruptly during opening handshake/i;

/**
 * Start-up failures that another attempt cannot fix: the user has to change AMQP_URL (or the
 * broker's users and vhosts). The start fails on the first one instead of after every retry.
 */
export function isPermanentConnectError(error: unknown): boolean {
  return /ACCESS_REFUSED|authenticat|NOT_ALLOWED|Expected ConnectionOpenOk|PRECONDITION.FAILED|ETIMEDOUT/i.test(errorMessage(error)) || notAmqp.test(errorMessage(error));
}

/** Turns amqplib's connection errors into one sentence a user can act on. */
export function describeConnectError(url: string, error: unknown): string {
  const message = errorMessage(error);
  const where = redactUrl(url);
  if (/ACCESS_REFUSED|403|authenticat/i.test(message)) return `RabbitMQ at ${where} refused the user name or password (check AMQP_URL)`;
  if (/ECONNREFUSED/.test(message)) return `cannot reach RabbitMQ at ${where}: connection refused (is it running? check AMQP_URL)`;
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return `cannot reach RabbitMQ at ${where}: unknown host (check AMQP_URL)`;
  if (/PRECONDITION.FAILED/i.test(message)) {
    const detail = /PRECONDITION_FAILED - ([^"]*)/.exec(message)?.[1] ?? message;
    return `RabbitMQ at ${where} already has this namespace's queues with other settings (${detail}); TASKER_DELIVERY_LIMIT must be the same for every tasker and worker of a namespace, or use another TASKER_NAMESPACE`;
  }
  // A refused vhost closes the connection in place of ConnectionOpenOk; amqplib drops the reason.
  if (/vhost|NOT_ALLOWED|Expected ConnectionOpenOk/i.test(message)) {
    return `RabbitMQ at ${where} refused the virtual host "${amqpVhost(url)}": it does not exist, or the user may not use it (check the path of AMQP_URL; no path means "/")`;
  }
  if (notAmqp.test(message)) return `${where} does not answer as RabbitMQ does (is that RabbitMQ's AMQP port, usually 5672? check AMQP_URL)`;
  if (/ETIMEDOUT|timeout/i.test(message)) {
    return `cannot reach RabbitMQ at ${where}: no answer within ${handshakeTimeoutMs / 1000} s (check the host and port in AMQP_URL, and that no firewall drops the connection)`;
  }
  return `cannot connect to RabbitMQ at ${where}: ${message.replaceAll(url, where)}`;
}

function amqpVhost(url: string): string {
  try {
    const path = new URL(url).pathname.slice(1);
    return path === '' ? '/' : decodeURIComponent(path);
  } catch {
    return '?'; // checked before connecting: not reached
  }
}

interface ConsumerSpec {
  queue: string;
  prefetch: number;
  handler: (delivery: Delivery) => void;
  channel: Channel | undefined;
  consumerTag: string | undefined;
  cancelled: boolean;
  /** Delivered on the current channel and not yet acked, rejected or requeued. */
  unsettled: number;
}

export async function createAmqpSession(options: AmqpSessionOptions): Promise<AmqpSession> {
  const { logger } = options;
  const consumers = new Set<ConsumerSpec>();
  let model: ChannelModel | undefined;
  let publishChannel: ConfirmChannel | undefined;
  let closing = false;
  let connectedWaiters: (() => void)[] = [];
  let failuresLogged = 0;

  const whenConnected = (): Promise<void> =>
    model !== undefined ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve));

  /** A cancelled consumer's channel is closed once nothing delivered on it awaits settling. */
  const closeIfDone = (spec: ConsumerSpec, channel: Channel): void => {
    if (!spec.cancelled || spec.unsettled > 0 || spec.channel !== channel) return;
    spec.channel = undefined;
    channel.close().catch(() => undefined); // already closed: nothing to do
  };

  const wrap = (message: ConsumeMessage, channel: Channel, spec: ConsumerSpec): Delivery => {
    let settled = false;
    spec.unsettled++;
    const settle = (action: () => void): void => {
      if (settled) return;
      settled = true;
      try {
        action();
      } catch (error) {
        // The channel closed under us: the broker requeues the message, a consumer deduplicates it.
        logger.debug({ err: error }, 'could not settle a message on a closed channel');
      }
      if (spec.channel === channel) spec.unsettled--;
      closeIfDone(spec, channel);
    };
    return {
      content: message.content,
      headers: (message.properties.headers ?? {}) as Record<string, unknown>,
      redelivered: message.fields.redelivered,
      ack: () => settle(() => channel.ack(message)),
      reject: () => settle(() => channel.reject(message, false)),
      requeue: () => settle(() => channel.nack(message, false, true)),
    };
  };

  const startConsumer = async (connection: ChannelModel, spec: ConsumerSpec): Promise<void> => {
    if (spec.cancelled || closing) return;
    const channel = await connection.createChannel();
    spec.channel = channel;
    spec.unsettled = 0;
    channel.on('error', (error: Error) => {
      // E.g. the broker's consumer timeout: only this channel is closed; the connection lives on.
      logger.warn({ queue: spec.queue, err: { message: error.message } }, 'consumer channel closed by the broker; reopening it');
    });
    channel.on('close', () => {
      if (spec.channel !== channel) return;
      spec.channel = undefined;
      spec.consumerTag = undefined;
      if (spec.cancelled || closing || model !== connection) return;
      setTimeout(() => {
        if (model === connection) startConsumer(connection, spec).catch((error: unknown) => logger.warn({ err: error, queue: spec.queue }, 'could not reopen a consumer; will retry on reconnect'));
      }, 500).unref();
    });
    await channel.prefetch(spec.prefetch);
    const reply = await channel.consume(spec.queue, (message) => {
      if (message === null) return; // consumer cancelled by the broker (queue deleted)
      spec.handler(wrap(message, channel, spec));
    });
    spec.consumerTag = reply.consumerTag;
  };

  const onConnect = async (connection: ChannelModel): Promise<void> => {
    // Socket errors surface here before 'close'; recovery handles the close. Unlistened, they would crash the process.
    connection.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'RabbitMQ connection error'));
    const setupChannel = await connection.createChannel();
    try {
      await options.setup(setupChannel);
    } finally {
      await setupChannel.close().catch(() => undefined); // a failed setup may have closed it already
    }
    const confirm = await connection.createConfirmChannel();
    confirm.on('error', (error: Error) => logger.warn({ err: { message: error.message } }, 'publish channel closed by the broker'));
    confirm.on('close', () => {
      if (publishChannel === confirm) publishChannel = undefined;
    });
    publishChannel = confirm;
    model = connection;
    for (const spec of consumers) await startConsumer(connection, spec);
    if (failuresLogged > 0) logger.info('reconnected to RabbitMQ');
    failuresLogged = 0;
    const waiters = connectedWaiters;
    connectedWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const recovering: RecoveringChannelModel = await amqp.connect(options.url, {
    clientProperties: { connection_name: options.connectionName },
    // Small frames (acks, confirms, results) must not wait for Nagle's algorithm.
    noDelay: true,
    // A host that drops packets, or a server that never answers the handshake, fails the attempt.
    timeout: handshakeTimeoutMs,
    recovery: {
      initialDelay: 200,
      maxDelay: 10_000,
      initialMaxRetries: options.initialRetries ?? 4,
      maxRetries: Infinity,
      // Resolves at once, so the listener below is in place before the first attempt.
      waitForConnect: false,
      setup: async (connection: ChannelModel) => {
        await onConnect(connection);
      },
    },
  });
  let connectedOnce = false;
  let permanentFailure: Error | undefined;
  recovering.on('connect-failed', (error: Error) => {
    if (connectedOnce || closing || !isPermanentConnectError(error)) return;
    // Wrong password, unknown vhost, not RabbitMQ: retrying only makes the user wait.
    permanentFailure = error;
    recovering.close().catch(() => undefined); // never connected: nothing to close cleanly
  });
  try {
    await recovering.waitForConnect();
    connectedOnce = true;
  } catch (error) {
    const failure = permanentFailure ?? error;
    throw new InputError('config', describeConnectError(options.url, failure), { cause: failure });
  }
  recovering.on('disconnect', (error: Error) => {
    model = undefined;
    publishChannel = undefined;
    for (const spec of consumers) {
      spec.channel = undefined;
      spec.consumerTag = undefined;
    }
    if (closing) return;
    // Log the first failure of an outage only; reconnection goes on with backoff.
    if (failuresLogged++ === 0) logger.warn({ err: { message: error?.message } }, 'lost the connection to RabbitMQ; reconnecting');
  });
  recovering.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'RabbitMQ connection error'));

  const getPublishChannel = async (): Promise<ConfirmChannel> => {
    for (;;) {
      if (closing) throw new Error('the RabbitMQ session is closed');
      if (publishChannel !== undefined) return publishChannel;
      if (model !== undefined) {
        const connection = model;
        try {
          const confirm = await connection.createConfirmChannel();
          confirm.on('error', (error: Error) => logger.warn({ err: { message: error.message } }, 'publish channel closed by the broker'));
          confirm.on('close', () => {
            if (publishChannel === confirm) publishChannel = undefined;
          });
          publishChannel = confirm;
          return confirm;
        } catch (error) {
          logger.debug({ err: error }, 'could not open a publish channel yet');
        }
      }
      await Promise.race([whenConnected(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
  };

  const maxUnconfirmed = options.maxUnconfirmed ?? 256;
  let unconfirmed = 0;
  const slotWaiters: (() => void)[] = [];

  const publishOnce = (channel: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, headers: Record<string, unknown> | undefined): Promise<void> =>
    new Promise((resolve, reject) => {
      try {
        channel.publish(exchange, routingKey, content, { persistent: true, contentType: 'application/json', headers }, (error: unknown) => {
          if (error === null || error === undefined) resolve();
          else reject(error instanceof Error ? error : new Error(String(error)));
        });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });

  return {
    async publish(exchange, routingKey, content, publishOptions) {
      while (unconfirmed >= maxUnconfirmed) await new Promise<void>((resolve) => slotWaiters.push(resolve));
      unconfirmed++;
      try {
        for (let attempt = 1; ; attempt++) {
          const channel = await getPublishChannel();
          try {
            await publishOnce(channel, exchange, routingKey, content, publishOptions?.headers);
            return;
          } catch (error) {
            if (closing) throw error;
            // Not confirmed (nack or channel lost): publish again; the receiver deduplicates.
            logger.debug({ err: error, attempt }, 'publish not confirmed; retrying');
            if (publishChannel === channel) publishChannel = undefined;
            await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * attempt)));
          }
        }
      } finally {
        unconfirmed--;
        slotWaiters.shift()?.();
      }
    },

    async consume(queue, prefetch, handler) {
      const spec: ConsumerSpec = { queue, prefetch, handler, channel: undefined, consumerTag: undefined, cancelled: false, unsettled: 0 };
      consumers.add(spec);
      if (model !== undefined) await startConsumer(model, spec);
      return {
        isActive: () => !spec.cancelled && spec.consumerTag !== undefined,
        async cancel() {
          spec.cancelled = true;
          consumers.delete(spec);
          const { channel, consumerTag } = spec;
          if (channel !== undefined && consumerTag !== undefined) {
            await channel.cancel(consumerTag).catch(() => undefined); // channel already gone: nothing to cancel
          }
          if (channel !== undefined) closeIfDone(spec, channel);
        },
      };
    },

    async withChannel(operation) {
      await whenConnected();
      const connection = model!;
      const channel = await connection.createChannel();
      // A failed operation (e.g. 404 on checkQueue) closes the channel with an error event.
      channel.on('error', () => undefined);
      try {
        return await operation(channel);
      } finally {
        await channel.close().catch(() => undefined); // already closed by a channel error
      }
    },

    isConnected: () => model !== undefined,

    async close() {
      if (closing) return;
      closing = true;
      for (const spec of consumers) spec.cancelled = true;
      for (const resolve of connectedWaiters) resolve();
      await recovering.close().catch((error: unknown) => logger.debug({ err: error }, 'error while closing the RabbitMQ connection'));
    },
  };
}
