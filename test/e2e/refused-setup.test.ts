import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createAmqpSession, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { declareTopology } from '../../shared/broker/amqp-topology.js';
import { names } from '../../shared/config/names.js';
import { cleanupNamespace, newNamespace, waitFor, withChannel } from '../helpers/distributed.js';

/**
 * A worker of the Kubernetes manifests may not declare the dead-letter queue (docs/kubernetes.md,
 * "Least privilege"): the broker refuses its declaration (403) and closes the setup channel.
 * The session must take that refusal and keep its connection, not lose it and reconnect for ever.
 * On the real broker, without making a user: a dead-letter queue named with the reserved prefix
 * `amq.` is refused with the same 403 ACCESS_REFUSED a missing permission gives.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const logger = pino({ level: 'silent' });
let cleanup: (() => Promise<void>) | undefined;

afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('a setup whose dead-letter queue declaration is refused', () => {
  it('keeps its connection, consumes its work queue, and is not set up again', async () => {
    const ns = newNamespace();
    const refusedDeadQueue = { ...names(ns), deadQueue: `amq.${ns}.commands.dead` };
    let setups = 0;
    const session: AmqpSession = await createAmqpSession({
      url: services.amqpUrl,
      logger,
      connectionName: `test refused setup ${ns}`,
      setup: async (channel, _probe, apart) => {
        setups++;
        await declareTopology(channel, refusedDeadQueue, ['default'], { apart, unbounded: () => undefined });
      },
    });
    cleanup = async () => {
      await session.close();
      await cleanupNamespace(services, ns);
    };
    const received: string[] = [];
    const consumer = await session.consume(names(ns).workQueue, 1, async (delivery) => {
      received.push(delivery.content.toString());
      return 'ack';
    });
    await withChannel(services.amqpUrl, async (channel) => {
      channel.publish(names(ns).exchange, 'run.r1', Buffer.from('hello'));
      await channel.close();
    });
    await waitFor('the message to be consumed', () => received.length === 1, 10_000);
    // Still the first connection: no reconnect, no second setup.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect({ setups, connected: session.isConnected(), consuming: consumer.isActive(), received }).toEqual({ setups: 1, connected: true, consuming: true, received: ['hello'] });
  });
});
