import { describe, expect, it } from 'vitest';
import type { AttemptOutcome } from '../../tasker/dispatch/phase-ports.js';
import { createAwaitedAttempts } from '../../tasker/distributed/result-inbox.js';
import { windDown, type WindDownPorts } from '../../tasker/distributed/wind-down.js';

/**
 * A distributed tasker that stops: the run is stopped for the workers first, results arriving in
 * the window count as what they did, commands still running on a worker are interrupted, and the
 * ones no worker started are not recorded at all.
 */

function succeeded(attempt: number): AttemptOutcome {
  const at = '2026-01-01T00:00:00.000Z';
  return { result: { outcome: 'succeeded', exitCode: 0, signal: null, startedAt: at, finishedAt: at, durationMs: 5, tail: '' }, worker: 'w1', log: 'l', attempt };
}

function fakePorts(running: Set<string>, onSleep: (clock: number) => void = () => undefined): WindDownPorts & { calls: string[] } {
  let clock = 0;
  const calls: string[] = [];
  return {
    calls,
    stopRun: async () => void calls.push('stop'),
    running: async (ids) => new Set(ids.filter((id) => running.has(id))),
    sleep: async (ms) => {
      clock += ms;
      onSleep(clock);
    },
    now: () => clock,
  };
}

describe('windDown', () => {
  it('records what finished in the window, interrupts what still runs, and leaves the never-started unrecorded', async () => {
    const awaited = createAwaitedAttempts({ maxInFlight: 10 });
    const queued = awaited.awaitResult('f1-L1', 1);
    const finishing = awaited.awaitResult('f1-L2', 1);
    const hanging = awaited.awaitResult('f1-L3', 2);
    const running = new Set(['f1-L2', 'f1-L3']);
    // f1-L2's result arrives 500 ms into the window.
    const ports = fakePorts(running, (clock) => {
      if (clock === 500) {
        running.delete('f1-L2');
        awaited.settle('f1-L2', succeeded(1));
      }
    });
    await windDown(awaited, ports, 'interrupted', { windowMs: 2000, pollMs: 250 });

    expect(ports.calls).toEqual(['stop']);
    expect(await queued).toBeUndefined();
    expect((await finishing)?.result.outcome).toBe('succeeded');
    const stopped = await hanging;
    expect(stopped?.result.outcome).toBe('killed');
    expect(stopped?.attempt).toBe(2);
    expect(stopped?.result.reason).toBe('tasker interrupted; still running on a worker');
    expect(awaited.count()).toBe(0);
  });

  it('ends early once nothing runs, twice in a row', async () => {
    const awaited = createAwaitedAttempts({ maxInFlight: 10 });
    const queued = awaited.awaitResult('f1-L1', 1);
    let slept = 0;
    const ports = fakePorts(new Set(), () => slept++);
    await windDown(awaited, ports, 'cancelled', { windowMs: 10_000, pollMs: 100 });
    expect(slept).toBe(2);
    expect(await queued).toBeUndefined();
  });

  it('without Redis, records every awaited attempt as interrupted (a resume awaits or reruns them, never skips one)', async () => {
    const awaited = createAwaitedAttempts({ maxInFlight: 10 });
    const queued = awaited.awaitResult('f1-L1', 1);
    const ports = fakePorts(new Set());
    ports.stopRun = () => Promise.reject(new Error('Redis down'));
    ports.running = () => Promise.reject(new Error('Redis down'));
    await windDown(awaited, ports, 'interrupted', { windowMs: 500, pollMs: 250 });
    expect((await queued)?.result.outcome).toBe('killed');
  });
});
