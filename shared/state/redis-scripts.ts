import type { Redis } from 'ioredis';

/**
 * The Lua scripts that make a command's state changes atomic: each runs in one round trip, so
 * two workers given the same command cannot both start it, and a result is never recorded
 * without "running" and the lease being cleared with it.
 */

// Release and renew only the caller's own lease: compare-and-delete / compare-and-expire.
const releaseScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const renewScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

// KEYS: cancelled, results, done, lease, running. ARGV: id, attempt, owner, ttlMs, running JSON.
const beginScript = `
if redis.call('exists', KEYS[1]) == 1 then return {'cancelled'} end
local latest = redis.call('hget', KEYS[2], ARGV[1])
if latest then
  local ok, record = pcall(cjson.decode, latest)
  if ok and (tonumber(record['attempt']) == tonumber(ARGV[2]) or record['outcome'] == 'succeeded') then return {'finished', latest} end
end
if redis.call('set', KEYS[4], ARGV[3], 'PX', ARGV[4], 'NX') then
  redis.call('hset', KEYS[5], ARGV[1], ARGV[5])
  return {'started'}
end
return {'busy', redis.call('get', KEYS[4]) or ''}`;

// KEYS: results, done, running, lease. ARGV: id, record JSON, succeeded attempt or '', owner.
const finishScript = `
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hdel', KEYS[3], ARGV[1])
if ARGV[3] ~= '' then redis.call('hset', KEYS[2], ARGV[1], ARGV[3]) end
if redis.call('get', KEYS[4]) == ARGV[4] then redis.call('del', KEYS[4]) end
return 1`;

/** The scripts as commands on the client: keys first, then arguments, all as strings. */
export type RunScripts = Record<'taskerBegin' | 'taskerFinish' | 'taskerRelease' | 'taskerRenew', (...args: string[]) => Promise<unknown>>;

export function defineRunScripts(redis: Redis): RunScripts {
  // Scripts run by hash (EVALSHA; ioredis loads them on a NOSCRIPT reply): their text is not sent per call.
  redis.defineCommand('taskerBegin', { numberOfKeys: 5, lua: beginScript });
  redis.defineCommand('taskerFinish', { numberOfKeys: 4, lua: finishScript });
  redis.defineCommand('taskerRelease', { numberOfKeys: 1, lua: releaseScript });
  redis.defineCommand('taskerRenew', { numberOfKeys: 1, lua: renewScript });
  return redis as unknown as RunScripts;
}
