import { describe, expect, it } from 'vitest';
import { commandId, resultRecord, useRunStore } from './run-store-fixture.js';

/**
 * Every answer of the begin script (shared/redis/redis-command-state.ts), through the RunStore's
 * beginCommand on the real Redis: what a worker may do with a delivered command.
 */

const ctx = useRunStore();

describe('beginCommand starts', () => {
  it('a command no one has begun, with no prior starts', async () => {
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('by taking the lease in the owner’s name for ttlMs', async () => {
    await ctx.begin('w1#1', { ttlMs: 5000 });
    expect(await ctx.redis.get(ctx.key(`lease:${commandId}`))).toBe('w1#1');
    const ttl = await ctx.redis.pttl(ctx.key(`lease:${commandId}`));
    expect(ttl).toBeGreaterThan(4000);
    expect(ttl).toBeLessThanOrEqual(5000);
  });

  it('again with priorStarts once the lease of a counted start without result expired', async () => {
    await ctx.begin('w1#1', { ttlMs: 150 });
    expect(await ctx.store.recordStart(ctx.runId, commandId, 1, 'w1', 'w1#1', 150)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'started', priorStarts: 1 });
  });

  it('by taking over the lease of the holder named gone, counting its start', async () => {
    await ctx.startAndDie('w1#1');
    expect(await ctx.begin('w2#1', { goneHolder: 'w1#1' })).toEqual({ kind: 'started', priorStarts: 1 });
    expect(await ctx.redis.get(ctx.key(`lease:${commandId}`))).toBe('w2#1');
  });

  it('the attempt one start short of the limit', async () => {
    await ctx.startAndDie('w1#1');
    expect(await ctx.begin('w2#1', { goneHolder: 'w1#1', startLimit: 2 })).toEqual({ kind: 'started', priorStarts: 1 });
  });

  it('an attempt however often it started when startLimit is 0 (no limit)', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.startAndDie('w2#1', { goneHolder: 'w1#1' });
    await ctx.startAndDie('w3#1', { goneHolder: 'w2#1' });
    expect(await ctx.begin('w4#1', { goneHolder: 'w3#1', startLimit: 0 })).toEqual({ kind: 'started', priorStarts: 3 });
  });

  it('a new attempt without counting the starts of an earlier one', async () => {
    await ctx.startAndDie('w1#1', { attempt: 1 });
    await ctx.startAndDie('w2#1', { attempt: 1, goneHolder: 'w1#1' });
    expect(await ctx.begin('w3#1', { attempt: 2, goneHolder: 'w2#1', startLimit: 2 })).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('the next attempt of a command whose earlier attempt failed (its record still in Redis)', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1, 'failed'), 'w1#1');
    expect(await ctx.begin('w2#1', { attempt: 2 })).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('the next attempt of a command whose failed attempt the tasker forgot (only its mark left)', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1, 'failed'), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect(await ctx.begin('w2#1', { attempt: 2 })).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('a command whose stored record is not JSON (written by something else)', async () => {
    await ctx.redis.hset(ctx.key('results'), commandId, 'not json');
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'started', priorStarts: 0 });
  });
});

describe('beginCommand answers busy', () => {
  it('with the holder while another owner holds a live lease', async () => {
    await ctx.begin('w1#1');
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'busy', holder: 'w1#1' });
  });

  it('with its own name to the owner that holds the lease already', async () => {
    await ctx.begin('w1#1');
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'busy', holder: 'w1#1' });
  });

  it('with the holder when the gone holder named is someone else', async () => {
    await ctx.begin('w1#1');
    expect(await ctx.begin('w2#1', { goneHolder: 'w3#1' })).toEqual({ kind: 'busy', holder: 'w1#1' });
  });

  it('not poison, while a holder lives, however often the attempt started', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.startAndDie('w2#1', { goneHolder: 'w1#1' });
    expect(await ctx.begin('w3#1', { startLimit: 2 })).toEqual({ kind: 'busy', holder: 'w2#1' });
  });
});

describe('beginCommand answers poison', () => {
  it('once the attempt started startLimit times without a result, with its starts and workers', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.startAndDie('w2#1', { goneHolder: 'w1#1' });
    expect(await ctx.begin('w3#1', { goneHolder: 'w2#1', startLimit: 2 })).toEqual({ kind: 'poison', starts: { attempt: 1, n: 2, workers: ['w1', 'w2'] } });
  });

  it('and leaves the lease free', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.begin('w2#1', { goneHolder: 'w1#1', startLimit: 1 });
    expect(await ctx.redis.exists(ctx.key(`lease:${commandId}`))).toBe(0);
  });

  it('with no workers when the starts record lists none (Lua writes an empty list as {})', async () => {
    await ctx.redis.hset(ctx.key('starts'), commandId, JSON.stringify({ attempt: 1, n: 3, workers: [] }));
    expect(await ctx.begin('w1#1', { startLimit: 3 })).toEqual({ kind: 'poison', starts: { attempt: 1, n: 3, workers: [] } });
  });
});

describe('beginCommand answers finished', () => {
  it('with the record of this attempt while Redis has it', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1, 'failed'), 'w1#1');
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'finished', record: resultRecord(commandId, 1, 'failed') });
  });

  it('with the record of an earlier attempt that succeeded', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.begin('w2#1', { attempt: 2 })).toEqual({ kind: 'finished', record: resultRecord(commandId, 1) });
  });

  it('without a record once the tasker forgot a success (its ok bit is set)', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect(await ctx.begin('w2#1', { attempt: 2 })).toEqual({ kind: 'finished' });
  });

  it('without a record once the tasker forgot this failed attempt (its failed bit is set)', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1, 'timed-out'), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'finished' });
  });

  it('for an id the tasker does not make, by the bitmap of its own', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord('setup', 1), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: 'setup', attempt: 1 }]);
    expect(await ctx.begin('w2#1', { id: 'setup' })).toEqual({ kind: 'finished' });
  });

  it('rather than stopped, when the run is interrupted', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.store.stopRun(ctx.runId);
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'finished', record: resultRecord(commandId, 1) });
  });
});

describe('beginCommand answers stopped', () => {
  it('while the run is interrupted', async () => {
    await ctx.store.stopRun(ctx.runId);
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'stopped' });
  });

  it('and takes that attempt off published, so a resumed tasker publishes it again', async () => {
    await ctx.store.markPublished(ctx.runId, [{ id: commandId, attempt: 1 }, { id: 'f1-L8', attempt: 1 }]);
    await ctx.store.stopRun(ctx.runId);
    await ctx.begin('w1#1');
    expect(await ctx.store.publishedAttempts(ctx.runId)).toEqual(new Map([['f1-L8', 1]]));
  });

  it('and leaves a newer published attempt of the command published', async () => {
    await ctx.store.markPublished(ctx.runId, [{ id: commandId, attempt: 2 }]);
    await ctx.store.stopRun(ctx.runId);
    await ctx.begin('w1#1', { attempt: 1 });
    expect(await ctx.store.publishedAttempts(ctx.runId)).toEqual(new Map([[commandId, 2]]));
  });

  it('without taking the lease', async () => {
    await ctx.store.stopRun(ctx.runId);
    await ctx.begin('w1#1');
    expect(await ctx.redis.exists(ctx.key(`lease:${commandId}`))).toBe(0);
  });
});

describe('beginCommand answers cancelled', () => {
  it('once the run is cancelled (purged)', async () => {
    await ctx.store.cancelRun(ctx.runId, { by: 'test', at: new Date().toISOString() });
    expect(await ctx.begin('w1#1')).toEqual({ kind: 'cancelled' });
  });

  it('before anything else, even with a recorded result', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.store.cancelRun(ctx.runId, { by: 'test', at: new Date().toISOString() });
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'cancelled' });
  });

  it('for a week: the cancelled key expires by itself', async () => {
    await ctx.store.cancelRun(ctx.runId, { by: 'test', at: new Date().toISOString() });
    const ttl = await ctx.redis.ttl(ctx.names.cancelledKey(ctx.runId));
    expect(ttl).toBeGreaterThan(7 * 24 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(7 * 24 * 3600);
  });
});
