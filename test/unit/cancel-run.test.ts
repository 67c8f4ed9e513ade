import { describe, expect, it } from 'vitest';
import { names } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Cancellation, RunMeta } from '../../shared/state/run-store.js';
import { cancelRun, purgeRefusal, refuseCancelledRun } from '../../tasker/distributed/cancel-run.js';
import { startCancelWatch } from '../../tasker/run/cancel-watch.js';

/** `tasker cancel` and `tasker purge` on a fake store: who may be cancelled or purged when, and what is recorded. */

const now = Date.parse('2026-11-21T10:00:00.000Z');

function meta(overrides: Partial<RunMeta> = {}): RunMeta {
  const at = new Date(now - 1000).toISOString();
  return { runId: 'r', state: 'running', startedAt: at, heartbeatAt: at, host: 'box-1', workdir: '/w', phase: 'p', phaseIndex: 1, phaseCount: 1, total: 3, done: 0, failed: 0, ...overrides };
}

function fakeStore(run: RunMeta | undefined) {
  let cancelled: Cancellation | undefined;
  const updates: Partial<RunMeta>[] = [];
  return {
    updates,
    getRun: async () => run,
    cancellation: async () => cancelled,
    cancelRun: async (_runId: string, cancellation: Cancellation) => void (cancelled ??= cancellation),
    updateRun: async (_runId: string, fields: Partial<RunMeta>) => {
      updates.push(fields);
      if (run !== undefined) Object.assign(run, fields);
    },
  };
}

const by: Cancellation = { by: 'ops@desk', reason: 'wrong input', at: new Date(now).toISOString() };
const ns = names('tasker');

describe('cancelRun', () => {
  it('records the cancel itself when no tasker runs the run (interrupted)', async () => {
    const store = fakeStore(meta({ state: 'interrupted' }));
    const report = await cancelRun(store, ns, 'r', by, { now: () => now, waitMs: 0 });
    expect(report).toMatchObject({ before: false, tasker: 'none' });
    expect(store.updates).toEqual([{ state: 'cancelled', status: 'cancelled by ops@desk: wrong input' }]);
  });

  it("leaves a live tasker to record it, and says when it has not within the wait", async () => {
    const store = fakeStore(meta());
    const report = await cancelRun(store, ns, 'r', by, { now: () => now, waitMs: 0 });
    expect(report.tasker).toBe('still running');
    expect(store.updates).toEqual([]);
    expect(await store.cancellation()).toEqual(by);
  });

  it('keeps the first cancel, and refuses unknown and finished runs', async () => {
    const store = fakeStore(meta({ state: 'interrupted' }));
    await cancelRun(store, ns, 'r', by, { now: () => now, waitMs: 0 });
    const again = await cancelRun(store, ns, 'r', { by: 'someone else', at: '' }, { now: () => now, waitMs: 0 });
    expect(again).toMatchObject({ before: true, cancellation: by });
    await expect(cancelRun(fakeStore(undefined), ns, 'r', by, { now: () => now, waitMs: 0 })).rejects.toThrow('no run "r" to cancel');
    await expect(cancelRun(fakeStore(meta({ state: 'finished' })), ns, 'r', by, { now: () => now, waitMs: 0 })).rejects.toThrow('run r is finished: nothing to cancel');
  });
});

describe('purgeRefusal', () => {
  it('refuses a live run that is not cancelled, even with --force, saying to cancel first', async () => {
    const store = fakeStore(meta());
    expect(await purgeRefusal(store, meta(), now, true)).toBe('run r is in progress (its tasker box-1 sent a heartbeat 1.0s ago); cancel it first: tasker cancel r');
  });

  it('a cancelled run whose tasker still beats: only with --force; a run no tasker runs: at once', async () => {
    const store = fakeStore(meta());
    await store.cancelRun('r', by);
    expect(await purgeRefusal(store, meta(), now, false)).toMatch(/is cancelled but its tasker has not stopped yet .* add --force/);
    expect(await purgeRefusal(store, meta(), now, true)).toBeUndefined();
    expect(await purgeRefusal(fakeStore(undefined), meta({ state: 'interrupted' }), now, false)).toBeUndefined();
  });

  it('a cancelled run cannot run again', async () => {
    const store = fakeStore(meta());
    await expect(refuseCancelledRun(store, 'r')).resolves.toBeUndefined();
    await store.cancelRun('r', by);
    await expect(refuseCancelledRun(store, 'r')).rejects.toThrow(/^run r was cancelled by ops@desk: wrong input at 2026-11-21T10:00:00.000Z: it cannot run again/);
  });
});

describe('startCancelWatch', () => {
  it('looks until it finds the cancel, tells once, then looks no more', async () => {
    let looks = 0;
    const told: Cancellation[] = [];
    const watch = startCancelWatch(async () => (++looks >= 3 ? by : undefined), 5, (c) => told.push(c), {} as Logger);
    await new Promise((resolve) => setTimeout(resolve, 80));
    watch.stop();
    expect(told).toEqual([by]);
    expect(looks).toBe(3);
    expect(watch.seen()).toEqual(by);
  });
});
