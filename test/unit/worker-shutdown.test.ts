import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunningCommands } from '../../worker/flow/running-commands.js';
import { createWorkerStop, type StopOptions, type WorkerParts } from '../../worker/service/shutdown.js';

/** How the worker stops, over plain fakes that record each call in one list; fake timers for the deadlines. */

type Step = 'removeWorker' | 'session.close' | 'presence.close' | 'store.close' | 's3.close' | 'consumer.cancel';

function fakes(options: { inFlight?: number; failing?: Step[] } = {}) {
  const calls: string[] = [];
  const step = (name: Step): Promise<void> => {
    calls.push(name);
    return options.failing?.includes(name) ? Promise.reject(new Error(`${name} failed`)) : Promise.resolve();
  };
  const intake = { inFlight: options.inFlight ?? 0, lastActivityMs: Date.now(), idle: () => undefined as void };
  const idle = new Promise<void>((resolve) => {
    intake.idle = () => {
      intake.inFlight = 0;
      resolve();
    };
  });
  const running: RunningCommands = {
    size: 1,
    add: () => undefined,
    remove: () => undefined,
    list: () => [],
    killedForDrain: () => false,
    killAll: () => void calls.push('running.killAll'),
    killNotStarted: () => void calls.push('running.killNotStarted'),
    killWaitingSince: () => 0,
  };
  const parts: WorkerParts = {
    workerId: 'w1',
    running,
    executor: { killAllNow: () => void calls.push('executor.killAllNow') },
    slots: {
      drain: () => void calls.push('slots.drain'),
      handBackWaiting: (cutoffMs) => {
        calls.push(`slots.handBackWaiting(${cutoffMs ?? 'all'})`);
        return 0;
      },
    },
    lookahead: { stop: () => void calls.push('lookahead.stop') },
    extra: { stop: async () => void calls.push('extra.stop') },
    intake: { inFlight: () => intake.inFlight, whenIdle: () => idle, lastActivityMs: () => intake.lastActivityMs },
    consumer: { cancel: () => step('consumer.cancel') },
    heartbeat: { stop: () => void calls.push('heartbeat.stop') },
    store: {
      removeWorker: (id) => step('removeWorker').then(() => void calls.push(`removed ${id}`)),
      close: () => step('store.close'),
    },
    presence: { close: () => step('presence.close') },
    session: { close: () => step('session.close') },
    s3: { close: () => step('s3.close') },
    logger: pino({ level: 'silent' }),
  };
  return { calls, parts, intake };
}

const stopOptions: StopOptions = { drainTimeoutMs: 30_000, exitWhenIdleMs: undefined };
const closeSteps = ['heartbeat.stop', 'removeWorker', 'removed w1', 'session.close', 'presence.close', 'store.close', 's3.close'];

beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
afterEach(() => vi.useRealTimers());

describe('shutting the worker down', () => {
  it('returns the same promise when asked again', () => {
    const stop = createWorkerStop(fakes().parts, stopOptions);
    expect(stop.shutdown('SIGTERM')).toBe(stop.shutdown('SIGINT'));
  });

  it('drains once, however often it is asked', async () => {
    const f = fakes();
    const stop = createWorkerStop(f.parts, stopOptions);
    await Promise.all([stop.shutdown('SIGTERM'), stop.shutdown('SIGTERM')]);
    expect(f.calls.filter((call) => call === 'slots.drain')).toHaveLength(1);
  });

  it('stops taking work first: slots drained, lookahead and extra consumers stopped, waiters handed back, unstarted commands killed, consumer cancelled', async () => {
    const f = fakes({ inFlight: 1 });
    void createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(0);
    expect(f.calls).toEqual(['slots.drain', 'lookahead.stop', 'extra.stop', 'slots.handBackWaiting(all)', 'running.killNotStarted', 'consumer.cancel']);
  });

  it('closes nothing while a message is in flight before the drain deadline', async () => {
    const f = fakes({ inFlight: 1 });
    void createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(29_999);
    expect(f.calls).not.toContain('heartbeat.stop');
  });

  it('closes once the messages in flight are settled, killing nothing', async () => {
    const f = fakes({ inFlight: 1 });
    const stop = createWorkerStop(f.parts, stopOptions);
    void stop.shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(10_000);
    f.intake.idle();
    await stop.done;
    expect(f.calls.slice(6)).toEqual(closeSteps);
  });

  it('kills the running commands at the drain deadline', async () => {
    const f = fakes({ inFlight: 1 });
    void createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(f.calls.slice(6)).toEqual(['running.killAll']);
  });

  it('closes after the deadline only once the killed commands\' messages are settled', async () => {
    const f = fakes({ inFlight: 1 });
    const stop = createWorkerStop(f.parts, stopOptions);
    void stop.shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(f.calls).not.toContain('heartbeat.stop');
    f.intake.idle();
    await stop.done;
    expect(f.calls.slice(6)).toEqual(['running.killAll', ...closeSteps]);
  });

  it('closes in order: heartbeat, worker entry, RabbitMQ, presence, Redis, S3', async () => {
    const f = fakes();
    await createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    expect(f.calls.slice(6)).toEqual(closeSteps);
  });

  it('runs every close step even when some fail', async () => {
    const f = fakes({ failing: ['removeWorker', 'session.close', 'presence.close', 'store.close'] });
    await createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    expect(f.calls.slice(6)).toEqual(['heartbeat.stop', 'removeWorker', 'session.close', 'presence.close', 'store.close', 's3.close']);
  });

  it('drains and closes even when the consumer cannot be cancelled', async () => {
    const f = fakes({ failing: ['consumer.cancel'] });
    await createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM');
    expect(f.calls.slice(5)).toEqual(['consumer.cancel', ...closeSteps]);
  });

  it('resolves done with exit code 0', async () => {
    const f = fakes({ failing: ['s3.close'] });
    const stop = createWorkerStop(f.parts, stopOptions);
    void stop.shutdown('SIGTERM');
    expect(await stop.done).toBe(0);
  });

  it('kills every command at once when forced', () => {
    const f = fakes({ inFlight: 1 });
    void createWorkerStop(f.parts, stopOptions).shutdown('SIGTERM', true);
    expect(f.calls.slice(0, 2)).toEqual(['running.killAll', 'executor.killAllNow']);
  });

  it('kills every command at once when forced during a graceful drain, returning the same promise', async () => {
    const f = fakes({ inFlight: 1 });
    const stop = createWorkerStop(f.parts, stopOptions);
    const first = stop.shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(1000);
    const second = stop.shutdown('SIGTERM again', true);
    expect([second, f.calls.slice(6)]).toEqual([first, ['running.killAll', 'executor.killAllNow']]);
  });
});

describe('the idle exit', () => {
  const idleOptions: StopOptions = { drainTimeoutMs: 30_000, exitWhenIdleMs: 5000 };

  it('does not shut down before the worker was idle that long', async () => {
    const f = fakes();
    createWorkerStop(f.parts, idleOptions);
    await vi.advanceTimersByTimeAsync(4999);
    expect(f.calls).toEqual([]);
  });

  it('shuts down once the worker was idle that long', async () => {
    const f = fakes();
    createWorkerStop(f.parts, idleOptions);
    await vi.advanceTimersByTimeAsync(5000);
    expect(f.calls).toEqual(['slots.drain', 'lookahead.stop', 'extra.stop', 'slots.handBackWaiting(all)', 'running.killNotStarted', 'consumer.cancel', ...closeSteps]);
  });

  it('does not shut down while a message is in flight, however long ago the last activity', async () => {
    const f = fakes({ inFlight: 1 });
    f.intake.lastActivityMs = 0;
    createWorkerStop(f.parts, idleOptions);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(f.calls).toEqual([]);
  });

  it('counts the idle time from the last activity', async () => {
    const f = fakes();
    createWorkerStop(f.parts, idleOptions);
    await vi.advanceTimersByTimeAsync(3000);
    f.intake.lastActivityMs = Date.now();
    await vi.advanceTimersByTimeAsync(4000);
    expect(f.calls).toEqual([]);
  });

  it('sets no timer without exitWhenIdleMs', () => {
    createWorkerStop(fakes().parts, stopOptions);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timer on shutdown', async () => {
    const f = fakes();
    await createWorkerStop(f.parts, idleOptions).shutdown('SIGTERM');
    expect(vi.getTimerCount()).toBe(0);
  });
});
