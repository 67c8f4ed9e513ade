import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { batchScript, createScriptBatch } from '../../shared/redis/redis-command-batch.js';

/** Script calls of one tick in one script call (redis-command-batch.ts), on the real Redis. */

const bodies = {
  // Each body reads its own KEYS and ARGV, as a script of its own would.
  append: "redis.call('rpush', KEYS[1], ARGV[1]); return redis.call('llen', KEYS[1])",
  pair: "return {KEYS[1], ARGV[1], ARGV[2]}",
  fail: "error('refused: ' .. ARGV[1])",
};

const clients: Redis[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** A client of its own, and a key prefix of its own on the shared Redis. */
function client(): { redis: Redis; prefix: string } {
  const redis = new Redis(inject('redisUrl'), { enableAutoPipelining: false, lazyConnect: false });
  clients.push(redis);
  return { redis, prefix: `batch-test-${randomBytes(4).toString('hex')}` };
}

describe('createScriptBatch', () => {
  it('sends the calls made in one tick as one script call; each call gets its own reply, in order', async () => {
    const { redis, prefix } = client();
    const batch = createScriptBatch(redis, 'testBatch', bodies);
    await batch.call('pair', ['k'], ['0', '0']); // Redis knows the script from now on (ioredis loads it on NOSCRIPT)
    const sent: string[][] = [];
    const sendCommand = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string; args: unknown[] }) => {
      sent.push([command.name, ...command.args.map(String)]);
      return sendCommand(command as never);
    }) as typeof redis.sendCommand;
    const replies = await Promise.all([
      batch.call('append', [`${prefix}:list`], ['a']),
      batch.call('pair', [`${prefix}:x`], ['1', '2']),
      batch.call('append', [`${prefix}:list`], ['b']),
    ]);
    expect(replies).toEqual([1, [`${prefix}:x`, '1', '2'], 2]);
    expect(await redis.lrange(`${prefix}:list`, 0, -1)).toEqual(['a', 'b']);
    expect(sent.map(([name]) => name)).toEqual(['evalsha', 'lrange']);
    await redis.del(`${prefix}:list`);
  });

  it('calls of later ticks go in later batches', async () => {
    const { redis, prefix } = client();
    const batch = createScriptBatch(redis, 'testBatch', bodies);
    expect(await batch.call('append', [`${prefix}:list`], ['a'])).toBe(1);
    expect(await batch.call('append', [`${prefix}:list`], ['b'])).toBe(2);
    await redis.del(`${prefix}:list`);
  });

  it('a batch that fails fails each of its calls', async () => {
    const { redis, prefix } = client();
    const batch = createScriptBatch(redis, 'testBatch', bodies);
    const outcomes = await Promise.allSettled([batch.call('append', [`${prefix}:list`], ['a']), batch.call('fail', [], ['no'])]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain('refused: no');
    await redis.del(`${prefix}:list`);
  });
});

describe('batchScript', () => {
  it("reads each body's KEYS and ARGV at its call's offsets, with no table per call", () => {
    const script = batchScript({ one: "return {KEYS[1], ARGV[12]}" });
    expect(script).toContain("scripts['one'] = function(k, a)\nreturn {KEYS[k + 1], ARGV[a + 12]}\nend");
  });

  it('refuses a body that reads KEYS or ARGV other than by a literal index', () => {
    expect(() => batchScript({ all: 'return #ARGV' })).toThrow(/script all reads KEYS or ARGV other than by a literal index/);
    expect(() => batchScript({ loop: 'for i = 1, 2 do redis.call("del", KEYS[i]) end' })).toThrow(/script loop/);
  });
});
