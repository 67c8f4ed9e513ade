import { describe, expect, it } from 'vitest';
import { commandId, leaseTtlMs, resultRecord, useRunStore } from './run-store-fixture.js';

/**
 * The other command scripts (start, renew, finish, abandon, forget; shared/redis/redis-command-state.ts)
 * and the command state around them, through the RunStore on the real Redis.
 */

const ctx = useRunStore();
const lease = (): string => ctx.key(`lease:${commandId}`);
const recordStart = (worker: string, owner: string, attempt = 1, ttlMs = leaseTtlMs): Promise<number> =>
  ctx.store.recordStart(ctx.runId, commandId, attempt, worker, owner, ttlMs);
/** What the begin script reads of the starts, as poison shows it (no lease held, any start counts). */
async function startsSeen(): Promise<unknown> {
  await ctx.redis.del(lease());
  return ctx.begin('reader#1', { startLimit: 1 });
}

describe('recordStart', () => {
  it('counts the starts of the lease holder’s attempt: 1, then 2', async () => {
    await ctx.begin('w1#1');
    expect([await recordStart('w1', 'w1#1'), await recordStart('w1', 'w1#1')]).toEqual([1, 2]);
  });

  it('returns -1 and counts nothing when another owner holds the lease', async () => {
    await ctx.begin('w1#1');
    expect(await recordStart('w2', 'w2#1')).toBe(-1);
    expect(await ctx.redis.hexists(ctx.key('starts'), commandId)).toBe(0);
  });

  it('returns -1 when no one holds the lease', async () => {
    expect(await recordStart('w1', 'w1#1')).toBe(-1);
  });

  it('renews the holder’s lease to ttlMs', async () => {
    await ctx.begin('w1#1', { ttlMs: 1000 });
    await recordStart('w1', 'w1#1', 1, 30_000);
    expect(await ctx.redis.pttl(lease())).toBeGreaterThan(20_000);
  });

  it('counts afresh for a new attempt, replacing the earlier attempt’s starts', async () => {
    await ctx.startAndDie('w1#1', { attempt: 1 });
    await ctx.begin('w2#1', { attempt: 2, goneHolder: 'w1#1' });
    expect(await recordStart('w2', 'w2#1', 2)).toBe(1);
  });

  it('keeps the last 20 workers that started the attempt', async () => {
    await ctx.begin('w#1');
    for (let i = 0; i < 22; i++) await recordStart(`w${i}`, 'w#1');
    const workers = Array.from({ length: 20 }, (_, i) => `w${i + 2}`);
    expect(await startsSeen()).toEqual({ kind: 'poison', starts: { attempt: 1, n: 22, workers } });
  });
});

describe('renewLease', () => {
  it('extends the owner’s lease to ttlMs, and says so', async () => {
    await ctx.begin('w1#1', { ttlMs: 1000 });
    expect(await ctx.store.renewLease(ctx.runId, commandId, 'w1#1', 30_000)).toBe(true);
    expect(await ctx.redis.pttl(lease())).toBeGreaterThan(20_000);
  });

  it('leaves another owner’s lease as it is, and says false', async () => {
    await ctx.begin('w1#1', { ttlMs: 5000 });
    expect(await ctx.store.renewLease(ctx.runId, commandId, 'w2#1', 30_000)).toBe(false);
    expect(await ctx.redis.pttl(lease())).toBeLessThanOrEqual(5000);
  });

  it('says false, creating nothing, once the lease is gone', async () => {
    expect(await ctx.store.renewLease(ctx.runId, commandId, 'w1#1', 30_000)).toBe(false);
    expect(await ctx.redis.exists(lease())).toBe(0);
  });
});

describe('finishCommand', () => {
  it('records the result', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.store.latestResults(ctx.runId, [commandId])).toEqual(new Map([[commandId, resultRecord(commandId, 1)]]));
  });

  it('of a run cancelled while it ran: records nothing, releases the lease', async () => {
    await ctx.begin('w1#1');
    await ctx.store.cancelRun(ctx.runId, { by: 'test', at: new Date().toISOString() });
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.store.latestResults(ctx.runId, [commandId])).toEqual(new Map());
    expect(await ctx.store.runningCommands(ctx.runId, [commandId])).toEqual(new Set());
  });

  it('releases the caller’s lease', async () => {
    await ctx.begin('w1#1');
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.store.runningCommands(ctx.runId, [commandId])).toEqual(new Set());
  });

  it('leaves the lease of another owner in place', async () => {
    await ctx.begin('w2#1');
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.redis.get(lease())).toBe('w2#1');
  });

  it('clears the command’s starts', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    expect(await ctx.redis.hexists(ctx.key('starts'), commandId)).toBe(0);
  });

  it('sets the ok bit of a success: bit L of the file’s bitmap', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 2), 'w1#1');
    expect([await ctx.redis.getbit(ctx.key('ok:f1'), 7), await ctx.redis.bitcount(ctx.key('ok:f1'))]).toEqual([1, 1]);
  });

  it('sets the failed bit of a failure: in the attempt’s own bitmap', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 2, 'failed'), 'w1#1');
    expect([await ctx.redis.getbit(ctx.key('failed:2:f1'), 7), await ctx.redis.exists(ctx.key('ok:f1'))]).toEqual([1, 0]);
  });
});

describe('abandonCommand', () => {
  it('releases the caller’s lease, so another worker can start the command', async () => {
    await ctx.begin('w1#1');
    await ctx.store.abandonCommand(ctx.runId, commandId, 'w1#1');
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('leaves the lease of another owner in place', async () => {
    await ctx.begin('w1#1');
    await ctx.store.abandonCommand(ctx.runId, commandId, 'w2#1');
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'busy', holder: 'w1#1' });
  });

  it('keeps the start when none is given back', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.store.abandonCommand(ctx.runId, commandId, 'w1#1');
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'started', priorStarts: 1 });
  });

  it('with started, takes that worker’s latest start back', async () => {
    await ctx.begin('a#1');
    for (const worker of ['a', 'b', 'a']) await recordStart(worker, 'a#1');
    await ctx.store.abandonCommand(ctx.runId, commandId, 'a#1', { attempt: 1, worker: 'a' });
    expect(await startsSeen()).toEqual({ kind: 'poison', starts: { attempt: 1, n: 2, workers: ['a', 'b'] } });
  });

  it('with started, the start taken back no longer counts, but the next start counts it (drain deadline trace)', async () => {
    await ctx.startAndDie('w1#1');
    await ctx.store.abandonCommand(ctx.runId, commandId, 'w1#1', { attempt: 1, worker: 'w1' });
    // Not a suspect, not poison: the command ends for a known reason, not by killing its worker.
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'started', priorStarts: 0 });
    // Its start elsewhere is its second: the record says `starts: 2`.
    expect(await recordStart('w2', 'w2#1')).toBe(2);
  });

  it('with started for another attempt, takes nothing back', async () => {
    await ctx.startAndDie('w1#1', { attempt: 1 });
    await ctx.store.abandonCommand(ctx.runId, commandId, 'w1#1', { attempt: 2, worker: 'w1' });
    expect(await ctx.begin('w2#1')).toEqual({ kind: 'started', priorStarts: 1 });
  });
});

describe('forgetRecorded', () => {
  it('removes the records of the attempts given', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.store.finishCommand(ctx.runId, resultRecord('f1-L8', 1), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect([...(await ctx.store.latestResults(ctx.runId, [commandId, 'f1-L8'])).keys()]).toEqual(['f1-L8']);
  });

  it('takes the attempts off published', async () => {
    await ctx.store.markPublished(ctx.runId, [{ id: commandId, attempt: 1 }, { id: 'f1-L8', attempt: 1 }]);
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect(await ctx.store.publishedAttempts(ctx.runId)).toEqual(new Map([['f1-L8', 1]]));
  });

  it('keeps the record of a newer attempt', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 3, 'failed'), 'w1#1');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 2 }]);
    expect(await ctx.store.latestResults(ctx.runId, [commandId])).toEqual(new Map([[commandId, resultRecord(commandId, 3, 'failed')]]));
  });

  it('removes a stored record that is not JSON', async () => {
    await ctx.redis.hset(ctx.key('results'), commandId, 'not json');
    await ctx.store.forgetRecorded(ctx.runId, [{ id: commandId, attempt: 1 }]);
    expect(await ctx.redis.hexists(ctx.key('results'), commandId)).toBe(0);
  });
});

describe('the rest of a command’s state', () => {
  it('publishedAttempts returns the attempt last marked published per command', async () => {
    await ctx.store.markPublished(ctx.runId, [{ id: commandId, attempt: 1 }, { id: 'f1-L8', attempt: 1 }]);
    await ctx.store.markPublished(ctx.runId, [{ id: commandId, attempt: 2 }]);
    expect(await ctx.store.publishedAttempts(ctx.runId)).toEqual(new Map([[commandId, 2], ['f1-L8', 1]]));
  });

  it('latestResults leaves out commands without a record, and records that are not results', async () => {
    await ctx.store.finishCommand(ctx.runId, resultRecord(commandId, 1), 'w1#1');
    await ctx.redis.hset(ctx.key('results'), 'f1-L9', JSON.stringify({ id: 'f1-L9' }));
    expect([...(await ctx.store.latestResults(ctx.runId, [commandId, 'f1-L8', 'f1-L9'])).keys()]).toEqual([commandId]);
  });

  it('runningCommands names the commands whose lease is held', async () => {
    await ctx.begin('w1#1', { id: 'f1-L8' });
    await ctx.begin('w1#1', { id: 'f1-L9' });
    await ctx.store.abandonCommand(ctx.runId, 'f1-L9', 'w1#1');
    expect(await ctx.store.runningCommands(ctx.runId, [commandId, 'f1-L8', 'f1-L9'])).toEqual(new Set(['f1-L8']));
  });
});
