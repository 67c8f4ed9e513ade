import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { failedMark, succeededMark } from './marks.js';
import { createScriptBatch } from './redis-command-batch.js';
import { parseStoredJson } from './redis-json.js';
import { parseResultLine, type ResultRecord } from '../state/results.js';
import type { BeginOutcome, RunStore } from '../state/run-store.js';

/**
 * One command's state during a run: the lease of the worker running it, its starts, its latest
 * result, and which attempt the tasker has published. The Lua scripts below make each change
 * atomic, in one round trip: two workers given the same command cannot both start it, and a
 * result is never recorded without the lease and the starts being cleared with it.
 */

// Renew only the caller's own lease: compare-and-expire.
const renewScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

// A command's starts (starts hash, field = id): {attempt, n, workers}, the starts of its current
// attempt that have no result yet. Only a start counts towards poison, never a delivery.

// KEYS: cancelled, results, lease, starts, stopped, published, succeeded mark, failed mark, meta, over.
// ARGV: id, attempt, owner, ttlMs, start limit (0: none), succeeded bit, failed bit, gone holder ('' for none).
// A command runs only for a run that exists (its meta: registered by its tasker, gone once purged
// or 7 days after its end) and is neither purged (cancelled) nor over; nothing is written for
// one that is. A duplicate of a finished attempt is answered as such first, live run or over: its
// marks say it ran, and they live as long as the run's meta (a late copy after the run's end is
// harmless). "over" catches the rest of a finished run's messages (attempts without a result:
// never run, dead-lettered by RabbitMQ, or not the run's at all), so they are dead-lettered.
// The run's state is the first thing read: a replay of a purged or expired run runs nothing.
// A gone holder (its worker is known dead: worker/message/lease-holder.ts) loses the lease here if it still
// holds it; the command's starts are then read as when a lease expired (the dead worker's start
// counts: the command runs alone, and a poison one is still caught).
// A finished attempt answers with its record while Redis still has it (the tasker may not have it
// yet), or with nothing once only its mark is left (the tasker recorded it in results.jsonl).
// A command of a stopped (interrupted) run is dropped, and its publication taken back in the
// same step: the tasker that resumes the run clears "stopped" before it reads "published", so it
// publishes again exactly the commands dropped here, and awaits the others.
// What runs where is not kept here: workers' heartbeats say it (one source for `tasker status`).
const beginScript = `
if redis.call('exists', KEYS[1]) == 1 then return {'cancelled'} end
if redis.call('exists', KEYS[9]) == 0 then return {'unknown'} end
local latest = redis.call('hget', KEYS[2], ARGV[1])
if latest then
  local ok, record = pcall(cjson.decode, latest)
  if ok and (tonumber(record['attempt']) == tonumber(ARGV[2]) or record['outcome'] == 'succeeded') then return {'finished', latest} end
end
if redis.call('getbit', KEYS[7], ARGV[6]) == 1 or redis.call('getbit', KEYS[8], ARGV[7]) == 1 then return {'finished'} end
if redis.call('exists', KEYS[10]) == 1 then return {'over'} end
if redis.call('exists', KEYS[5]) == 1 then
  if redis.call('hget', KEYS[6], ARGV[1]) == ARGV[2] then redis.call('hdel', KEYS[6], ARGV[1]) end
  return {'stopped'}
end
if ARGV[8] ~= '' and redis.call('get', KEYS[3]) == ARGV[8] then redis.call('del', KEYS[3]) end
local limit = tonumber(ARGV[5])
local prior = 0
if redis.call('exists', KEYS[3]) == 0 then
  local starts = redis.call('hget', KEYS[4], ARGV[1])
  if starts then
    local ok, s = pcall(cjson.decode, starts)
    if ok and tonumber(s['attempt']) == tonumber(ARGV[2]) then
      prior = tonumber(s['n'])
      if limit > 0 and prior >= limit then return {'poison', starts} end
    end
  end
end
if redis.call('set', KEYS[3], ARGV[3], 'PX', ARGV[4], 'NX') then return {'started', tostring(prior)} end
return {'busy', redis.call('get', KEYS[3]) or ''}`;

// KEYS: results, lease, starts, mark, cancelled. ARGV: id, record JSON, owner, mark bit.
// The record stays until the tasker has it in results.jsonl (forgetScript); the mark stays.
// A cancelled run's result is ignored (nobody awaits it): only the lease is released, so nothing
// of a run purged meanwhile is written again.
const finishScript = `
if redis.call('exists', KEYS[5]) == 1 then
  if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
  return 0
end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hdel', KEYS[3], ARGV[1])
redis.call('setbit', KEYS[4], ARGV[4], 1)
if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
return 1`;

// KEYS: results, published. ARGV: id, attempt, id, attempt, ... (attempts the tasker recorded in
// results.jsonl). Their records leave Redis (their marks stay), and they are no longer in flight.
const forgetScript = `
for i = 1, #ARGV, 2 do
  local stored = redis.call('hget', KEYS[1], ARGV[i])
  if stored then
    local ok, record = pcall(cjson.decode, stored)
    if not ok or tonumber(record['attempt']) <= tonumber(ARGV[i + 1]) then redis.call('hdel', KEYS[1], ARGV[i]) end
  end
  redis.call('hdel', KEYS[2], ARGV[i])
end
return 1`;

// KEYS: starts, lease. ARGV: id, attempt, worker, owner, ttlMs. Returns the starts of this
// attempt so far, those handed back included (their trace in the result's `starts`), or -1 when
// the caller no longer holds the lease (nothing counted, not to run).
const startScript = `
if redis.call('get', KEYS[2]) ~= ARGV[4] then return -1 end
redis.call('pexpire', KEYS[2], ARGV[5])
local s = nil
local stored = redis.call('hget', KEYS[1], ARGV[1])
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok then s = decoded end
end
if s == nil or tonumber(s['attempt']) ~= tonumber(ARGV[2]) then s = {attempt = tonumber(ARGV[2]), n = 0, workers = {}} end
local workers = s['workers']
if type(workers) ~= 'table' then workers = {} end
table.insert(workers, ARGV[3])
while #workers > 20 do table.remove(workers, 1) end
s['workers'] = workers
s['n'] = tonumber(s['n']) + 1
redis.call('hset', KEYS[1], ARGV[1], cjson.encode(s))
return s['n'] + (tonumber(s['handedBack']) or 0)`;

// KEYS: lease, starts. ARGV: id, owner, attempt whose start is taken back ('' for none), worker.
// A command given up for a known reason (drain deadline, the worker's own failure) did not kill
// its worker: its start no longer counts towards poison (n), but is kept as handed back, so the
// attempt's final record still says it started more than once.
const abandonScript = `
if redis.call('get', KEYS[1]) == ARGV[2] then redis.call('del', KEYS[1]) end
if ARGV[3] == '' then return 1 end
local stored = redis.call('hget', KEYS[2], ARGV[1])
if not stored then return 1 end
local ok, s = pcall(cjson.decode, stored)
if not ok or tonumber(s['attempt']) ~= tonumber(ARGV[3]) or tonumber(s['n']) < 1 then return 1 end
s['n'] = tonumber(s['n']) - 1
s['handedBack'] = (tonumber(s['handedBack']) or 0) + 1
local workers = s['workers']
if type(workers) == 'table' then
  for i = #workers, 1, -1 do
    if workers[i] == ARGV[4] then table.remove(workers, i) break end
  end
end
redis.call('hset', KEYS[2], ARGV[1], cjson.encode(s))
return 1`;

/** The command scripts as commands on the client: keys first, then arguments, all as strings. Named after the project, not the tasker program (workers call begin, start, finish, abandon and renew). */
type CommandScripts = Record<'taskerForget' | 'taskerAbandon' | 'taskerRenew', (...args: string[]) => Promise<unknown>>;

function defineCommandScripts(redis: Redis): CommandScripts {
  // Scripts run by hash (EVALSHA; ioredis loads them on a NOSCRIPT reply): their text is not sent per call.
  redis.defineCommand('taskerForget', { numberOfKeys: 2, lua: forgetScript });
  redis.defineCommand('taskerAbandon', { numberOfKeys: 2, lua: abandonScript });
  redis.defineCommand('taskerRenew', { numberOfKeys: 1, lua: renewScript });
  return redis as unknown as CommandScripts;
}

/** The scripts of every command's path (begin, start, finish): made in one tick, they go to Redis in one call (redis-command-batch.ts). */
const perCommandScripts = { begin: beginScript, start: startScript, finish: finishScript };

type CommandState = Pick<
  RunStore,
  'beginCommand' | 'recordStart' | 'finishCommand' | 'abandonCommand' | 'renewLease' | 'latestResults' | 'markPublished' | 'forgetRecorded' | 'publishedAttempts' | 'clearSucceeded'
>;

/** The begin script's reply: [kind] or [kind, detail]. */
function parseBeginReply(reply: string[]): BeginOutcome {
  const [kind, detail] = reply;
  if (kind === 'cancelled' || kind === 'unknown' || kind === 'over' || kind === 'stopped') return { kind };
  if (kind === 'started') return { kind, priorStarts: Number(detail ?? 0) || 0 };
  if (kind === 'finished') {
    if (detail === undefined) return { kind };
    // A record that does not parse is still a finished attempt: never read as "busy", which would wait for ever.
    const record = parseResultLine(detail);
    return record === undefined ? { kind } : { kind, record };
  }
  if (kind === 'poison') {
    const starts = parseStoredJson<{ attempt?: unknown; n?: unknown; workers?: unknown }>(detail ?? '');
    const workers = Array.isArray(starts?.workers) ? starts.workers.map(String) : []; // cjson writes {} for an empty list
    return { kind, starts: { attempt: Number(starts?.attempt), n: Number(starts?.n), workers } };
  }
  return { kind: 'busy', holder: detail ?? '' };
}

export function createCommandState(redis: Redis, names: Names): CommandState {
  const scripts = defineCommandScripts(redis);
  const batch = createScriptBatch(redis, 'taskerCommandBatch', perCommandScripts);
  const key = names.runKey;
  return {
    async beginCommand(runId, id, attempt, owner, ttlMs, startLimit, goneHolder = '') {
      const [succeeded, failed] = [succeededMark(id), failedMark(id, attempt)];
      const keys = [
        names.cancelledKey(runId),
        key(runId, 'results'),
        key(runId, `lease:${id}`),
        key(runId, 'starts'),
        key(runId, 'stopped'),
        key(runId, 'published'),
        key(runId, succeeded.part),
        key(runId, failed.part),
        key(runId, 'meta'),
        key(runId, 'over'),
      ];
      const reply = await batch.call('begin', keys, [id, String(attempt), owner, String(ttlMs), String(startLimit), String(succeeded.bit), String(failed.bit), goneHolder]);
      return parseBeginReply(reply as string[]);
    },
    async clearSucceeded(runId, ids) {
      // A pipeline of 10,000 at a time: one round trip each, whatever the number of commands.
      for (let from = 0; from < ids.length; from += 10_000) {
        const pipeline = redis.pipeline();
        for (const id of ids.slice(from, from + 10_000)) {
          const mark = succeededMark(id);
          pipeline.setbit(key(runId, mark.part), mark.bit, 0);
        }
        await pipeline.exec();
      }
    },
    async recordStart(runId, id, attempt, worker, owner, ttlMs) {
      return Number(await batch.call('start', [key(runId, 'starts'), key(runId, `lease:${id}`)], [id, String(attempt), worker, owner, String(ttlMs)]));
    },
    async finishCommand(runId, record, owner) {
      const mark = record.outcome === 'succeeded' ? succeededMark(record.id) : failedMark(record.id, record.attempt);
      const keys = [key(runId, 'results'), key(runId, `lease:${record.id}`), key(runId, 'starts'), key(runId, mark.part), names.cancelledKey(runId)];
      await batch.call('finish', keys, [record.id, JSON.stringify(record), owner, String(mark.bit)]);
    },
    async abandonCommand(runId, id, owner, started) {
      const keys = [key(runId, `lease:${id}`), key(runId, 'starts')];
      await scripts.taskerAbandon(...keys, id, owner, started === undefined ? '' : String(started.attempt), started?.worker ?? '');
    },
    async renewLease(runId, id, owner, ttlMs) {
      return (await scripts.taskerRenew(key(runId, `lease:${id}`), owner, String(ttlMs))) === 1;
    },
    async latestResults(runId, ids) {
      const found = new Map<string, ResultRecord>();
      if (ids.length === 0) return found;
      const values = await redis.hmget(key(runId, 'results'), ...ids);
      values.forEach((value, index) => {
        const record = value === null ? undefined : parseResultLine(value);
        if (record !== undefined) found.set(ids[index]!, record);
      });
      return found;
    },
    async markPublished(runId, attempts) {
      if (attempts.length === 0) return;
      await redis.hset(key(runId, 'published'), Object.fromEntries(attempts.map(({ id, attempt }) => [id, String(attempt)])));
    },
    async forgetRecorded(runId, attempts) {
      if (attempts.length === 0) return;
      await scripts.taskerForget(key(runId, 'results'), key(runId, 'published'), ...attempts.flatMap(({ id, attempt }) => [id, String(attempt)]));
    },
    async publishedAttempts(runId) {
      const all = await redis.hgetall(key(runId, 'published'));
      return new Map(Object.entries(all).map(([id, attempt]) => [id, Number(attempt)]));
    },
  };
}
