import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../observe/logger.js';
import type { ConnectionState } from './amqp-connection.js';

/**
 * Consumers that outlive their channels: every one is started again after each reconnect, and
 * reopened when the broker closes only its channel. A handler returns its decision and this
 * adapter settles the message on the channel it came from; a cancelled consumer's channel stays
 * open until what it delivered is settled.
 */

export interface Delivery {
  content: Buffer;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** The exchange it was published to ('' for the default exchange), as the broker says: a dead letter's is the dead-letter exchange. */
  exchange: string;
  /** The routing key it was published with (a dead letter keeps its original key). */
  routingKey: string;
}

/** What becomes of a delivered message: acked, dead-lettered (never requeued), or back to its queue. */
export type Decision = 'ack' | 'reject' | 'requeue';

/** A decision, and what to do once the message is settled (e.g. send the result it produced). */
export interface Settlement {
  decision: Decision;
  /** Runs after the message is settled; it handles its own errors (one that escapes is logged). */
  afterSettle?: (() => Promise<void>) | undefined;
}

export interface Consumer {
  /** Stops deliveries; the channel closes once the messages already delivered are settled. */
  cancel(): Promise<void>;
  /** True while the broker delivers to it: not cancelled, and its channel is open and consuming. */
  isActive(): boolean;
}

/**
 * The consumer contract: the returned decision is carried out once the promise resolves (it may
 * take as long as it needs: the message stays unacked meanwhile, and is redelivered if the
 * channel goes first); a handler that throws or rejects has its message requeued, never lost.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<Decision | Settlement>;

interface ConsumerContext {
  connection: ConnectionState;
  logger: Logger;
  /** The session's setup (topology), run again before consuming a queue someone deleted. */
  redeclare(model: ChannelModel): Promise<void>;
  /** The broker cancelled a consumer because its queue was deleted. */
  onQueueDeleted?: (queue: string) => void;
}

/** A consumer whose queue was deleted consumes it again, declared anew, after this long. */
const resumeAfterDeleteMs = 1000;

/** The session's consumers, to start them again on every reconnect and stop them on close. */
export class AmqpConsumers {
  private readonly consumers = new Set<QueueConsumer>();

  constructor(private readonly context: ConsumerContext) {}

  async add(queue: string, prefetch: number, handler: DeliveryHandler, tag?: string): Promise<Consumer> {
    const consumer = new QueueConsumer({ queue, prefetch, tag }, handler, this.context);
    this.consumers.add(consumer);
    const model = this.context.connection.current;
    if (model !== undefined) await consumer.start(model);
    return {
      isActive: () => consumer.isActive(),
      cancel: async () => {
        this.consumers.delete(consumer);
        await consumer.cancel();
      },
    };
  }

  /** On every (re)connect, once the connection counts as connected. */
  async startAll(model: ChannelModel): Promise<void> {
    for (const consumer of this.consumers) await consumer.start(model);
  }

  /** The connection is gone, and every consumer's channel with it. */
  detachAll(): void {
    for (const consumer of this.consumers) consumer.detach();
  }

  /** The session closes: no consumer is started or reopened again. */
  stopAll(): void {
    for (const consumer of this.consumers) consumer.stop();
  }
}

class QueueConsumer {
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private cancelled = false;
  /** The broker cancelled this consumer (its queue was deleted): declare the queue before consuming again. */
  private queueDeleted = false;
  /** Delivered on the current channel and not yet acked, rejected or requeued. */
  private unsettled = 0;

  private readonly queue: string;
  private readonly prefetch: number;
  /** The tag asked for (the same on every channel: tags are unique per channel); undefined: the broker's. */
  private readonly tag: string | undefined;

  constructor(
    what: { queue: string; prefetch: number; tag?: string | undefined },
    private readonly handler: DeliveryHandler,
    private readonly context: ConsumerContext,
  ) {
    this.queue = what.queue;
    this.prefetch = what.prefetch;
    this.tag = what.tag;
  }

  isActive(): boolean {
    return !this.cancelled && this.consumerTag !== undefined;
  }

  async start(model: ChannelModel): Promise<void> {
    if (this.cancelled || this.context.connection.closing) return;
    const channel = await model.createChannel();
    this.channel = channel;
    this.unsettled = 0;
    channel.on('error', (error: Error) => {
      // E.g. the broker's consumer timeout: only this channel is closed; the connection lives on.
      this.context.logger.warn({ queue: this.queue, err: { message: error.message } }, 'consumer channel closed by the broker; reopening it');
    });
    channel.on('close', () => this.onChannelClosed(model, channel));
    await channel.prefetch(this.prefetch);
    if (this.queueDeleted) await this.context.redeclare(model);
    await this.consumeOn(model, channel);
  }

  private async consumeOn(model: ChannelModel, channel: Channel): Promise<void> {
    const reply = await channel.consume(
      this.queue,
      (message) => {
        if (message === null) this.onCancelledByBroker(model, channel);
        else this.handle(message, channel);
      },
      this.tag === undefined ? {} : { consumerTag: this.tag },
    );
    this.consumerTag = reply.consumerTag;
    this.queueDeleted = false;
  }

  /**
   * The broker cancelled this consumer: its queue was deleted (rabbitmqctl delete_queue), and
   * the messages ready in it with it. Without this, the consumer would stay silent for good. The
   * channel stays open, so what it delivered still settles on it; the queue is declared again
   * (the session's setup, as on a reconnect) and consumed on the same channel.
   */
  private onCancelledByBroker(model: ChannelModel, channel: Channel): void {
    this.consumerTag = undefined;
    this.queueDeleted = true;
    if (this.cancelled || this.context.connection.closing) return;
    this.context.onQueueDeleted?.(this.queue);
    this.context.logger.warn(
      { queue: this.queue },
      `RabbitMQ cancelled the consumer of ${this.queue}: the queue was deleted. Declaring it again and consuming it in ${resumeAfterDeleteMs / 1000} s`,
    );
    setTimeout(() => {
      this.resumeAfterDelete(model, channel).catch((error: unknown) =>
        // A failed consume closes the channel: onChannelClosed opens another, which consumes again.
        this.context.logger.warn({ err: error, queue: this.queue }, 'could not consume the deleted queue again yet'),
      );
    }, resumeAfterDeleteMs).unref();
  }

  private async resumeAfterDelete(model: ChannelModel, channel: Channel): Promise<void> {
    if (this.cancelled || this.channel !== channel || this.context.connection.current !== model) return;
    await this.context.redeclare(model);
    if (this.cancelled || this.channel !== channel) return;
    await this.consumeOn(model, channel);
    this.context.logger.info({ queue: this.queue }, `consuming ${this.queue} again`);
  }

  detach(): void {
    this.channel = undefined;
    this.consumerTag = undefined;
  }

  stop(): void {
    this.cancelled = true;
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    const { channel, consumerTag } = this;
    if (channel !== undefined && consumerTag !== undefined) {
      await channel.cancel(consumerTag).catch(() => undefined); // channel already gone: nothing to cancel
    }
    if (channel !== undefined) this.closeIfDone(channel);
  }

  /** Reopens the channel half a second after the broker closed it, if the connection is still the same. */
  private onChannelClosed(model: ChannelModel, channel: Channel): void {
    if (this.channel !== channel) return;
    this.detach();
    const { connection, logger } = this.context;
    if (this.cancelled || connection.closing || connection.current !== model) return;
    setTimeout(() => {
      if (connection.current === model) this.start(model).catch((error: unknown) => logger.warn({ err: error, queue: this.queue }, 'could not reopen a consumer; will retry on reconnect'));
    }, 500).unref();
  }

  /** Runs the handler and carries out its decision on the channel the message came from. */
  private handle(message: ConsumeMessage, channel: Channel): void {
    this.unsettled++;
    const { fields } = message;
    const delivery: Delivery = { content: message.content, headers: (message.properties.headers ?? {}) as Record<string, unknown>, redelivered: fields.redelivered, exchange: fields.exchange, routingKey: fields.routingKey };
    const { logger } = this.context;
    Promise.resolve()
      .then(() => this.handler(delivery))
      .then(
        (handled) => {
          const { decision, afterSettle } = typeof handled === 'string' ? { decision: handled, afterSettle: undefined } : handled;
          this.settle(message, channel, decision);
          afterSettle?.().catch((error: unknown) => logger.warn({ err: error, queue: this.queue }, 'a step after settling a message failed'));
        },
        (error: unknown) => {
          // The handler's own failure (Redis or broker gone for good): give the message back, never lose it.
          logger.error({ err: error, queue: this.queue }, 'could not handle a message; requeueing it');
          this.settle(message, channel, 'requeue');
        },
      );
  }

  /** A no-op once the channel is gone: the broker redelivers the message. */
  private settle(message: ConsumeMessage, channel: Channel, decision: Decision): void {
    try {
      if (decision === 'ack') channel.ack(message);
      else if (decision === 'reject') channel.reject(message, false);
      else channel.nack(message, false, true);
    } catch (error) {
      // The channel closed under us: the broker requeues the message, a consumer deduplicates it.
      this.context.logger.debug({ err: error }, 'could not settle a message on a closed channel');
    }
    if (this.channel === channel) this.unsettled--;
    this.closeIfDone(channel);
  }

  /** A cancelled consumer's channel is closed once nothing delivered on it awaits settling. */
  private closeIfDone(channel: Channel): void {
    if (!this.cancelled || this.unsettled > 0 || this.channel !== channel) return;
    this.channel = undefined;
    channel.close().catch(() => undefined); // already closed: nothing to do
  }
}
