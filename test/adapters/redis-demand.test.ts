import { describe, expect, it } from 'vitest';
import { demandStaleMs, type RunDemand } from '../../shared/state/fair-share.js';
import { useRunStore } from './run-store-fixture.js';

/** The pools' demand tables (fair share between runs) through the RunStore on the real Redis. */

const ctx = useRunStore();

function entry(runId: string, demand: number, at = Date.now()): RunDemand {
  return { runId, priority: 'normal', demand, inFlight: Math.min(demand, 8), phase: 'sims', at };
}

describe('pool demand table', () => {
  it('returns every live entry of the pool, its own too, in one call; pools are apart', async () => {
    expect(await ctx.store.shareDemand('default', entry('a', 3000))).toEqual([entry('a', 3000, expect.any(Number) as unknown as number)]);
    await ctx.store.shareDemand('highmem', entry('h', 5));
    const seen = await ctx.store.shareDemand('default', entry('b', 40));
    expect(seen.map((run) => [run.runId, run.demand])).toEqual([
      ['a', 3000],
      ['b', 40],
    ]);
    expect((await ctx.store.poolDemand('highmem')).map((run) => run.runId)).toEqual(['h']);
  });

  it('leaves out and deletes the entry of a tasker gone quiet; a withdrawn run is gone', async () => {
    await ctx.store.shareDemand('default', entry('gone', 100, Date.now() - demandStaleMs - 1000));
    await ctx.store.shareDemand('default', entry('left', 10));
    await ctx.store.withdrawDemand('default', 'left');
    expect(await ctx.store.shareDemand('default', entry('live', 10))).toHaveLength(1);
    expect(await ctx.redis.hkeys(ctx.names.poolDemandKey('default'))).toEqual(['live']);
  });

  it('announces a run joining the pool once, to those that listen to that pool', async () => {
    const joined: string[] = [];
    const stop = await ctx.store.onDemandJoined('default', () => joined.push('default'));
    const stopOther = await ctx.store.onDemandJoined('highmem', () => joined.push('highmem'));
    await ctx.store.shareDemand('default', entry('a', 10));
    await ctx.store.shareDemand('default', entry('a', 9));
    await ctx.store.shareDemand('default', entry('b', 9));
    await expect.poll(() => joined.length).toBe(2);
    expect(joined).toEqual(['default', 'default']);
    await stop();
    await stopOther();
    await ctx.store.shareDemand('default', entry('c', 1));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(joined).toHaveLength(2);
  });
});
