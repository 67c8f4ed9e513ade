import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import type { Logger } from '../observe/logger.js';
import type { ConnectionState } from './amqp-connection.js';

/**
 * Publishing with the broker's confirms. A publish waits for a connection and for its confirm,
 * and one that is not confirmed (nack, or its channel lost) is sent again, across reconnects:
 * at-least-once, so receivers deduplicate.
 *
 * Every publish is `mandatory`: a message that no queue takes (its queue was deleted) comes back
 * as a basic.return, which RabbitMQ sends before the confirm, instead of being dropped while the
 * confirm still says "ack". Such a publish rejects with an UnroutableError; what to do about it
 * (declare the queue again, or not) is the caller's decision.
 *
 * A message the broker refuses outright (larger than its max_message_size, or to an exchange
 * this user may not write to) closes the channel; sent again it would be refused again, for ever.
 * Such a publish rejects with a PublishRefusedError instead; the other publishes the closed
 * channel took with it are sent again as before.
 */

/** The broker confirmed the message but routed it to no queue: nothing will ever consume it. */
export class UnroutableError extends Error {
  readonly code = 'unroutable';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    /** The broker's reason, e.g. NO_ROUTE. */
    readonly replyText: string,
  ) {
    super(`RabbitMQ routed the message to no queue (exchange "${exchange}", routing key ${routingKey}: ${replyText})`);
  }
}

/** The broker refused this message itself: publishing it again cannot help. */
export class PublishRefusedError extends Error {
  readonly code = 'publish-refused';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    readonly bytes: number,
    /** The broker's reason, e.g. "PRECONDITION_FAILED - message size 20971520 is larger than configured max size 16777216". */
    readonly reason: string,
  ) {
    super(`RabbitMQ refused a message of ${bytes} bytes to exchange "${exchange}" (routing key ${routingKey}): ${reason}. ${refusalHint(reason)}`);
  }
}

function refusalHint(reason: string): string {
  if (/ACCESS_REFUSED/.test(reason)) return "The user of AMQP_URL may not publish there: give it write permission on that exchange (rabbitmqctl set_permissions; docs/kubernetes.md lists each program's)";
  return "Sending it again cannot help: raise RabbitMQ's max_message_size above it, or send less in one message";
}

/** The broker's reason for closing a channel (amqplib's channel 'error'), as far as a refusal goes. */
interface CloseReason {
  code: unknown;
  message: string;
}

/**
 * Whether the channel was closed because of this message (`bytes` long, to `exchange`): a 406
 * naming its size, or a 403 naming its exchange (no write permission: every message to that
 * exchange is refused alike). Another message's refusal is not this one's: it is sent again.
 */
export function refusalOf(reason: CloseReason | undefined, bytes: number, exchange: string): string | undefined {
  if (reason === undefined) return undefined;
  const text = /with message "(.*)"$/s.exec(reason.message)?.[1] ?? reason.message;
  const refusedExchange = /access to exchange '([^']*)'/.exec(text)?.[1];
  if (reason.code === 403 && (refusedExchange === undefined || refusedExchange === (exchange === '' ? 'amq.default' : exchange))) return text;
  const size = /message size (\d+) is larger than configured max size/.exec(text)?.[1];
  if (reason.code === 406 && size !== undefined && Number(size) === bytes) return text;
  return undefined;
}

export interface PublisherOptions {
  connection: ConnectionState;
  logger: Logger;
  /** Publishes awaiting a confirm at once; more wait for a slot. */
  maxUnconfirmed: number;
}

export class AmqpPublisher {
  private channel: ConfirmChannel | undefined;
  private unconfirmed = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Tells a returned message from the others: every publish carries the next number as its message id. */
  private sequence = 0;
  /** Message ids the broker returned whose confirm has not come yet; empty unless a queue is missing. */
  private readonly returned = new Map<string, string>();
  /** Why the broker closed a channel, told by its 'error' event before its publishes fail. */
  private readonly closeReasons = new WeakMap<ConfirmChannel, CloseReason>();

  constructor(private readonly options: PublisherOptions) {}

  /** Opens the confirm channel publishes go to: on every (re)connect, and again after the broker closed it. */
  async openChannel(model: ChannelModel): Promise<ConfirmChannel> {
    const confirm = await model.createConfirmChannel();
    confirm.on('error', (error: Error & { code?: unknown }) => {
      this.closeReasons.set(confirm, { code: error.code, message: error.message });
      this.options.logger.warn({ err: { message: error.message } }, 'publish channel closed by the broker');
    });
    // A return comes before the confirm of the same message (AMQP orders them on the channel).
    confirm.on('return', (message: Message) => {
      const id: unknown = message.properties.messageId;
      // basic.return's fields (amqplib passes them on, its types leave replyText out).
      const reason: unknown = (message.fields as { replyText?: unknown }).replyText;
      if (typeof id === 'string') this.returned.set(id, typeof reason === 'string' ? reason : 'returned');
    });
    confirm.on('close', () => {
      if (this.channel === confirm) this.channel = undefined;
    });
    this.channel = confirm;
    return confirm;
  }

  /** The connection is gone, and the channel with it. */
  forgetChannel(): void {
    this.channel = undefined;
  }

  async publish(exchange: string, routingKey: string, content: Buffer, headers: Record<string, unknown> | undefined): Promise<void> {
    while (this.unconfirmed >= this.options.maxUnconfirmed) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.unconfirmed++;
    try {
      await this.publishUntilConfirmed(exchange, routingKey, content, headers);
    } finally {
      this.unconfirmed--;
      this.slotWaiters.shift()?.();
    }
  }

  private async publishUntilConfirmed(exchange: string, routingKey: string, content: Buffer, headers: Record<string, unknown> | undefined): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const channel = await this.usableChannel();
      const messageId = String(++this.sequence);
      try {
        await publishOnce(channel, { exchange, routingKey, content, headers, messageId });
      } catch (error) {
        this.returned.delete(messageId);
        if (this.options.connection.closing) throw error;
        const refused = refusalOf(this.closeReasons.get(channel), content.length, exchange);
        if (refused !== undefined) throw new PublishRefusedError(exchange, routingKey, content.length, refused);
        // Not confirmed (nack or channel lost): publish again; the receiver deduplicates.
        this.options.logger.debug({ err: error, attempt }, 'publish not confirmed; retrying');
        if (this.channel === channel) this.channel = undefined;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * attempt)));
        continue;
      }
      const replyText = this.returned.get(messageId);
      if (replyText === undefined) return;
      this.returned.delete(messageId);
      throw new UnroutableError(exchange, routingKey, replyText);
    }
  }

  /** The open confirm channel, or a new one once the connection allows; throws once the session closes. */
  private async usableChannel(): Promise<ConfirmChannel> {
    const { connection, logger } = this.options;
    for (;;) {
      if (connection.closing) throw new Error('the RabbitMQ session is closed');
      if (this.channel !== undefined) return this.channel;
      const model = connection.current;
      if (model !== undefined) {
        try {
          return await this.openChannel(model);
        } catch (error) {
          logger.debug({ err: error }, 'could not open a publish channel yet');
        }
      }
      await Promise.race([connection.whenConnected(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
  }
}

interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  headers: Record<string, unknown> | undefined;
  messageId: string;
}

function publishOnce(channel: ConfirmChannel, { exchange, routingKey, content, headers, messageId }: Outgoing): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      const properties = { persistent: true, mandatory: true, contentType: 'application/json', headers, messageId };
      channel.publish(exchange, routingKey, content, properties, (error: unknown) => {
        if (error === null || error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
