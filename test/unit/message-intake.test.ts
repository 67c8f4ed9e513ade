import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Consumer, Delivery, DeliveryHandler, Settlement } from '../../shared/broker/amqp-session.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { WorkerMetrics } from '../../worker/ports.js';
import { createMessageIntake } from '../../worker/flow/message-intake.js';
import { deferred } from '../helpers/deferred.js';

/** The worker's message intake with a fake `consume` that hands the test each consumer's handler: no broker. */

const consumer: Consumer = { cancel: () => Promise.resolve(), isActive: () => true };

function fakes(options: { logger?: Logger } = {}) {
  const opened: { prefetch: number; handler: DeliveryHandler }[] = [];
  const lags: number[] = [];
  const metrics: Pick<WorkerMetrics, 'messagePickedUp'> = { messagePickedUp: (lagMs) => void lags.push(lagMs) };
  const intake = createMessageIntake({
    consume: (prefetch, handler) => {
      opened.push({ prefetch, handler });
      return Promise.resolve(consumer);
    },
    concurrency: 3,
    logger: options.logger ?? pino({ level: 'silent' }),
    metrics: metrics as WorkerMetrics,
  });
  /** Delivers to the main consumer's handler. */
  const deliver = (delivery: Delivery = delivered()): Promise<Settlement> => opened[0]!.handler(delivery) as Promise<Settlement>;
  return { intake, opened, lags, deliver };
}

function delivered(headers: Record<string, unknown> = {}): Delivery {
  return { content: Buffer.from('{}'), headers, redelivered: false, exchange: 'tasker', routingKey: 'run.r1' };
}

/** One macrotask later: after the intake's setImmediate. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(() => vi.useRealTimers());

describe('the message intake', () => {
  it('opens the main consumer with prefetch = concurrency, and returns it', async () => {
    const f = fakes();
    const opened = await f.intake.open(async () => ({ decision: 'ack' }));
    expect([f.opened.map((one) => one.prefetch), opened]).toEqual([[3], consumer]);
  });

  it('hands each delivery to the handler given to open', async () => {
    const f = fakes();
    const seen: Delivery[] = [];
    await f.intake.open(async (delivery) => {
      seen.push(delivery);
      return { decision: 'ack' };
    });
    const delivery = delivered({ a: 1 });
    await f.deliver(delivery);
    expect(seen).toEqual([delivery]);
  });

  it('passes the handler\'s decision through', async () => {
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'requeue' }));
    expect(await f.deliver()).toEqual({ decision: 'requeue', afterSettle: undefined });
  });

  it('passes the afterSettle through: calling it runs the handler\'s', async () => {
    const f = fakes();
    const sent: string[] = [];
    await f.intake.open(async () => ({ decision: 'ack', afterSettle: async () => void sent.push('result') }));
    await (await f.deliver()).afterSettle!();
    expect(sent).toEqual(['result']);
  });

  it('catches an afterSettle that rejects: the returned one resolves, and the failure is logged', async () => {
    const warnings: unknown[] = [];
    const logger = { warn: (fields: unknown) => void warnings.push(fields) } as unknown as Logger;
    const f = fakes({ logger });
    await f.intake.open(async () => ({ decision: 'ack', afterSettle: () => Promise.reject(new Error('broker gone')) }));
    await expect((await f.deliver()).afterSettle!()).resolves.toBeUndefined();
    // What went wrong, without a stack: a result not sent is found in Redis.
    expect(warnings).toEqual([{ reason: 'broker gone' }]);
  });

  it('counts a message in flight until its result is sent, so a drain does not close the connection under it', async () => {
    const f = fakes();
    let send!: () => void;
    await f.intake.open(async () => ({ decision: 'ack', afterSettle: () => new Promise<void>((resolve) => (send = resolve)) }));
    const settlement = await f.deliver();
    let idle = false;
    void f.intake.whenIdle().then(() => (idle = true));
    const sending = settlement.afterSettle!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.intake.inFlight()).toBe(1);
    expect(idle).toBe(false);
    send();
    await sending;
    expect(f.intake.inFlight()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(true);
  });

  it('feeds the extra consumers\' deliveries, with prefetch 1, to the same handler', async () => {
    const f = fakes();
    const seen: Delivery[] = [];
    await f.intake.open(async (delivery) => {
      seen.push(delivery);
      return { decision: 'ack' };
    });
    f.intake.extra.begin();
    await nextMacrotask();
    const delivery = delivered({ via: 'extra' });
    await f.opened[1]!.handler(delivery);
    expect([f.opened[1]!.prefetch, seen]).toEqual([1, [delivery]]);
  });
});

describe('messages in flight', () => {
  it('counts a message in flight while its handler runs', async () => {
    const f = fakes();
    const handled = deferred<Settlement>();
    await f.intake.open(() => handled.promise);
    void f.deliver();
    expect(f.intake.inFlight()).toBe(1);
  });

  it('still counts it once the handler settled, until a macrotask later (the adapter settles it first)', async () => {
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    await f.deliver();
    expect(f.intake.inFlight()).toBe(1);
  });

  it('counts it out a macrotask after its handler settled', async () => {
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    await f.deliver();
    await nextMacrotask();
    expect(f.intake.inFlight()).toBe(0);
  });

  it('counts out a message whose handler threw, which rejects to the adapter', async () => {
    const f = fakes();
    await f.intake.open(() => Promise.reject(new Error('redis gone')));
    await expect(f.deliver()).rejects.toThrow('redis gone');
    await nextMacrotask();
    expect(f.intake.inFlight()).toBe(0);
  });

  it('resolves whenIdle at once when nothing is in flight', async () => {
    const f = fakes();
    let idle = false;
    void f.intake.whenIdle().then(() => void (idle = true));
    await Promise.resolve();
    expect(idle).toBe(true);
  });

  it('does not resolve whenIdle while a handler runs', async () => {
    const f = fakes();
    await f.intake.open(() => new Promise<Settlement>(() => undefined));
    void f.deliver();
    let idle = false;
    void f.intake.whenIdle().then(() => void (idle = true));
    await nextMacrotask();
    expect(idle).toBe(false);
  });

  it('does not resolve whenIdle in the same macrotask as the handler settled', async () => {
    const f = fakes();
    const handled = deferred<Settlement>();
    await f.intake.open(() => handled.promise);
    const settlement = f.deliver();
    let idle = false;
    void f.intake.whenIdle().then(() => void (idle = true));
    handled.resolve({ decision: 'ack' });
    await settlement;
    await Promise.resolve();
    expect(idle).toBe(false);
  });

  it('resolves whenIdle a macrotask after the last handler settled', async () => {
    const f = fakes();
    const handled = deferred<Settlement>();
    await f.intake.open(() => handled.promise);
    const settlement = f.deliver();
    let idle = false;
    void f.intake.whenIdle().then(() => void (idle = true));
    handled.resolve({ decision: 'ack' });
    await settlement;
    await nextMacrotask();
    expect(idle).toBe(true);
  });

  it('calls the idle callback given to open each time the last message in flight is counted out', async () => {
    const f = fakes();
    const first = deferred<Settlement>();
    const second = deferred<Settlement>();
    const handlers = [first, second];
    let idleCalls = 0;
    await f.intake.open(() => handlers.shift()!.promise, () => void idleCalls++);
    const one = f.deliver();
    const two = f.deliver();
    first.resolve({ decision: 'ack' });
    await one;
    await nextMacrotask();
    expect(idleCalls).toBe(0);
    second.resolve({ decision: 'ack' });
    await two;
    await nextMacrotask();
    expect(idleCalls).toBe(1);
  });

  it('sets lastActivityMs when a message arrives', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 });
    const f = fakes();
    await f.intake.open(() => new Promise<Settlement>(() => undefined));
    vi.setSystemTime(1_005_000);
    void f.deliver();
    expect(f.intake.lastActivityMs()).toBe(1_005_000);
  });

  it('sets lastActivityMs when a message is counted out', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 });
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    const settlement = f.deliver();
    vi.setSystemTime(1_009_000);
    await settlement;
    await nextMacrotask();
    expect(f.intake.lastActivityMs()).toBe(1_009_000);
  });
});

describe('the pick-up lag', () => {
  it('reports how long after its publication a message arrived', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 2_000_000 });
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    await f.deliver(delivered({ 'x-published-at': 1_999_250 }));
    expect(f.lags).toEqual([750]);
  });

  it('reads a header sent as a string', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 2_000_000 });
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    await f.deliver(delivered({ 'x-published-at': '1999000' }));
    expect(f.lags).toEqual([1000]);
  });

  it('reports nothing for a message without the header, or with one that is not a time', async () => {
    const f = fakes();
    await f.intake.open(async () => ({ decision: 'ack' }));
    await f.deliver(delivered());
    await f.deliver(delivered({ 'x-published-at': 'yesterday' }));
    expect(f.lags).toEqual([]);
  });
});
