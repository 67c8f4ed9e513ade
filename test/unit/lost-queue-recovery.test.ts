import { describe, expect, it } from 'vitest';
import type { Logger } from '../../shared/observe/logger.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseSpec } from '../../tasker/jobs/plan.js';
import { startLostQueueRecovery, type LostQueueRecoveryOptions } from '../../tasker/distributed/lost-queue-recovery.js';

/**
 * A deleted work queue takes its waiting commands with it: every attempt the tasker awaits from it
 * is published again once the queue's loss count passes the one it was published under, except
 * the ones a worker runs now; a resumed tasker starts its predecessor's from the count saved.
 */

function fakeLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const ignore = () => undefined;
  return { warnings, warn: (_fields: unknown, message: string) => warnings.push(message), info: ignore, debug: ignore, error: ignore } as unknown as Logger & { warnings: string[] };
}

function fakeStore(saved: Record<string, number> = {}) {
  const losses = new Map<string, number>();
  const handled = new Map(Object.entries(saved));
  const running = new Set<string>();
  const store: LostQueueRecoveryOptions['store'] = {
    queueLosses: async (queue) => losses.get(queue) ?? 0,
    saveHandledQueueLosses: async (_runId, queue, count) => void handled.set(queue, count),
    handledQueueLosses: async () => new Map(handled),
    runningCommands: async (_runId, ids) => new Set(ids.filter((id) => running.has(id))),
  };
  const lose = (queue: string) => losses.set(queue, (losses.get(queue) ?? 0) + 1);
  return { store, losses, handled, running, lose };
}

const phase = { index: 1, name: 'sims', pool: 'default' } as PhaseSpec;
const command = (line: number): CommandRef => ({ id: `f1-L${line}`, command: 'true', file: 1, line }) as unknown as CommandRef;
const settle = () => new Promise((resolve) => setTimeout(resolve, 60));

async function start(fake: ReturnType<typeof fakeStore>, earlierPending: boolean | (() => boolean) = false) {
  const published: string[] = [];
  const logger = fakeLogger();
  const recovery = await startLostQueueRecovery({
    store: fake.store,
    runId: 'r1',
    queues: ['ns.commands'],
    queueOf: () => 'ns.commands',
    publish: async (_phase, attempts) => void published.push(...attempts.map(({ command: c, attempt }) => `${c.id}#${attempt}`)),
    earlierPending: typeof earlierPending === 'function' ? earlierPending : () => earlierPending,
    intervalMs: 10,
    logger,
  });
  return { recovery, published, logger };
}

describe('lost queue recovery', () => {
  it('publishes again the awaited attempts a loss of their queue took, once, and not the running ones', async () => {
    const fake = fakeStore();
    const { recovery, published, logger } = await start(fake);
    recovery.track(phase, command(1), 1, false);
    recovery.track(phase, command(2), 2, false);
    const untrack3 = recovery.track(phase, command(3), 1, false);
    untrack3(); // settled: no longer awaited
    fake.running.add('f1-L2');
    await settle();
    expect(published).toEqual([]);

    fake.lose('ns.commands');
    await settle();
    expect(published).toEqual(['f1-L1#1']);
    expect(logger.warnings.join('\n')).toContain('the work queue ns.commands was deleted, and the commands waiting in it with it: publishing command f1-L1 again (1 running on workers finish there');
    // Saved as dealt with only once the running one is no longer behind.
    expect(fake.handled.get('ns.commands')).toBe(0);

    // Its worker died: not running, still awaited, so it goes again too.
    fake.running.delete('f1-L2');
    await settle();
    expect(published).toEqual(['f1-L1#1', 'f1-L2#2']);
    expect(fake.handled.get('ns.commands')).toBe(1);
    await recovery.stop();
  });

  it('publishes nothing for attempts published after the loss', async () => {
    const fake = fakeStore();
    fake.losses.set('ns.commands', 3);
    const { recovery, published } = await start(fake);
    recovery.track(phase, command(1), 1, false);
    await settle();
    expect(published).toEqual([]);
    expect(fake.handled.get('ns.commands')).toBe(3);
    await recovery.stop();
  });

  it("a resumed tasker publishes again its predecessor's attempts when the queue was lost since, its own not", async () => {
    const fake = fakeStore({ 'ns.commands': 1 });
    fake.losses.set('ns.commands', 2); // lost while no tasker ran
    const { recovery, published } = await start(fake, true);
    recovery.track(phase, command(1), 1, true);
    recovery.track(phase, command(2), 1, false);
    await settle();
    expect(published).toEqual(['f1-L1#1']);
    // Attempts of the previous tasker may still come (start(fake, true)): nothing saved yet.
    expect(fake.handled.get('ns.commands')).toBe(1);
    await recovery.stop();
  });

  it('a resumed tasker awaits its predecessor attempts when the queue was not lost since', async () => {
    const fake = fakeStore({ 'ns.commands': 2 });
    fake.losses.set('ns.commands', 2);
    const { recovery, published } = await start(fake, true);
    recovery.track(phase, command(1), 1, true);
    await settle();
    expect(published).toEqual([]);
    await recovery.stop();
  });

  it("a resumed tasker whose predecessor saved no count publishes the predecessor's attempts again", async () => {
    const fake = fakeStore();
    const { recovery, published } = await start(fake, true);
    recovery.track(phase, command(1), 2, true);
    await settle();
    expect(published).toEqual(['f1-L1#2']);
    await recovery.stop();
  });

  it('saves no count as dealt with while attempts of the previous tasker are still to come', async () => {
    const fake = fakeStore({ 'ns.commands': 1 });
    fake.losses.set('ns.commands', 2);
    let pending = true;
    const { recovery, published } = await start(fake, () => pending);
    recovery.track(phase, command(1), 1, true);
    await settle();
    expect(fake.handled.get('ns.commands')).toBe(1);
    // The phase loop reaches the last of them later: it is behind too.
    recovery.track(phase, command(2), 1, true);
    pending = false;
    await settle();
    expect(published).toEqual(['f1-L1#1', 'f1-L2#1']);
    expect(fake.handled.get('ns.commands')).toBe(2);
    await recovery.stop();
  });

  it('waits for the count to hold still, and does not publish an attempt whose result came meanwhile', async () => {
    const fake = fakeStore();
    const { recovery, published } = await start(fake);
    const untrack = recovery.track(phase, command(1), 1, false);
    recovery.track(phase, command(2), 1, false);
    untrack();
    fake.lose('ns.commands');
    fake.lose('ns.commands');
    await settle();
    expect(published).toEqual(['f1-L2#1']);
    fake.lose('ns.commands');
    await settle();
    expect(published).toEqual(['f1-L2#1', 'f1-L2#1']);
    await recovery.stop();
  });
});
