import { describe, expect, it } from 'vitest';
import type { Consumer } from '../../shared/broker/amqp-session.js';
import type { Logger } from '../../shared/observe/logger.js';
import { createExtraConsumers, maxExtraConsumers } from '../../worker/flow/extra-consumers.js';
import { deferred } from '../helpers/deferred.js';

/**
 * The extra consumers with a fake `consume` whose opens and cancels the test finishes by hand:
 * what test/unit/lease-holder.test.ts does not cover (order of changes, failures, stop's wait).
 */

function fakeLogger(): Logger & { warnings: { fields: unknown; message: string }[] } {
  const warnings: { fields: unknown; message: string }[] = [];
  const ignore = (): void => undefined;
  return { warnings, warn: (fields: unknown, message: string) => warnings.push({ fields, message }), debug: ignore, info: ignore } as unknown as Logger & { warnings: typeof warnings };
}

/** Lets a few rounds of resolved promises run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A consume whose every open and cancel waits for the test: `events` says what was asked and what finished. */
function manualConsume() {
  const events: string[] = [];
  const opens: ReturnType<typeof deferred<Consumer>>[] = [];
  const cancels: ReturnType<typeof deferred<void>>[] = [];
  let opened = 0;
  const consume = (prefetch: number): Promise<Consumer> => {
    const id = ++opened;
    events.push(`consume#${id}(${prefetch})`);
    const open = deferred<Consumer>();
    opens.push(open);
    return open.promise.then(() => ({
      isActive: () => true,
      cancel: () => {
        events.push(`cancel#${id}`);
        const cancel = deferred();
        cancels.push(cancel);
        return cancel.promise;
      },
    }));
  };
  /** Finishes the `index`th open (counting from 0), once it was asked for. */
  const finishOpen = async (index: number, error?: Error): Promise<void> => {
    await settle();
    if (error === undefined) opens[index]!.resolve({} as Consumer);
    else opens[index]!.reject(error);
    await settle();
  };
  const finishCancel = async (index: number): Promise<void> => {
    await settle();
    cancels[index]!.resolve();
    await settle();
  };
  return { events, consume, finishOpen, finishCancel };
}

describe('extra consumers', () => {
  it('opens them one at a time: the second waits until the first is open', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    extra.begin();
    extra.begin();
    await settle();
    expect(fake.events).toEqual(['consume#1(1)']);
    await fake.finishOpen(0);
    expect(fake.events).toEqual(['consume#1(1)', 'consume#2(1)']);
  });

  it('numbers each consumer it opens (its consumer tag), a new number for one opened after another was cancelled', async () => {
    const serials: number[] = [];
    const consumer: Consumer = { isActive: () => true, cancel: () => Promise.resolve() };
    const extra = createExtraConsumers({ consume: (_prefetch, serial) => (serials.push(serial), Promise.resolve(consumer)), logger: fakeLogger() });
    const end = extra.begin();
    extra.begin();
    await settle();
    end();
    await settle();
    extra.begin();
    await settle();
    expect(serials).toEqual([1, 2, 3]);
  });

  it('opens nothing for a wait that began and ended before the change ran', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    extra.begin()();
    await settle();
    expect(fake.events).toEqual([]);
  });

  it('cancels a consumer ended while it was being opened, once it is open', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    const end = extra.begin();
    await settle();
    end();
    await settle();
    expect(fake.events).toEqual(['consume#1(1)']);
    await fake.finishOpen(0);
    expect(fake.events).toEqual(['consume#1(1)', 'cancel#1']);
  });

  it('opens no consumer for a wait that began while a cancel was going on, until that cancel is done', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    const end = extra.begin();
    await fake.finishOpen(0);
    end();
    await settle();
    extra.begin();
    await settle();
    expect(fake.events).toEqual(['consume#1(1)', 'cancel#1']);
    await fake.finishCancel(0);
    expect(fake.events).toEqual(['consume#1(1)', 'cancel#1', 'consume#2(1)']);
  });

  it('resolves stop only once the open consumers are cancelled', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    extra.begin();
    await fake.finishOpen(0);
    let stopped = false;
    void extra.stop().then(() => void (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    await fake.finishCancel(0);
    expect(stopped).toBe(true);
  });

  it('cancels on stop a consumer that was still being opened', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    extra.begin();
    await settle();
    const stopped = extra.stop();
    await fake.finishOpen(0);
    await fake.finishCancel(0);
    await stopped;
    expect(fake.events).toEqual(['consume#1(1)', 'cancel#1']);
  });

  it('logs a failing consume as a warning instead of throwing', async () => {
    const logger = fakeLogger();
    const extra = createExtraConsumers({ consume: () => Promise.reject(new Error('channel closed')), logger });
    extra.begin();
    await settle();
    expect(logger.warnings).toEqual([{ fields: { err: new Error('channel closed') }, message: expect.stringContaining('could not change the worker\'s extra consumers') }]);
  });

  it('resolves stop, logging it, when a cancel fails', async () => {
    const logger = fakeLogger();
    const consumer: Consumer = { isActive: () => true, cancel: () => Promise.reject(new Error('connection lost')) };
    const extra = createExtraConsumers({ consume: () => Promise.resolve(consumer), logger });
    extra.begin();
    await settle();
    await extra.stop();
    expect(logger.warnings.map((warning) => warning.fields)).toEqual([{ err: new Error('connection lost') }]);
  });

  it('keeps working after a failing consume: the next change opens what is still wanted', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    extra.begin();
    await fake.finishOpen(0, new Error('channel closed'));
    extra.begin();
    await settle();
    await fake.finishOpen(1);
    // Both waits are served: the failed one's consumer is opened again with the new one's.
    expect(fake.events).toEqual(['consume#1(1)', 'consume#2(1)', 'consume#3(1)']);
  });

  it('does not open a consumer again when a wait is ended after stop', async () => {
    const fake = manualConsume();
    const extra = createExtraConsumers({ consume: fake.consume, logger: fakeLogger() });
    const end = extra.begin();
    await fake.finishOpen(0);
    const stopped = extra.stop();
    await fake.finishCancel(0);
    await stopped;
    end();
    await settle();
    expect(fake.events).toEqual(['consume#1(1)', 'cancel#1']);
  });
});

describe('extra consumers: the cap', () => {
  it('opens at most `max` consumers, warns once when waits pass it, and opens again below it', async () => {
    const opened: string[] = [];
    const logger = fakeLogger();
    const consumer = (id: number): Consumer => ({ isActive: () => true, cancel: () => Promise.resolve(void opened.push(`cancel#${id}`)) });
    let count = 0;
    const extra = createExtraConsumers({ consume: () => Promise.resolve(consumer(++count)).finally(() => opened.push(`consume#${count}`)), logger, max: 2 });
    const ends = [extra.begin(), extra.begin(), extra.begin(), extra.begin()];
    await settle();
    expect(opened).toEqual(['consume#1', 'consume#2']);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]!.message).toContain('more than 2 messages wait at once');
    ends[3]!();
    ends[2]!();
    await settle();
    // Still two waits: nothing to cancel or open.
    expect(opened).toEqual(['consume#1', 'consume#2']);
    ends[1]!();
    await settle();
    expect(opened).toEqual(['consume#1', 'consume#2', 'cancel#2']);
    await extra.stop();
  });

  it('is 32 by default: a flood of waits opens no more channels than that', async () => {
    let opened = 0;
    const consumer: Consumer = { isActive: () => true, cancel: () => Promise.resolve() };
    const extra = createExtraConsumers({ consume: () => Promise.resolve(void opened++).then(() => consumer), logger: fakeLogger() });
    for (let i = 0; i < maxExtraConsumers * 3; i++) extra.begin();
    for (let i = 0; i < 200 && opened < maxExtraConsumers; i++) await settle();
    await settle();
    expect(opened).toBe(maxExtraConsumers);
    expect(maxExtraConsumers).toBe(32);
    await extra.stop();
  });
});
