import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { names as namesOf, type Names } from '../../shared/config/names.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import type { RunMeta, RunStore } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { createRunProgressRecorder } from '../../tasker/distributed/run-registration.js';
import type { Progress } from '../../tasker/dispatch/run-phases.js';
import { cleanupNamespace, newNamespace } from '../helpers/distributed.js';

/**
 * The begin script in process, against the real Redis: a command runs only for a run that exists
 * and is neither purged nor over; nothing is written for one that is not; a duplicate of a
 * recorded command is still answered with its record. One outcome per test.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const logger = pino({ level: 'silent' });

let ns: string;
let names: Names;
let store: RunStore;
let redis: Redis;

beforeAll(() => {
  redis = new Redis(services.redisUrl);
});
afterAll(() => redis.disconnect());

beforeEach(async () => {
  ns = newNamespace();
  names = namesOf(ns);
  store = await createRunStore(services.redisUrl, names, logger);
});

afterEach(async () => {
  await store.close();
  await cleanupNamespace(services, ns);
});

function meta(runId: string): RunMeta {
  return { runId, state: 'running', startedAt: now, heartbeatAt: now, host: 'test', workdir: '/w', phase: '', phaseIndex: 0, phaseCount: 1, total: 2, done: 0, failed: 0 };
}

const now = new Date().toISOString();

function record(id: string, attempt = 1): ResultRecord {
  return { id, phase: 'p', phaseIndex: 1, command: 'true', file: 'jobs.sh', line: 1, attempt, outcome: 'succeeded', exitCode: 0, signal: null, startedAt: now, finishedAt: now, durationMs: 1, worker: 'w', log: 'x' };
}

const begin = (runId: string, id: string, attempt = 1) => store.beginCommand(runId, id, attempt, `owner-${id}`, 30_000, 10);

/** Every key of the namespace, to show what a begin wrote. */
async function keysOf(): Promise<string[]> {
  return (await redis.keys(`${ns}:*`)).sort();
}

const progress: Progress = { phase: 'p', phaseIndex: 1, phaseCount: 1, pool: 'default', total: 2, done: 2, failed: 0, running: 0, finishedThisSession: 2 };

describe('the begin script', () => {
  it('runs nothing of a run Redis does not know, and writes nothing for it', async () => {
    expect(await begin('never-was', 'f1-L1')).toEqual({ kind: 'unknown' });
    expect(await keysOf()).toEqual([]);
    expect(await store.runStanding('never-was')).toBe('unknown');
  });

  it('takes the lease of a command of a registered run', async () => {
    await store.registerRun(meta('r1'));
    expect(await store.runStanding('r1')).toBe('live');
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'started', priorStarts: 0 });
  });

  it('answers a duplicate of a recorded command of a live run with its record (acked and resent, as before)', async () => {
    await store.registerRun(meta('r1'));
    await begin('r1', 'f1-L1');
    await store.finishCommand('r1', record('f1-L1'), 'owner-f1-L1');
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'finished', record: record('f1-L1') });
  });

  it('refuses a command of a purged run (tasker purge: cancelled, keys removed), writing nothing', async () => {
    await store.registerRun(meta('r1'));
    await begin('r1', 'f1-L1');
    await store.finishCommand('r1', record('f1-L1'), 'owner-f1-L1');
    await store.cancelRun('r1', { by: 'test', at: new Date().toISOString() });
    await store.purgeRun('r1');
    const before = await keysOf();
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'cancelled' });
    expect(await begin('r1', 'f1-L2')).toEqual({ kind: 'cancelled' });
    expect(await keysOf()).toEqual(before);
    expect(before).toEqual([names.cancelledKey('r1')]);
    expect(await store.runStanding('r1')).toBe('cancelled');
  });

  it('refuses a command of a run whose keys expired (its cancelled mark gone too): unknown', async () => {
    await store.registerRun(meta('r1'));
    await store.purgeRun('r1');
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'unknown' });
    expect(await keysOf()).toEqual([]);
  });

  it('refuses an attempt without a result of a finished run (over), writing nothing; a recorded one is still a duplicate', async () => {
    await store.registerRun(meta('r1'));
    await begin('r1', 'f1-L1');
    await store.finishCommand('r1', record('f1-L1'), 'owner-f1-L1');
    await store.forgetRecorded('r1', [{ id: 'f1-L1', attempt: 1 }]);
    // As the tasker records a run that ended (run-registration.ts).
    await createRunProgressRecorder(store, 'r1').finish('succeeded', true, progress);
    expect(await store.runStanding('r1')).toBe('over');
    const before = await keysOf();
    expect(await begin('r1', 'f1-L2')).toEqual({ kind: 'over' });
    expect(await begin('r1', 'f1-L1', 2)).toEqual({ kind: 'finished' }); // its success: only its mark is left
    expect(await keysOf()).toEqual(before);
    expect(await redis.ttl(names.runKey('r1', 'over'))).toBeGreaterThan(6 * 24 * 3600); // expires with the run's keys
  });

  it('an interrupted run is stopped, not over; a resumed run is neither', async () => {
    await store.registerRun(meta('r1'));
    await createRunProgressRecorder(store, 'r1').finish('interrupted', false, progress);
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'stopped' });
    await createRunProgressRecorder(store, 'r1').finish('failed', true, progress);
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'over' });
    await store.registerRun(meta('r1'));
    expect(await store.runStanding('r1')).toBe('live');
    expect(await begin('r1', 'f1-L1')).toEqual({ kind: 'started', priorStarts: 0 });
  });
});
