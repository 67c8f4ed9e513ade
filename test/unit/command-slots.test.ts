import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCommandSlots } from '../../worker/flow/command-slots.js';

/** The worker's command slots, with fake timers (runAlone polls every 50 ms): no broker, no processes. */

type Release = (() => void) | undefined;

/** What a pending acquire or runAlone came to so far: 'pending', a release, or undefined. */
function watch(promise: Promise<Release>): { state: () => 'pending' | Release } {
  let state: 'pending' | Release = 'pending';
  void promise.then((release) => {
    state = release;
  });
  return { state: () => state };
}

/** Lets resolved promises run their callbacks. */
const flush = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('command slots', () => {
  it('gives out `concurrency` slots at once', async () => {
    const slots = createCommandSlots(2);
    expect(typeof (await slots.acquire())).toBe('function');
    expect(typeof (await slots.acquire())).toBe('function');
  });

  it('makes the next caller wait once `concurrency` slots are taken', async () => {
    const slots = createCommandSlots(2);
    await slots.acquire();
    await slots.acquire();
    const third = watch(slots.acquire());
    await flush();
    expect(third.state()).toBe('pending');
  });

  it('wakes the waiters in the order they came, one per release', async () => {
    const slots = createCommandSlots(1);
    const first = (await slots.acquire())!;
    const woken: string[] = [];
    void slots.acquire().then((release) => {
      woken.push('second');
      release?.();
    });
    void slots.acquire().then(() => woken.push('third'));
    await flush();
    expect(woken).toEqual([]);
    first();
    await flush();
    expect(woken).toEqual(['second', 'third']);
  });

  it('gives one slot more with the lookahead on, waking a waiter at once', async () => {
    const slots = createCommandSlots(1);
    await slots.acquire();
    const waiter = watch(slots.acquire());
    slots.setLookahead(1);
    await flush();
    expect(typeof waiter.state()).toBe('function');
  });

  it('gives no slot on a release while `concurrency` are still taken once the lookahead is off again', async () => {
    const slots = createCommandSlots(1);
    slots.setLookahead(1);
    const first = (await slots.acquire())!;
    await slots.acquire();
    slots.setLookahead(0);
    const waiter = watch(slots.acquire());
    first();
    await flush();
    expect(waiter.state()).toBe('pending');
  });

  it('says a slot is free now while fewer than `concurrency` are taken, the lookahead\'s aside', async () => {
    const slots = createCommandSlots(2);
    expect(slots.freeNow()).toBe(true);
    await slots.acquire();
    await slots.acquire();
    slots.setLookahead(1);
    expect(slots.freeNow()).toBe(false);
  });

  it('says no slot is free once draining', () => {
    const slots = createCommandSlots(2);
    slots.drain();
    expect(slots.freeNow()).toBe(false);
  });

  it('gives out no slot once draining: acquire resolves undefined', async () => {
    const slots = createCommandSlots(2);
    slots.drain();
    expect(slots.draining()).toBe(true);
    expect(await slots.acquire()).toBeUndefined();
  });

  it('wakes no waiter on a release once draining (they are handed back)', async () => {
    const slots = createCommandSlots(1);
    const first = (await slots.acquire())!;
    const waiter = watch(slots.acquire());
    slots.drain();
    first();
    await flush();
    expect(waiter.state()).toBe('pending');
  });
});

describe('running alone', () => {
  it('resolves at once when the caller holds the only slot taken', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    expect(typeof (await slots.runAlone())).toBe('function');
  });

  it('waits until the other slots are released', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    const other = (await slots.acquire())!;
    const alone = watch(slots.runAlone());
    await vi.advanceTimersByTimeAsync(500);
    expect(alone.state()).toBe('pending');
    other();
    await vi.advanceTimersByTimeAsync(50);
    expect(typeof alone.state()).toBe('function');
  });

  it('gives out no slot while a caller waits to run alone, though some are free', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    await slots.acquire();
    void slots.runAlone();
    const newcomer = watch(slots.acquire());
    await vi.advanceTimersByTimeAsync(500);
    expect(newcomer.state()).toBe('pending');
  });

  it('gives out no slot while a caller runs alone', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    await slots.runAlone();
    const newcomer = watch(slots.acquire());
    await vi.advanceTimersByTimeAsync(500);
    expect(newcomer.state()).toBe('pending');
  });

  it('wakes the waiters once the one running alone ends', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    const endAlone = (await slots.runAlone())!;
    const newcomer = watch(slots.acquire());
    await flush();
    endAlone();
    await flush();
    expect(typeof newcomer.state()).toBe('function');
  });

  it('refuses a second caller while one waits to run alone: it resolves undefined', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    await slots.acquire();
    void slots.runAlone();
    expect(await slots.runAlone()).toBeUndefined();
  });

  it('ends the wait to run alone with undefined once draining', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    await slots.acquire();
    const alone = watch(slots.runAlone());
    slots.drain();
    await vi.advanceTimersByTimeAsync(50);
    expect(alone.state()).toBeUndefined();
  });

  it('resolves undefined when asked while draining', async () => {
    const slots = createCommandSlots(3);
    await slots.acquire();
    slots.drain();
    expect(await slots.runAlone()).toBeUndefined();
  });
});

describe('handing back waiting messages', () => {
  it('hands back the impatient waiters queued at or before the cutoff, and says how many', async () => {
    vi.setSystemTime(10_000);
    const slots = createCommandSlots(1);
    await slots.acquire();
    const early = watch(slots.acquire());
    const patient = watch(slots.acquire(true));
    vi.setSystemTime(10_500);
    const atCutoff = watch(slots.acquire());
    vi.setSystemTime(11_000);
    const late = watch(slots.acquire());
    expect(slots.handBackWaiting(10_500)).toBe(2);
    await flush();
    expect([early.state(), patient.state(), atCutoff.state(), late.state()]).toEqual([undefined, 'pending', undefined, 'pending']);
  });

  it('hands back every waiter, patient ones too, without a cutoff', async () => {
    const slots = createCommandSlots(1);
    await slots.acquire();
    const impatient = watch(slots.acquire());
    const patient = watch(slots.acquire(true));
    expect(slots.handBackWaiting()).toBe(2);
    await flush();
    expect([impatient.state(), patient.state()]).toEqual([undefined, undefined]);
  });

  it('gives the next release to the first waiter left, not to one handed back', async () => {
    vi.setSystemTime(10_000);
    const slots = createCommandSlots(1);
    const first = (await slots.acquire())!;
    void slots.acquire();
    vi.setSystemTime(12_000);
    const kept = watch(slots.acquire());
    slots.handBackWaiting(11_000);
    first();
    await flush();
    expect(typeof kept.state()).toBe('function');
  });

  it('returns 0 when nobody waits', () => {
    expect(createCommandSlots(1).handBackWaiting()).toBe(0);
  });
});
