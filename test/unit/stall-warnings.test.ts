import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Channel } from 'amqplib';
import type { Logger } from '../../shared/observe/logger.js';
import { startStallWarnings } from '../../tasker/distributed/stall-warnings.js';

/** The no-consumer warning of a pool: after the stall delay, named, kept while it holds, cleared once a worker consumes. */

function fakeLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (_fields: unknown, message: string) => lines.push({ level, message });
  return { lines, warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Logger & { lines: typeof lines };
}

describe('stall warnings of a pool', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('warns once the pool has had no consumer for the stall delay, and clears it when one appears', async () => {
    let consumers = 0;
    const channel = { checkQueue: () => Promise.resolve({ queue: 'q', messageCount: 3, consumerCount: consumers }) } as unknown as Channel;
    const logger = fakeLogger();
    const warnings = startStallWarnings({
      session: { withChannel: (operation) => operation(channel) },
      currentPool: () => ({ pool: 'gpu', queue: 'ns.pool.gpu.commands' }),
      stallWarningMs: 5000,
      inFlight: () => 2,
      // Results keep coming: only the consumer warning is at stake.
      lastProgressAt: () => Date.now(),
      logger,
    });
    const tick = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);
    await tick(4000);
    expect(warnings.current()).toBeUndefined();
    await tick(4000);
    expect(warnings.current()).toBe('no worker of pool gpu is consuming ns.pool.gpu.commands: 2 commands are waiting. Start workers (worker --pool gpu; in Kubernetes, scale the pool\'s Deployment)');
    expect(logger.lines.filter((line) => line.level === 'warn' && line.message.startsWith('no worker of pool gpu'))).toHaveLength(1);
    consumers = 1;
    await tick(2000);
    expect(warnings.current()).toBeUndefined();
    expect(logger.lines.some((line) => line.level === 'info' && line.message === 'a worker of pool gpu is consuming ns.pool.gpu.commands again')).toBe(true);
    warnings.stop();
  });

  it('while the pool has no consumer, says so instead of the generic "nothing finished" warning', async () => {
    const channel = { checkQueue: () => Promise.resolve({ queue: 'q', messageCount: 1, consumerCount: 0 }) } as unknown as Channel;
    const logger = fakeLogger();
    const startedAt = Date.now();
    const warnings = startStallWarnings({
      session: { withChannel: (operation) => operation(channel) },
      currentPool: () => ({ pool: 'gpu', queue: 'ns.pool.gpu.commands' }),
      stallWarningMs: 5000,
      inFlight: () => 1,
      lastProgressAt: () => startedAt, // nothing finishes
      logger,
    });
    await vi.advanceTimersByTimeAsync(12_000);
    const warned = logger.lines.filter((line) => line.level === 'warn').map((line) => line.message);
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.every((message) => message.startsWith('no worker of pool gpu is consuming ns.pool.gpu.commands: 1 command is waiting'))).toBe(true);
    warnings.stop();
  });

  it('keeps no warning once nothing is in flight, nor after it stops (the final progress line)', async () => {
    let inFlight = 2;
    const channel = { checkQueue: () => Promise.resolve({ queue: 'q', messageCount: 2, consumerCount: 0 }) } as unknown as Channel;
    const warnings = startStallWarnings({
      session: { withChannel: (operation) => operation(channel) },
      currentPool: () => ({ pool: 'gpu', queue: 'ns.pool.gpu.commands' }),
      stallWarningMs: 1000,
      inFlight: () => inFlight,
      lastProgressAt: () => Date.now(),
      logger: fakeLogger(),
    });
    await vi.advanceTimersByTimeAsync(3000);
    expect(warnings.current()).toMatch(/^no worker of pool gpu/);
    inFlight = 0; // the last results came in between two checks
    expect(warnings.current()).toBeUndefined();
    inFlight = 2;
    warnings.stop();
    expect(warnings.current()).toBeUndefined();
  });
});
