import { describe, expect, inject, it } from 'vitest';
import { UnroutableError, type AmqpSession, type Consumer, type Decision, type Delivery, type DeliveryHandler } from '../../shared/broker/amqp-session.js';
import { InputError } from '../../shared/errors.js';
import { rabbitmqctl } from '../helpers/broker.js';
import { freePort } from '../helpers/distributed.js';
import { nextMessage, readyCount, seen, useSessions } from './amqp-fixture.js';

/**
 * shared/broker/amqp-session.ts in process on the real RabbitMQ: the publisher's confirms and
 * returns; the consumer contract (the handler returns its decision, or throws, and the session
 * settles the message); a consumer whose queue someone deletes; and the session's own life
 * (channels, setup run again, close, a broker it cannot reach).
 */

const ctx = useSessions();

interface Consuming {
  session: AmqpSession;
  consumer: Consumer;
  /** What the handler was given, in order. */
  deliveries: Delivery[];
}

/** A session consuming the test's queue with `handler`. */
async function consumeWith(handler: DeliveryHandler, prefetch = 1): Promise<Consuming> {
  const deliveries: Delivery[] = [];
  const session = await ctx.open();
  const consumer = await session.consume(ctx.queue, prefetch, (delivery) => {
    deliveries.push(delivery);
    return handler(delivery);
  });
  return { session, consumer, deliveries };
}

/** Publishes through a session of its own (the consumer's session is left to consume). */
async function publish(...texts: string[]): Promise<void> {
  const publisher = await ctx.open();
  for (const text of texts) await publisher.publish(ctx.exchange, ctx.routingKey, Buffer.from(text));
}

/** Answers `first` to the first delivery, then acks. */
function firstThenAck(first: () => Promise<Decision>): DeliveryHandler {
  let calls = 0;
  return () => (++calls === 1 ? first() : Promise.resolve('ack'));
}

/** Resolves once `check` holds, or with false after `timeoutMs`. */
async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

describe('publish', () => {
  it('resolves once the broker confirmed: the message is in the queue, with its headers', async () => {
    const session = await ctx.open();
    await session.publish(ctx.exchange, ctx.routingKey, Buffer.from('m1'), { headers: { 'x-run': 'r1' } });
    const message = await nextMessage(ctx, ctx.queue, 0);
    expect(message && [message.content.toString(), message.properties.headers?.['x-run'], message.properties.deliveryMode]).toEqual(['m1', 'r1', 2]);
  });

  it('rejects with an UnroutableError when no queue takes the message', async () => {
    const session = await ctx.open();
    const publishing = session.publish(ctx.exchange, 'no-queue', Buffer.from('m1'));
    await expect(publishing).rejects.toBeInstanceOf(UnroutableError);
    await expect(publishing).rejects.toMatchObject({ code: 'unroutable', exchange: ctx.exchange, routingKey: 'no-queue', replyText: 'NO_ROUTE' });
  });

  it('after a returned message, confirms the next one as usual', async () => {
    const session = await ctx.open();
    await session.publish(ctx.exchange, 'no-queue', Buffer.from('m1')).catch(() => undefined);
    await session.publish(ctx.exchange, ctx.routingKey, Buffer.from('m2'));
    const message = await nextMessage(ctx, ctx.queue, 0);
    expect(message && message.content.toString()).toBe('m2');
  });

  it('to an exchange that does not exist yet, is sent again until it does', async () => {
    const session = await ctx.open();
    const later = `${ctx.exchange}.later`;
    let outcome: unknown = 'pending';
    const publishing = session.publish(later, ctx.routingKey, Buffer.from('m1')).then(
      () => (outcome = 'confirmed'),
      (error: unknown) => (outcome = error),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(outcome).toBe('pending');
    try {
      // It routes as soon as it exists: what it cannot route goes on to the test's exchange.
      await ctx.admin((channel) => channel.assertExchange(later, 'direct', { durable: false, alternateExchange: ctx.exchange }));
      await publishing;
      const message = await nextMessage(ctx, ctx.queue, 0);
      expect([outcome, message && message.content.toString()]).toEqual(['confirmed', 'm1']);
    } finally {
      await ctx.admin((channel) => channel.deleteExchange(later));
    }
  });
});

describe('a consumer settles what its handler decides', () => {
  it('ack: the message leaves the queue', async () => {
    const { session, deliveries } = await consumeWith(async () => 'ack');
    await publish('m1');
    await expect.poll(() => deliveries.length).toBe(1);
    await session.close(); // an unsettled message would be back in the queue now (the next test)
    expect(await readyCount(ctx, ctx.queue)).toBe(0);
  });

  it('nothing yet: the message is back in the queue once the session closes', async () => {
    let answer: (decision: Decision) => void = () => undefined;
    const { session, deliveries } = await consumeWith(() => new Promise<Decision>((resolve) => (answer = resolve)));
    await publish('m1');
    await expect.poll(() => deliveries.length).toBe(1);
    await session.close();
    try {
      expect(await readyCount(ctx, ctx.queue)).toBe(1);
    } finally {
      answer('ack'); // too late: its channel is gone
    }
  });

  it('reject: the message is dead-lettered to the queue’s dead-letter exchange', async () => {
    await consumeWith(async () => 'reject');
    await publish('m1');
    const dead = await nextMessage(ctx, ctx.deadQueue);
    const death = (dead === false ? [] : (dead.properties.headers?.['x-death'] as { reason: string; queue: string }[])).map((d) => [d.reason, d.queue]);
    expect([dead && dead.content.toString(), death]).toEqual(['m1', [['rejected', ctx.queue]]]);
  });

  it('requeue: the message is delivered again, marked redelivered', async () => {
    const { deliveries } = await consumeWith(firstThenAck(async () => 'requeue'));
    await publish('m1');
    await expect.poll(() => seen(deliveries)).toEqual(['m1', 'm1 (redelivered)']);
  });

  it('a settlement: its decision is carried out', async () => {
    await consumeWith(async () => ({ decision: 'reject', afterSettle: async () => undefined }));
    await publish('m1');
    const dead = await nextMessage(ctx, ctx.deadQueue);
    expect(dead && dead.content.toString()).toBe('m1');
  });
});

describe('a consumer requeues the message of a handler that fails', () => {
  it('by rejecting its promise', async () => {
    const { deliveries } = await consumeWith(
      firstThenAck(async () => {
        throw new Error('Redis is gone');
      }),
    );
    await publish('m1');
    await expect.poll(() => seen(deliveries)).toEqual(['m1', 'm1 (redelivered)']);
  });

  it('by throwing before it returns a promise', async () => {
    const { deliveries } = await consumeWith(
      firstThenAck(() => {
        throw new Error('bug');
      }),
    );
    await publish('m1');
    await expect.poll(() => seen(deliveries)).toEqual(['m1', 'm1 (redelivered)']);
  });
});

describe('afterSettle', () => {
  it('runs once the message is settled: with prefetch 1, the next message arrives while it runs', async () => {
    const events: string[] = [];
    await consumeWith(async (delivery) => {
      const text = delivery.content.toString();
      events.push(`handled ${text}`);
      if (text !== 'm1') return 'ack';
      const afterSettle = async (): Promise<void> => {
        const m2 = await eventually(() => events.includes('handled m2'), 2000);
        events.push(m2 ? 'after m1: m2 was delivered' : 'after m1: m2 was not delivered');
      };
      return { decision: 'ack', afterSettle };
    });
    await publish('m1', 'm2');
    await expect.poll(() => events.length, { timeout: 3000 }).toBe(3);
    expect(events).toEqual(['handled m1', 'handled m2', 'after m1: m2 was delivered']);
  });

  it('that fails leaves the message settled and the consumer consuming', async () => {
    const { deliveries, session } = await consumeWith(async (delivery) =>
      delivery.content.toString() === 'm1' ? { decision: 'ack', afterSettle: () => Promise.reject(new Error('result not sent')) } : 'ack',
    );
    await publish('m1', 'm2');
    await expect.poll(() => seen(deliveries)).toEqual(['m1', 'm2']);
    await session.close();
    expect(await readyCount(ctx, ctx.queue)).toBe(0);
  });
});

describe('a cancelled consumer', () => {
  it('is no longer active, and gets nothing published afterwards', async () => {
    const { consumer, deliveries } = await consumeWith(async () => 'ack');
    await consumer.cancel();
    await publish('m1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([consumer.isActive(), deliveries.length, await readyCount(ctx, ctx.queue)]).toEqual([false, 0, 1]);
  });
});

describe('names the broker shows', () => {
  /** The broker's own listing: `rabbitmqctl list_consumers` (queue, tag) of the test's queue. */
  const consumerTags = (): string[] =>
    rabbitmqctl(inject('broker'), ['list_consumers', '--quiet', '--no-table-headers', 'queue_name', 'consumer_tag'], 30_000)
      .split('\n')
      .filter((line) => line.startsWith(`${ctx.queue}\t`))
      .map((line) => line.split('\t')[1]!)
      .sort();

  it('a consumer is listed under the tag it was given; one given none under the broker\'s', async () => {
    const session = await ctx.open();
    await session.consume(ctx.queue, 1, async () => 'ack', 'ns.worker-host-42.default.commands');
    await session.consume(ctx.queue, 1, async () => 'ack');
    const tags = consumerTags();
    expect(tags).toHaveLength(2);
    expect(tags[0]).toMatch(/^amq\.ctag-/);
    expect(tags[1]).toBe('ns.worker-host-42.default.commands');
  });

  it('a cancelled consumer is no longer listed', async () => {
    const session = await ctx.open();
    const consumer = await session.consume(ctx.queue, 1, async () => 'ack', 'ns.worker-host-42.default.commands.extra-1');
    await consumer.cancel();
    expect(consumerTags()).toEqual([]);
  });

  it('the connection is listed with its name among its client properties', async () => {
    await ctx.open({ connectionName: `${ctx.queue} ns=tasker role=worker worker=host-42` });
    const connections = rabbitmqctl(inject('broker'), ['list_connections', '--quiet', '--no-table-headers', 'client_properties'], 30_000).split('\n');
    expect(connections.filter((properties) => properties.includes(`{"connection_name","${ctx.queue} ns=tasker role=worker worker=host-42"}`))).toHaveLength(1);
  });
});

describe('a consumer whose queue is deleted', () => {
  async function consumeThenDelete(): Promise<Delivery[]> {
    const { deliveries } = await consumeWith(async () => 'ack');
    await ctx.admin((channel) => channel.deleteQueue(ctx.queue));
    return deliveries;
  }

  it('calls onQueueDeleted with the queue’s name', async () => {
    await consumeThenDelete();
    await expect.poll(() => ctx.deletedQueues).toEqual([ctx.queue]);
  });

  it('has the session’s setup declare it again, and consumes what is published afterwards', async () => {
    const deliveries = await consumeThenDelete();
    await expect.poll(() => ctx.setupRuns, { timeout: 3000 }).toBe(2);
    await publish('m2');
    await expect.poll(() => seen(deliveries)).toEqual(['m2']);
  });
});

describe('a session', () => {
  it('declares its topology again on redeclare: a deleted queue is back', async () => {
    const session = await ctx.open();
    await ctx.admin((channel) => channel.deleteQueue(ctx.queue));
    await session.redeclare();
    expect(await ctx.admin((channel) => channel.checkQueue(ctx.queue))).toEqual({ queue: ctx.queue, messageCount: 0, consumerCount: 0 });
  });

  it('withChannel rejects with the channel’s error, and the session stays connected', async () => {
    const session = await ctx.open();
    await expect(session.withChannel((channel) => channel.checkQueue(`${ctx.queue}.missing`))).rejects.toMatchObject({ code: 404 });
    expect(session.isConnected()).toBe(true);
  });

  it('once closed, publishes nothing: publish rejects', async () => {
    const session = await ctx.open();
    await session.close();
    await expect(session.publish(ctx.exchange, ctx.routingKey, Buffer.from('m1'))).rejects.toThrow('the RabbitMQ session is closed');
  });

  it('closes once, however often close is called', async () => {
    const session = await ctx.open();
    const [first, second] = [session.close(), session.close()];
    expect(first).toBe(second);
    await first;
  });

  it('that cannot reach the broker fails to open, with an InputError saying so', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
    const opening = ctx.open({ url, initialRetries: 0 });
    await expect(opening).rejects.toBeInstanceOf(InputError);
    await expect(opening).rejects.toThrow(/cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+: connection refused/);
  });
});

