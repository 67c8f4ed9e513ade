import { randomBytes } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, beforeEach, expect, inject } from 'vitest';
import { createAmqpSession, type AmqpSession, type AmqpSessionOptions, type Delivery } from '../../shared/broker/amqp-session.js';
import { createLogger } from '../../shared/observe/logger.js';
import { rabbitmqctl } from '../helpers/broker.js';
import { openSockets, socketsSettledAt } from './sockets.js';

/**
 * Sessions of shared/broker/amqp-session.ts on the real RabbitMQ, in this process, each test with
 * exchanges and queues of its own (classic, not durable: declared and deleted in milliseconds,
 * and the adapter does not care which kind it gets). After each test its sessions are closed and
 * checked disconnected, no TCP connection of the test is left open, and its topology is deleted;
 * after the file, the broker lists no connection under the file's name.
 */

const amqpUrl = inject('amqpUrl');
const silentLogger = createLogger({ level: 'silent', pretty: false, name: 'adapter-test' });

/** One test's topology: `queue` is bound to `exchange` by `routingKey`, and dead-letters to `deadQueue`. */
export interface Topology {
  exchange: string;
  routingKey: string;
  queue: string;
  deadExchange: string;
  deadQueue: string;
}

export interface SessionTest extends Topology {
  /** Opens a session whose setup declares the test's topology; closed after the test. */
  open(options?: Partial<AmqpSessionOptions>): Promise<AmqpSession>;
  /** How often the setup of the test's sessions declared the topology. */
  setupRuns: number;
  /** Queues the broker said were deleted under a consumer (onQueueDeleted). */
  deletedQueues: string[];
  /** An operation on a channel of the test's own connection, outside any session (a channel error rejects it). */
  admin<T>(operation: (channel: Channel) => Promise<T>): Promise<T>;
}

const connectionPrefix = `adapter-test-${randomBytes(3).toString('hex')}`;

async function declareTopology(channel: Channel, t: Topology): Promise<void> {
  await channel.assertExchange(t.exchange, 'direct', { durable: false });
  await channel.assertExchange(t.deadExchange, 'fanout', { durable: false });
  await channel.assertQueue(t.deadQueue, { durable: false });
  await channel.bindQueue(t.deadQueue, t.deadExchange, '');
  await channel.assertQueue(t.queue, { durable: false, arguments: { 'x-dead-letter-exchange': t.deadExchange } });
  await channel.bindQueue(t.queue, t.exchange, t.routingKey);
}

/** The next message of `queue` (taken off it), or false; polls until `timeoutMs` for one to arrive. */
export async function nextMessage(ctx: SessionTest, queue: string, timeoutMs = 2000): Promise<GetMessage | false> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = await ctx.admin((channel) => channel.get(queue, { noAck: true }));
    if (message !== false || Date.now() > deadline) return message;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Messages ready in the queue (unacked ones held by a consumer are not counted). */
export async function readyCount(ctx: SessionTest, queue: string): Promise<number> {
  return (await ctx.admin((channel) => channel.checkQueue(queue))).messageCount;
}

/** Deliveries a handler saw, as text, and whether each was a redelivery. */
export function seen(deliveries: Delivery[]): string[] {
  return deliveries.map((d) => `${d.content.toString()}${d.redelivered ? ' (redelivered)' : ''}`);
}

export function useSessions(): SessionTest {
  const ctx = {} as SessionTest;
  let adminConnection: ChannelModel;
  let sessions: AmqpSession[] = [];
  let baseline = 0;
  let testIndex = 0;
  let socketsBeforeAdmin = 0;
  beforeAll(async () => {
    socketsBeforeAdmin = openSockets();
    adminConnection = await amqp.connect(amqpUrl, { clientProperties: { connection_name: `${connectionPrefix}-admin` } });
  });
  beforeEach(() => {
    baseline = openSockets();
    sessions = [];
    const name = `${connectionPrefix}-${++testIndex}`;
    const topology: Topology = { exchange: name, routingKey: 'k', queue: `${name}.q`, deadExchange: `${name}.dead`, deadQueue: `${name}.dead` };
    Object.assign(ctx, topology, {
      setupRuns: 0,
      deletedQueues: [],
      async admin<T>(operation: (channel: Channel) => Promise<T>): Promise<T> {
        const channel = await adminConnection.createChannel();
        channel.on('error', () => undefined); // the operation's promise rejects with it
        try {
          return await operation(channel);
        } finally {
          await channel.close().catch(() => undefined); // already closed by a channel error
        }
      },
      async open(options: Partial<AmqpSessionOptions> = {}): Promise<AmqpSession> {
        const session = await createAmqpSession({
          url: amqpUrl,
          logger: silentLogger,
          connectionName: name,
          setup: async (channel) => {
            await declareTopology(channel, topology);
            ctx.setupRuns++;
          },
          onQueueDeleted: (queue) => ctx.deletedQueues.push(queue),
          ...options,
        });
        sessions.push(session);
        return session;
      },
    });
  });
  afterEach(async () => {
    for (const session of sessions) await session.close();
    await ctx.admin(async (channel) => {
      for (const queue of [ctx.queue, ctx.deadQueue]) await channel.deleteQueue(queue);
      for (const exchange of [ctx.exchange, ctx.deadExchange]) await channel.deleteExchange(exchange);
    });
    expect(sessions.map((session) => session.isConnected())).toEqual(sessions.map(() => false));
    expect(await socketsSettledAt(baseline), 'TCP connections left open by the test').toBe(baseline);
  });
  afterAll(async () => {
    await adminConnection.close();
    // The broker lists a connection until its client closed the socket, which the synchronous
    // rabbitmqctl below would hold up.
    expect(await socketsSettledAt(socketsBeforeAdmin)).toBe(socketsBeforeAdmin);
    // The broker's own word: no connection of this file is left. (Its `name` column is the peer's
    // address; the name a client gives is among its client_properties.)
    const connections = rabbitmqctl(inject('broker'), ['list_connections', '--quiet', '--no-table-headers', 'client_properties'], 30_000).split('\n');
    expect(connections.filter((properties) => properties.includes(connectionPrefix))).toEqual([]);
  });
  return ctx;
}
