import { EventEmitter } from 'node:events';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AmqpPublisher, UnroutableError } from '../../shared/broker/amqp-publisher.js';
import { names } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { PhaseSpec } from '../../tasker/jobs/plan.js';
import { createCommandPublisher } from '../../tasker/distributed/command-publisher.js';
import { createReturnedPublishes, describeCommands, maxReturns, republishDelayMs, type Destination } from '../../tasker/distributed/command-publisher.js';

/**
 * Messages RabbitMQ returns (published mandatory, no queue to take them): the publisher tells
 * them from the rest by message id, and the tasker declares its queues again and publishes such
 * a message again, a bounded number of times, marking it published once.
 */

function fakeLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (_fields: unknown, message: string) => lines.push({ level, message });
  return { lines, warn: at('warn'), info: at('info'), debug: at('debug'), error: at('error') } as unknown as Logger & { lines: typeof lines };
}

const noSleep = (): Promise<void> => Promise.resolve();
const destination = (): Destination => ({ pool: 'default', queue: 'ns.commands', routingKey: 'run.r1', commandIds: ['f1-L1'] });
const returned = (): UnroutableError => new UnroutableError('ns', 'run.r1', 'NO_ROUTE');

/** A confirm channel that returns the messages `unroutable` says, then confirms each (as RabbitMQ does: return first). */
function fakeConfirmChannel(unroutable: (routingKey: string) => boolean): ConfirmChannel & { published: { routingKey: string; options: Record<string, unknown> }[] } {
  const channel = new EventEmitter() as EventEmitter & { published: { routingKey: string; options: Record<string, unknown> }[]; publish: unknown };
  channel.published = [];
  channel.publish = (_exchange: string, routingKey: string, content: Buffer, options: Record<string, unknown>, callback: (error: unknown) => void) => {
    channel.published.push({ routingKey, options });
    setImmediate(() => {
      if (unroutable(routingKey)) channel.emit('return', { content, fields: { replyText: 'NO_ROUTE', routingKey }, properties: { messageId: options['messageId'] } });
      callback(null);
    });
    return true;
  };
  return channel as unknown as ConfirmChannel & { published: typeof channel.published };
}

describe('the publisher and returned messages', () => {
  it('publishes mandatory, and rejects only the publish whose message came back', async () => {
    const channel = fakeConfirmChannel((key) => key === 'gone');
    const model = { createConfirmChannel: () => Promise.resolve(channel) } as unknown as ChannelModel;
    const connection = { current: model, closing: false, whenConnected: () => Promise.resolve() };
    const publisher = new AmqpPublisher({ connection, logger: fakeLogger(), maxUnconfirmed: 8 });
    await publisher.openChannel(model);
    const outcomes = await Promise.allSettled([
      publisher.publish('ns', 'here', Buffer.from('a'), undefined),
      publisher.publish('ns', 'gone', Buffer.from('b'), undefined),
      publisher.publish('ns', 'here', Buffer.from('c'), undefined),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const failure = (outcomes[1] as PromiseRejectedResult).reason as UnroutableError;
    expect(failure).toBeInstanceOf(UnroutableError);
    expect(failure.routingKey).toBe('gone');
    expect(channel.published.every((entry) => entry.options['mandatory'] === true)).toBe(true);
    expect(new Set(channel.published.map((entry) => entry.options['messageId'])).size).toBe(3);
  });
});

describe('publishing a returned message again', () => {
  it('declares the queues again, warns naming the queue, and publishes again until a queue takes it', async () => {
    const logger = fakeLogger();
    let redeclared = 0;
    let tries = 0;
    const publishRouted = createReturnedPublishes({ session: { redeclare: () => Promise.resolve(void redeclared++) }, logger, sleep: noSleep });
    await publishRouted(() => (++tries < 3 ? Promise.reject(returned()) : Promise.resolve()), destination);
    expect(tries).toBe(3);
    expect(redeclared).toBe(2);
    const warnings = logger.lines.filter((line) => line.level === 'warn');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]!.message).toMatch(/returned a message of 1 command\(s\) unrouted: the work queue ns\.commands does not exist/);
  });

  it(`gives up after ${maxReturns} returns, with an error that says what to do`, async () => {
    let tries = 0;
    const publishRouted = createReturnedPublishes({ session: { redeclare: () => Promise.resolve() }, logger: fakeLogger(), sleep: noSleep });
    const alwaysReturned = (): Promise<void> => {
      tries++;
      return Promise.reject(returned());
    };
    await expect(publishRouted(alwaysReturned, destination)).rejects.toThrow(/returned the message of command f1-L1 5 times: the work queue ns\.commands is missing.*resume the run/);
    expect(tries).toBe(maxReturns);
  });

  it('lets other errors through untouched, and declares nothing for them', async () => {
    let redeclared = 0;
    const publishRouted = createReturnedPublishes({ session: { redeclare: () => Promise.resolve(void redeclared++) }, logger: fakeLogger(), sleep: noSleep });
    await expect(publishRouted(() => Promise.reject(new Error('the RabbitMQ session is closed')), destination)).rejects.toThrow('session is closed');
    expect(redeclared).toBe(0);
  });

  it('shares one declaration, and one warning, among the messages returned together', async () => {
    const logger = fakeLogger();
    let redeclared = 0;
    let release = (): void => undefined;
    const redeclare = (): Promise<void> => {
      redeclared++;
      return new Promise<void>((resolve) => (release = resolve));
    };
    const publishRouted = createReturnedPublishes({ session: { redeclare }, logger, sleep: noSleep });
    const returnedOnce = (): (() => Promise<void>) => {
      let tries = 0;
      return () => (++tries === 1 ? Promise.reject(returned()) : Promise.resolve());
    };
    const publishes = [1, 2, 3].map(() => publishRouted(returnedOnce(), destination));
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await Promise.all(publishes);
    expect(redeclared).toBe(1);
    expect(logger.lines.filter((line) => line.level === 'warn')).toHaveLength(1);
  });

  it('waits longer after each return, 4 s at most', () => {
    expect([1, 2, 3, 4, 5, 9].map(republishDelayMs)).toEqual([250, 500, 1000, 2000, 4000, 4000]);
  });

  it('names a few commands of a bundle and counts the rest', () => {
    expect(describeCommands(['f1-L1'])).toBe('command f1-L1');
    expect(describeCommands(['a', 'b'])).toBe('commands a, b');
    expect(describeCommands(['a', 'b', 'c', 'd', 'e'])).toBe('commands a, b, c and 2 more');
  });
});

describe('the command publisher', () => {
  it('marks a bundle published once, after the publish a queue took, never for the returned one', async () => {
    const published: string[] = [];
    const marked: { id: string; attempt: number }[][] = [];
    let tries = 0;
    const session = {
      publish: (_exchange: string, routingKey: string) => {
        published.push(routingKey);
        return ++tries === 1 ? Promise.reject(returned()) : Promise.resolve();
      },
      redeclare: () => Promise.resolve(),
    };
    const store = { markPublished: (_runId: string, attempts: { id: string; attempt: number }[]) => Promise.resolve(void marked.push(attempts)) };
    const ns = names('ns');
    const publish = createCommandPublisher({ session, store, names: ns, runId: 'r1', timeoutMs: undefined, killGraceMs: 1000, upload: undefined, signingKey: undefined, origin: { workdir: '/w', token: 't' }, logger: fakeLogger(), sleep: noSleep });
    const phase = { name: 'sims', index: 1, pool: 'highmem', runsOn: 'workers', commandCount: 2 } as unknown as PhaseSpec;
    const command = (line: number) => ({ id: `f1-L${line}`, command: 'true', file: 'jobs.sh', line, phase: 'sims', phaseIndex: 1 });
    await publish(phase, [
      { command: command(1), attempt: 1 },
      { command: command(2), attempt: 1 },
    ]);
    expect(published).toEqual([ns.poolRoutingKey('highmem', 'r1'), ns.poolRoutingKey('highmem', 'r1')]);
    expect(marked).toEqual([
      [
        { id: 'f1-L1', attempt: 1 },
        { id: 'f1-L2', attempt: 1 },
      ],
    ]);
  });
});
