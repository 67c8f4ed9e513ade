import amqp from 'amqplib';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createAmqpSession } from '../../shared/broker/amqp-session.js';
import { deadQueueBound, declareRunQueue, declareTopology, onceOnly } from '../../shared/broker/amqp-topology.js';
import { defaultPool, names as namesOf, type Names } from '../../shared/config/names.js';
import { rabbitmqctl } from '../helpers/broker.js';
import { cleanupNamespace, newNamespace, queueCounts, waitFor } from '../helpers/distributed.js';

/**
 * The dead-letter queue's bound, declared on the real broker: a new one is bounded (length, age);
 * one an older version made without the bound is kept and used, with one warning that says how
 * to get the bound, instead of failing the start.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const broker = inject('broker');

let ns: string;
let names: Names;

beforeEach(() => {
  ns = newNamespace();
  names = namesOf(ns);
});
afterEach(() => cleanupNamespace(services, ns, ['r1']));

/** A session that declares the topology as tasker and workers do, with its warnings kept. */
async function declaringSession() {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String((JSON.parse(line) as { msg: string }).msg)) });
  const unbounded = onceOnly((problem) => logger.warn({ queue: names.deadQueue }, problem));
  const session = await createAmqpSession({
    url: services.amqpUrl,
    logger,
    connectionName: `test ${ns}`,
    setup: async (channel, _probe, apart) => {
      await declareTopology(channel, names, [defaultPool], { apart, unbounded });
      // The setup's channel is still usable after the dead queue's declare, refused or not.
      await declareRunQueue(channel, names, 'r1');
    },
  });
  return { session, warnings };
}

/** The dead queue's arguments, as the broker lists them (read only). */
function deadQueueArguments(): string {
  const listing = rabbitmqctl(broker, ['list_queues', '-q', '--no-table-headers', 'name', 'arguments']);
  return listing.split('\n').find((line) => line.startsWith(`${names.deadQueue}\t`)) ?? '';
}

async function sendToDeadExchange(): Promise<void> {
  const connection = await amqp.connect(services.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(names.deadExchange, 'run.r9', Buffer.from('{}'), { persistent: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

describe('the dead-letter queue', () => {
  it('is declared bounded: at most 100000 messages (oldest dropped first) and 14 days', async () => {
    const { session, warnings } = await declaringSession();
    try {
      const args = deadQueueArguments();
      expect(args).toContain(`x-max-length`);
      expect(args).toContain(String(deadQueueBound.maxLength));
      expect(args).toMatch(/x-overflow.*drop-head/);
      expect(args).toContain(String(14 * 24 * 3600 * 1000));
      expect(warnings).toEqual([]);
      await sendToDeadExchange();
      await waitFor('the dead letter kept', async () => (await queueCounts(services.amqpUrl, names.deadQueue))?.messageCount === 1);
    } finally {
      await session.close();
    }
  });

  it('made by an older version without the bound: kept and used, and said once how to bound it', async () => {
    const connection = await amqp.connect(services.amqpUrl);
    const channel = await connection.createChannel();
    await channel.assertQueue(names.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await connection.close();

    const { session, warnings } = await declaringSession();
    try {
      await session.redeclare(); // as after a reconnect: not said again
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`RabbitMQ already has the dead-letter queue ${names.deadQueue} without its bound`);
      expect(warnings[0]).toContain(`rabbitmqctl delete_queue ${names.deadQueue}`);
      expect(deadQueueArguments()).not.toContain('x-max-length');
      await sendToDeadExchange();
      await waitFor('the dead letter kept in the old queue', async () => (await queueCounts(services.amqpUrl, names.deadQueue))?.messageCount === 1);
    } finally {
      await session.close();
    }
  });
});
