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
});
