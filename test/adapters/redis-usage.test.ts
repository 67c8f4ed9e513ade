import { describe, expect, it } from 'vitest';
import { commandId, useRunStore } from './run-store-fixture.js';

/** The last memory samples of running commands (redis-usage.ts), on the real Redis. */

const ctx = useRunStore();

describe('usage samples', () => {
  it('lastUsage returns the last sample noteUsage wrote, with a TTL, and nothing for another command', async () => {
    const first = { attempt: 1, rssBytes: 100, worker: 'w1', at: '2026-01-01T00:00:00.000Z' };
    const last = { attempt: 1, rssBytes: 1900, limitBytes: 2000, worker: 'w1', pod: true, at: '2026-01-01T00:00:01.000Z' };
    await ctx.store.noteUsage(ctx.runId, new Map([[commandId, first]]));
    await ctx.store.noteUsage(ctx.runId, new Map([[commandId, last], ['f1-L8', first]]));
    expect(await ctx.store.lastUsage(ctx.runId, commandId)).toEqual(last);
    expect(await ctx.store.lastUsage(ctx.runId, 'f1-L9')).toBeUndefined();
    expect(await ctx.redis.ttl(ctx.key('usage'))).toBeGreaterThan(0);
  });

  it('is purged with the run', async () => {
    await ctx.store.noteUsage(ctx.runId, new Map([[commandId, { attempt: 1, rssBytes: 1, worker: 'w1', at: '' }]]));
    await ctx.store.purgeRun(ctx.runId);
    expect(await ctx.store.lastUsage(ctx.runId, commandId)).toBeUndefined();
  });
});
