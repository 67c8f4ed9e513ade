import { describe, expect, it } from 'vitest';
import type { RunMeta, WorkerInfo } from '../../shared/state/run-store.js';
import { commandId, resultRecord, scanKeys, useRunStore } from './run-store-fixture.js';

/**
 * Runs as a whole (meta and its update script, the index, stop, purge, expiry), worker heartbeats
 * and presence, and queue-loss counting, through the RunStore on the real Redis.
 */

const ctx = useRunStore();

function meta(runId: string, startedAt = '2024-05-01T10:00:00.000Z'): RunMeta {
  return { runId, state: 'running', startedAt, heartbeatAt: startedAt, host: 'h1', workdir: '/w', phase: 'sims', phaseIndex: 0, phaseCount: 2, total: 10, done: 0, failed: 0 };
}

function worker(id: string, extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return { id, host: 'h1', pid: 42, concurrency: 2, startedAt: '2024-05-01T10:00:00.000Z', running: [], ...extra };
}

describe('run records', () => {
  it('getRun returns what registerRun recorded', async () => {
    await ctx.store.registerRun(meta(ctx.runId));
    expect(await ctx.store.getRun(ctx.runId)).toEqual(meta(ctx.runId));
  });

  it('registerRun ends the stop: the run’s commands start again', async () => {
    await ctx.store.stopRun(ctx.runId);
    await ctx.store.registerRun(meta(ctx.runId));
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('updateRun merges the fields into the run’s record', async () => {
    await ctx.store.registerRun(meta(ctx.runId));
    await ctx.store.updateRun(ctx.runId, { done: 4, phase: 'post' });
    expect(await ctx.store.getRun(ctx.runId)).toEqual({ ...meta(ctx.runId), done: 4, phase: 'post' });
  });

  it('updateRun records nothing for a run that has no record', async () => {
    await ctx.redis.del(ctx.key('meta'));
    await ctx.store.updateRun(ctx.runId, { done: 4 });
    expect(await ctx.redis.exists(ctx.key('meta'))).toBe(0);
  });

  it('updateRun leaves a record that is not JSON as it is', async () => {
    await ctx.redis.hset(ctx.key('meta'), 'json', 'not json');
    await ctx.store.updateRun(ctx.runId, { done: 4 });
    expect(await ctx.redis.hget(ctx.key('meta'), 'json')).toBe('not json');
  });

  it('latestRunIds lists the runs newest first, as many as asked', async () => {
    await ctx.store.registerRun(meta('r-old', '2024-05-01T10:00:00.000Z'));
    await ctx.store.registerRun(meta('r-new', '2024-05-03T10:00:00.000Z'));
    await ctx.store.registerRun(meta('r-mid', '2024-05-02T10:00:00.000Z'));
    expect(await ctx.store.latestRunIds(2)).toEqual(['r-new', 'r-mid']);
  });

  it('purgeRun removes every key of the run and its index entry, and counts the keys', async () => {
    await ctx.store.registerRun(meta(ctx.runId));
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.begin('w1#1', { id: 'f1-L8' });
    // meta, results, ok:f1, lease:f1-L8
    expect(await ctx.store.purgeRun(ctx.runId)).toBe(4);
    expect([await scanKeys(ctx.redis, `${ctx.ns}:*`), await ctx.store.latestRunIds(10)]).toEqual([[], []]);
  });

  it('purgeRun leaves the keys of a run whose id starts the same', async () => {
    await ctx.store.registerRun(meta(ctx.runId));
    await ctx.store.registerRun(meta(`${ctx.runId}0`));
    await ctx.store.purgeRun(ctx.runId);
    expect(await scanKeys(ctx.redis, `${ctx.ns}:run:*`)).toEqual([ctx.names.runKey(`${ctx.runId}0`, 'meta')]);
  });

  it('expireRun gives every key of the run the expiry, except its leases', async () => {
    await ctx.store.registerRun(meta(ctx.runId));
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.begin('w1#1', { id: 'f1-L8' });
    await ctx.store.expireRun(ctx.runId, 300);
    const ttls = await Promise.all(['meta', 'results', 'ok:f1', 'lease:f1-L8'].map((part) => ctx.redis.ttl(ctx.names.runKey(ctx.runId, part as 'meta'))));
    expect(ttls.map((ttl) => ttl > 290 && ttl <= 300)).toEqual([true, true, true, false]);
  });
});

describe('worker heartbeats', () => {
  it('workers lists the workers by id, as their heartbeats say', async () => {
    await ctx.store.workerHeartbeat(worker('w2', { pools: ['gpu'] }), 10_000);
    await ctx.store.workerHeartbeat(worker('w1'), 10_000);
    expect(await ctx.store.workers()).toEqual([worker('w1'), worker('w2', { pools: ['gpu'] })]);
  });

  it('drop a worker once its heartbeat expires', async () => {
    await ctx.store.workerHeartbeat(worker('w1'), 50);
    await ctx.store.workerHeartbeat(worker('w2'), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await ctx.store.workers()).map((w) => w.id)).toEqual(['w2']);
  });

  it('removeWorker drops its heartbeat at once', async () => {
    await ctx.store.workerHeartbeat(worker('w1'), 10_000);
    await ctx.store.removeWorker('w1');
    expect(await ctx.store.workers()).toEqual([]);
  });
});

describe('workerPresent', () => {
  it('is true while a connection subscribes to the worker’s presence channel', async () => {
    await ctx.client().subscribe(ctx.names.workerPresenceChannel('w1'));
    expect(await ctx.store.workerPresent('w1')).toBe(true);
  });

  it('is false once that connection is gone, though its last heartbeat says its presence was up', async () => {
    const presence = ctx.client();
    await presence.subscribe(ctx.names.workerPresenceChannel('w1'));
    await ctx.store.workerHeartbeat(worker('w1', { presence: true }), 10_000);
    presence.disconnect();
    await expect.poll(() => ctx.store.workerPresent('w1'), { timeout: 2000, interval: 20 }).toBe(false);
  });

  it('is true without a subscriber when the heartbeat says the worker lives without a presence', async () => {
    await ctx.store.workerHeartbeat(worker('w1', { presence: false }), 10_000);
    expect(await ctx.store.workerPresent('w1')).toBe(true);
  });

  it('is false with neither a subscriber nor a heartbeat', async () => {
    expect(await ctx.store.workerPresent('w1')).toBe(false);
  });
});

describe('queue losses', () => {
  it('count each loss of a work queue', async () => {
    const queue = ctx.names.workQueue;
    const before = await ctx.store.queueLosses(queue);
    await ctx.store.noteQueueLost(queue);
    await ctx.store.noteQueueLost(queue);
    expect([before, await ctx.store.queueLosses(queue), await ctx.store.queueLosses(ctx.names.poolQueue('gpu'))]).toEqual([0, 2, 0]);
  });

  it('a run keeps the losses its tasker dealt with, per queue', async () => {
    await ctx.store.saveHandledQueueLosses(ctx.runId, ctx.names.workQueue, 1);
    await ctx.store.saveHandledQueueLosses(ctx.runId, ctx.names.poolQueue('gpu'), 3);
    await ctx.store.saveHandledQueueLosses(ctx.runId, ctx.names.workQueue, 2);
    expect(await ctx.store.handledQueueLosses(ctx.runId)).toEqual(new Map([[ctx.names.workQueue, 2], [ctx.names.poolQueue('gpu'), 3]]));
  });
});
