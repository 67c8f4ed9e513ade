import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from '../observe/logger.js';
import type { ConnectionState } from './amqp-connection.js';

/**
 * Publishing with the broker's confirms. A publish waits for a connection and for its confirm,
 * and one that is not confirmed (nack, or its channel lost) is sent again, across reconnects:
 * at-least-once, so receivers deduplicate.
 */

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

  constructor(private readonly options: PublisherOptions) {}

  /** Opens the confirm channel publishes go to: on every (re)connect, and again after the broker closed it. */
  async openChannel(model: ChannelModel): Promise<ConfirmChannel> {
    const confirm = await model.createConfirmChannel();
    confirm.on('error', (error: Error) => this.options.logger.warn({ err: { message: error.message } }, 'publish channel closed by the broker'));
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
      try {
        await publishOnce(channel, exchange, routingKey, content, headers);
        return;
      } catch (error) {
        if (this.options.connection.closing) throw error;
        // Not confirmed (nack or channel lost): publish again; the receiver deduplicates.
        this.options.logger.debug({ err: error, attempt }, 'publish not confirmed; retrying');
        if (this.channel === channel) this.channel = undefined;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * attempt)));
      }
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

function publishOnce(channel: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, headers: Record<string, unknown> | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.publish(exchange, routingKey, content, { persistent: true, contentType: 'application/json', headers }, (error: unknown) => {
        if (error === null || error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
