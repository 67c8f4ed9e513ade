import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Consumer } from '../../shared/broker/amqp-session.js';
import { judgeHolder, leaseOwner, presenceOf, type HolderAbsence, type HolderLook } from '../../worker/message/lease-holder.js';
import { createExtraConsumers as createLeaseWaits } from '../../worker/flow/extra-consumers.js';

const limits = { graceMs: 5000, settleMs: 12_000 };

/** Folds looks at one holder, each `stepMs` after the previous, starting at `fromMs`. */
function looks(presents: (boolean | undefined)[], options: { holder?: string; fromMs?: number; stepMs?: number; ownUpSinceMs?: number } = {}): HolderAbsence[] {
  const { holder = 'w2-1#3+presence', fromMs = 100_000, stepMs = 1000, ownUpSinceMs = 0 } = options;
  const found: HolderAbsence[] = [];
  presents.forEach((present, i) => {
    const look: HolderLook = { holder, present, nowMs: fromMs + i * stepMs, ownUpSinceMs };
    found.push(judgeHolder(found.at(-1), look, limits));
  });
  return found;
}

describe('lease owners', () => {
  it('name the worker whose presence tells whether they live, only when it announced one', () => {
    expect(leaseOwner('host-a-17', 4, true)).toBe('host-a-17#4+presence');
    expect(presenceOf(leaseOwner('host-a-17', 4, true))).toBe('host-a-17');
    expect(presenceOf('pod#x-9#12+presence')).toBe('pod#x-9');
    // An older worker's lease, or one taken without a presence: never judged by it.
    expect(leaseOwner('host-a-17', 4, false)).toBe('host-a-17#4');
    expect(presenceOf('host-a-17#4')).toBeUndefined();
    expect(presenceOf('+presence')).toBeUndefined();
    expect(presenceOf('host#+presence')).toBeUndefined();
  });
});

describe('judging a lease holder gone', () => {
  it('is gone once seen absent on every look for the grace period', () => {
    const found = looks([false, false, false, false, false, false]);
    expect(found.map((one) => one.gone)).toEqual([false, false, false, false, false, true]);
  });

  it('is never gone while its presence is there: a frozen worker keeps its connection, and its command', () => {
    expect(looks(Array.from({ length: 100 }, () => true)).some((one) => one.gone)).toBe(false);
  });

  it('starts the grace again when the holder is seen present (its connection was reset, and it reconnected)', () => {
    const found = looks([false, false, false, false, true, false, false, false, false, false, false]);
    expect(found.findIndex((one) => one.gone)).toBe(10);
  });

  it('is never gone when Redis cannot say, or the holder announces no presence', () => {
    expect(looks(Array.from({ length: 20 }, () => undefined)).some((one) => one.gone)).toBe(false);
    expect(looks([false, false, undefined, false, false, false, false, false]).findIndex((one) => one.gone)).toBe(-1);
  });

  it('judges nobody until its own presence has been up for the settle time (after a Redis restart, everyone reconnects at its own pace)', () => {
    const fromMs = 100_000;
    const found = looks(Array.from({ length: 15 }, () => false), { fromMs, ownUpSinceMs: fromMs - 2000 });
    // Absent from the first look; gone only once its own presence is 12 s old.
    expect(found.findIndex((one) => one.gone)).toBe(10);
    expect(judgeHolder(undefined, { holder: 'w#1+presence', present: false, nowMs: fromMs, ownUpSinceMs: undefined }, limits).gone).toBe(false);
  });

  it('counts afresh for a new holder (the lease changed hands)', () => {
    const before = looks([false, false, false, false, false]);
    const next = judgeHolder(before.at(-1), { holder: 'w3-1#1+presence', present: false, nowMs: 105_000, ownUpSinceMs: 0 }, limits);
    expect(next).toEqual({ holder: 'w3-1#1+presence', absentSinceMs: 105_000, gone: false });
  });
});

describe('consumers for messages waiting for a lease', () => {
  function fakeConsume() {
    const opened: { cancelled: boolean }[] = [];
    const consume = async (prefetch: number): Promise<Consumer> => {
      expect(prefetch).toBe(1);
      const consumer = { cancelled: false };
      opened.push(consumer);
      return { isActive: () => !consumer.cancelled, cancel: async () => void (consumer.cancelled = true) };
    };
    return { opened, consume, active: () => opened.filter((one) => !one.cancelled).length };
  }
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('opens one consumer of prefetch 1 per waiting message, and cancels it when the wait ends', async () => {
    const fake = fakeConsume();
    const waits = createLeaseWaits({ consume: fake.consume, logger: pino({ level: 'silent' }) });
    const first = waits.begin();
    const second = waits.begin();
    await settle();
    expect(fake.active()).toBe(2);
    first();
    first(); // ending twice ends once
    await settle();
    expect(fake.active()).toBe(1);
    second();
    await settle();
    expect(fake.active()).toBe(0);
    expect(fake.opened).toHaveLength(2);
  });

  it('cancels them all on stop, and opens none after', async () => {
    const fake = fakeConsume();
    const waits = createLeaseWaits({ consume: fake.consume, logger: pino({ level: 'silent' }) });
    waits.begin();
    await settle();
    await waits.stop();
    expect(fake.active()).toBe(0);
    waits.begin();
    await settle();
    expect(fake.opened).toHaveLength(1);
  });
});
