import amqp from 'amqplib';
import { describe, expect, inject, it } from 'vitest';
import { rabbitmqctl, restartBroker } from '../helpers/broker.js';
import { breakableBroker } from '../helpers/private-rabbitmq.js';
import { processesMentioning } from '../helpers/private-servers.js';

/**
 * The broker the fault suite and the restart tests break: when the test setup found the machine's
 * shared RabbitMQ, a node of the tests' own, restarted through its own rabbitmqctl while a
 * connection to the shared broker stays open, and gone without a trace after stop().
 */

/** The private node's name, on the command lines of its processes. */
const nodeName = (amqpUrl: string): string => `tasker-test-${new URL(amqpUrl).port}@`;

describe("the tests' own RabbitMQ node", () => {
  it('is restarted through its own rabbitmqctl, never the shared broker, and stop() leaves no process', { timeout: 120_000 }, async () => {
    const provided = { amqpUrl: inject('amqpUrl'), broker: inject('broker') };
    const shared = await amqp.connect(provided.amqpUrl);
    let sharedClosed = false;
    shared.on('close', () => (sharedClosed = true));
    shared.on('error', () => undefined);
    const own = await breakableBroker(provided);
    try {
      if (!provided.broker.startedByTests) expect(own.amqpUrl).not.toBe(provided.amqpUrl);
      const ownConnection = await amqp.connect(own.amqpUrl);
      const ownClosed = new Promise<void>((resolve) => ownConnection.on('close', () => resolve()));
      ownConnection.on('error', () => undefined);
      await restartBroker(own.broker, 200);
      await ownClosed; // the restart closed the connections to the node it restarted
      expect(rabbitmqctl(own.broker, ['list_queues', '--quiet', 'name'])).toBeDefined();
      await (await amqp.connect(own.amqpUrl)).close();
      const channel = await shared.createChannel(); // the shared connection still works
      await channel.close();
      expect(sharedClosed).toBe(false);
      if (!provided.broker.startedByTests) expect(processesMentioning(nodeName(own.amqpUrl)).length).toBeGreaterThan(0);
    } finally {
      await own.stop();
      await shared.close();
    }
    if (!provided.broker.startedByTests) expect(processesMentioning(nodeName(own.amqpUrl))).toEqual([]);
  });
});
