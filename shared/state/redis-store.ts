import { Redis } from 'ioredis';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import type { Names } from '../config/names.js';
import { redactUrl } from '../config/urls.js';
import { parseResultLine, type ResultRecord } from './results.js';

/**
 * Run state shared by tasker and workers, in Redis. The one Redis adapter.
 *
 * Per run (NS:run:RUN_ID:...):
 *   meta       hash   state, phase, counts, tasker heartbeat (for `tasker status` and purge)
 *   done       hash   command id -> attempt that succeeded (duplicate deliveries are skipped)
 *   results    hash   command id -> latest result record (JSON), written before the message is acked
 *   running    hash   command id -> {worker, since, attempt} while it runs
 *   published  hash   command id -> attempt in flight (a resumed tasker does not publish it again)
 *   lease:ID   string owner of a running command, with a TTL renewed by the owner's heartbeat
 * NS:runs      sorted set of run ids by start time;   NS:worker:ID  worker heartbeat, with a TTL
 */

export type RunState = 'running' | 'finished' | 'cancelled';

export interface RunMeta {
  runId: string;
  state: RunState;
  startedAt: string;
  heartbeatAt: string;
  host: string;
  workdir: string;
  phase: string;
  phaseIndex: number;
  phaseCount: number;
  total: number;
  done: number;
  failed: number;
  status?: string;
}

export interface RunningInfo {
  worker: string;
  attempt: number;
  since: string;
  command: string;
  phase: string;
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  startedAt: string;
  running: { runId: string; id: string; attempt: number; since: string; command: string }[];
}

/** What a worker may do with a delivered command, decided atomically in Redis. */
export type BeginOutcome =
  | { kind: 'cancelled' }
  /** A result for this attempt (or a success of any attempt) is already recorded. */
  | { kind: 'finished'; record: ResultRecord }
  /** Lease taken and the command marked running: run it. */
  | { kind: 'started' }
  /** Another live worker holds the lease: it is running this command right now. */
  | { kind: 'busy'; holder: string };

export interface RunStore {
  /** One round trip: cancelled? already finished? else take the lease and mark it running. */
  beginCommand(runId: string, id: string, attempt: number, owner: string, ttlMs: number, running: RunningInfo): Promise<BeginOutcome>;
  /** One round trip: record the result, clear "running", release the caller's lease. */
  finishCommand(runId: string, record: ResultRecord, owner: string): Promise<void>;
  /** Gives a command up without a result (shutdown): clear "running", release the lease. */
  abandonCommand(runId: string, id: string, owner: string): Promise<void>;
  /** Latest recorded result of each command, for the ids given (missing ones are left out). */
  latestResults(runId: string, ids: readonly string[]): Promise<Map<string, ResultRecord>>;
  registerRun(meta: RunMeta): Promise<void>;
  updateRun(runId: string, fields: Partial<RunMeta>): Promise<void>;
  getRun(runId: string): Promise<RunMeta | undefined>;
  latestRunIds(count: number): Promise<string[]>;
  cancelRun(runId: string): Promise<void>;
  markPublished(runId: string, id: string, attempt: number): Promise<void>;
  clearPublished(runId: string, id: string): Promise<void>;
  publishedAttempts(runId: string): Promise<Map<string, number>>;
  renewLease(runId: string, id: string, owner: string, ttlMs: number): Promise<boolean>;
  running(runId: string): Promise<Map<string, RunningInfo>>;
  workerHeartbeat(info: WorkerInfo, ttlMs: number): Promise<void>;
  removeWorker(id: string): Promise<void>;
  workers(): Promise<WorkerInfo[]>;
  purgeRun(runId: string): Promise<number>;
  /** Lets a finished run's keys expire, so nothing piles up in Redis. */
  expireRun(runId: string, seconds: number): Promise<void>;
  close(): Promise<void>;
}

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

/**
 * Connects and checks the server answers. Commands wait through a Redis restart (they are
 * queued and retried) instead of failing: losing a result write would lose a command.
 */
export async function createRunStore(url: string, names: Names, logger: Logger): Promise<RunStore> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(10_000, 100 * 2 ** Math.min(times, 7)),
    connectionName: 'tasker',
  });
  // Scripts run by hash (EVALSHA; ioredis loads them on a NOSCRIPT reply): their text is not sent per call.
  redis.defineCommand('taskerBegin', { numberOfKeys: 5, lua: beginScript });
  redis.defineCommand('taskerFinish', { numberOfKeys: 4, lua: finishScript });
  redis.defineCommand('taskerRelease', { numberOfKeys: 1, lua: releaseScript });
  redis.defineCommand('taskerRenew', { numberOfKeys: 1, lua: renewScript });
  const scripts = redis as unknown as Record<'taskerBegin' | 'taskerFinish' | 'taskerRelease' | 'taskerRenew', (...args: string[]) => Promise<unknown>>;
  let outage = false;
  let connected = false;
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
    // Before the first connection, start-up reports the failure once, as an input error.
    if (connected && !outage) logger.warn({ err: { message: error.message } }, 'Redis connection problem; retrying');
    outage = true;
  });
  redis.on('ready', () => {
    if (outage && connected) logger.info('reconnected to Redis');
    outage = false;
  });
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
    await redis.ping();
    // A refused SELECT (no such database) is reported as an error event, and ioredis carries on
    // in database 0: this run's state would land where nobody looks for it.
    if (lastError?.name === 'ReplyError') throw lastError;
    connected = true;
    outage = false;
  } catch (error) {
    redis.disconnect();
    const message = errorMessage(lastError ?? error);
    const where = redactUrl(url);
    const hint = /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)
      ? `Redis at ${where} refused the password (check REDIS_URL)`
      : /DB index/i.test(message)
        ? `Redis at ${where} has no database ${new URL(url).pathname.slice(1)} (${message}); check the number at the end of REDIS_URL, or leave it out for database 0`
        : `cannot reach Redis at ${where}: ${message.replaceAll(url, where)} (is it running? check REDIS_URL)`;
    throw new InputError('config', hint, { cause: error });
  }

  const key = names.runKey;
  const parseJson = <T>(text: string | null | undefined): T | undefined => {
    if (text === null || text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined; // a value written by something else: treat as absent
    }
  };

  return {
    async beginCommand(runId, id, attempt, owner, ttlMs, running) {
      const reply = (await scripts.taskerBegin(
        names.cancelledKey(runId),
        key(runId, 'results'),
        key(runId, 'done'),
        key(runId, `lease:${id}`),
        key(runId, 'running'),
        id,
        String(attempt),
        owner,
        String(ttlMs),
        JSON.stringify(running),
      )) as string[];
      const [kind, detail] = reply;
      if (kind === 'cancelled') return { kind };
      if (kind === 'started') return { kind };
      if (kind === 'finished') {
        const record = parseResultLine(detail ?? '');
        if (record !== undefined) return { kind, record };
      }
      return { kind: 'busy', holder: detail ?? '' };
    },
    async finishCommand(runId, record, owner) {
      await scripts.taskerFinish(
        key(runId, 'results'),
        key(runId, 'done'),
        key(runId, 'running'),
        key(runId, `lease:${record.id}`),
        record.id,
        JSON.stringify(record),
        record.outcome === 'succeeded' ? String(record.attempt) : '',
        owner,
      );
    },
    async abandonCommand(runId, id, owner) {
      await redis.hdel(key(runId, 'running'), id);
      await scripts.taskerRelease(key(runId, `lease:${id}`), owner);
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
    async registerRun(meta) {
      await redis
        .multi()
        .hset(key(meta.runId, 'meta'), { json: JSON.stringify(meta) })
        .zadd(names.runsIndexKey, Date.parse(meta.startedAt), meta.runId)
        .exec();
    },
    async updateRun(runId, fields) {
      const current = parseJson<RunMeta>(await redis.hget(key(runId, 'meta'), 'json'));
      if (current === undefined) return;
      await redis.hset(key(runId, 'meta'), { json: JSON.stringify({ ...current, ...fields }) });
    },
    async getRun(runId) {
      return parseJson<RunMeta>(await redis.hget(key(runId, 'meta'), 'json'));
    },
    async latestRunIds(count) {
      return redis.zrevrange(names.runsIndexKey, 0, count - 1);
    },
    async cancelRun(runId) {
      // Kept for a week: workers drop this run's leftover messages instead of running them.
      await redis.set(names.cancelledKey(runId), '1', 'EX', 7 * 24 * 3600);
    },
    async markPublished(runId, id, attempt) {
      await redis.hset(key(runId, 'published'), id, String(attempt));
    },
    async clearPublished(runId, id) {
      await redis.hdel(key(runId, 'published'), id);
    },
    async publishedAttempts(runId) {
      const all = await redis.hgetall(key(runId, 'published'));
      return new Map(Object.entries(all).map(([id, attempt]) => [id, Number(attempt)]));
    },
    async renewLease(runId, id, owner, ttlMs) {
      return (await scripts.taskerRenew(key(runId, `lease:${id}`), owner, String(ttlMs))) === 1;
    },
    async running(runId) {
      const all = await redis.hgetall(key(runId, 'running'));
      const out = new Map<string, RunningInfo>();
      for (const [id, json] of Object.entries(all)) {
        const info = parseJson<RunningInfo>(json);
        if (info !== undefined) out.set(id, info);
      }
      return out;
    },
    async workerHeartbeat(info, ttlMs) {
      await redis.set(names.workerKey(info.id), JSON.stringify(info), 'PX', ttlMs);
    },
    async removeWorker(id) {
      await redis.del(names.workerKey(id));
    },
    async workers() {
      const found: WorkerInfo[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', names.workerKeyPattern, 'COUNT', 200);
        cursor = next;
        if (keys.length > 0) {
          for (const value of await redis.mget(...keys)) {
            const info = parseJson<WorkerInfo>(value);
            if (info !== undefined) found.push(info);
          }
        }
      } while (cursor !== '0');
      return found.sort((a, b) => a.id.localeCompare(b.id));
    },
    async purgeRun(runId) {
      let removed = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${key(runId, 'meta').slice(0, -'meta'.length)}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) removed += await redis.del(...keys);
      } while (cursor !== '0');
      await redis.zrem(names.runsIndexKey, runId);
      return removed;
    },
    async expireRun(runId, seconds) {
      const multi = redis.multi();
      for (const part of ['meta', 'done', 'results', 'running', 'published'] as const) multi.expire(key(runId, part), seconds);
      await multi.exec();
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
