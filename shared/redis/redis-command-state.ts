import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import { failedMark, succeededMark } from './marks.js';
import { parseStoredJson } from './redis-json.js';
import type { RunScripts } from './redis-scripts.js';
import { parseResultLine, type ResultRecord } from '../state/results.js';
import type { BeginOutcome, RunStore } from '../state/run-store.js';

/**
 * One command's state during a run: the lease of the worker running it, its starts, its latest
 * result, and which attempt the tasker has published.
 */

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

export function createCommandState(redis: Redis, scripts: RunScripts, names: Names): CommandState {
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
      const reply = await scripts.taskerBegin(...keys, id, String(attempt), owner, String(ttlMs), String(startLimit), String(succeeded.bit), String(failed.bit), goneHolder);
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
      return Number(await scripts.taskerStart(key(runId, 'starts'), key(runId, `lease:${id}`), id, String(attempt), worker, owner, String(ttlMs)));
    },
    async finishCommand(runId, record, owner) {
      const mark = record.outcome === 'succeeded' ? succeededMark(record.id) : failedMark(record.id, record.attempt);
      const keys = [key(runId, 'results'), key(runId, `lease:${record.id}`), key(runId, 'starts'), key(runId, mark.part), names.cancelledKey(runId)];
      await scripts.taskerFinish(...keys, record.id, JSON.stringify(record), owner, String(mark.bit));
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
