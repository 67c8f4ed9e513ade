import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, inject } from 'vitest';
import { names as namesOf, type Names, type RunKeyPart } from '../../shared/config/names.js';
import { createLogger } from '../../shared/observe/logger.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import type { BeginOutcome, RunStore } from '../../shared/state/run-store.js';
import { openSockets, socketsSettledAt } from './sockets.js';

/**
 * A fresh namespace and RunStore per test, on the real Redis, for the in-process adapter tests:
 * afterwards the namespace's keys are deleted, the store is closed, and no TCP connection of the
 * test may be left open (counted in this process, so other users of the shared Redis do not matter).
 */

const redisUrl = inject('redisUrl');
const silentLogger = createLogger({ level: 'silent', pretty: false, name: 'adapter-test' });

/** The command most tests use: line 7 of jobs file 1. */
export const commandId = 'f1-L7';
export const leaseTtlMs = 60_000;

export interface BeginOptions {
  id?: string;
  attempt?: number;
  ttlMs?: number;
  /** 0: no poison limit. */
  startLimit?: number;
  goneHolder?: string;
}

export interface StoreTest {
  ns: string;
  names: Names;
  runId: string;
  store: RunStore;
  /** A plain client, for what the contract does not show (TTLs, raw values); quit after the test. */
  redis: Redis;
  key(part: RunKeyPart): string;
  /** beginCommand on this test's run, `commandId`, attempt 1, a long lease and no poison limit unless told. */
  begin(owner: string, options?: BeginOptions): Promise<BeginOutcome>;
  /**
   * The worker of `owner` (owner `w1#1`: worker `w1`) takes the lease (from `goneHolder`, if
   * named), counts a start, and dies: its start and its lease stay.
   */
  startAndDie(owner: string, options?: BeginOptions): Promise<void>;
  /** Another plain client (e.g. a presence subscriber), quit after the test. */
  client(): Redis;
}

export function resultRecord(id: string, attempt: number, outcome: ResultRecord['outcome'] = 'succeeded'): ResultRecord {
  const at = '2024-05-01T10:00:00.000Z';
  return {
    id,
    phase: 'sims',
    phaseIndex: 0,
    command: 'true',
    file: 'jobs.sh',
    line: 7,
    attempt,
    outcome,
    exitCode: outcome === 'succeeded' ? 0 : 1,
    signal: null,
    startedAt: at,
    finishedAt: at,
    durationMs: 12,
    worker: 'w1',
    log: `logs/${id}.${attempt}.log`,
  };
}

/** The keys matching `pattern`, sorted (SCAN: the shared Redis is never blocked). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

async function deleteNamespace(redis: Redis, ns: string): Promise<void> {
  const keys = await scanKeys(redis, `${ns}:*`);
  if (keys.length > 0) await redis.del(...keys);
}

export function useRunStore(): StoreTest {
  const ctx = {} as StoreTest;
  let baseline = 0;
  let clients: Redis[] = [];
  beforeEach(async () => {
    baseline = openSockets();
    const ns = `t${randomBytes(4).toString('hex')}`;
    const names = namesOf(ns);
    const runId = `run-${randomBytes(3).toString('hex')}`;
    clients = [];
    const client = (): Redis => {
      const redis = new Redis(redisUrl);
      clients.push(redis);
      return redis;
    };
    const store = await createRunStore(redisUrl, names, silentLogger);
    // A live run: the begin script runs commands only for a run its tasker registered (started
    // long ago, so that it sorts after the runs a test registers).
    const now = '2000-01-01T00:00:00.000Z';
    await store.registerRun({ runId, state: 'running', startedAt: now, heartbeatAt: now, host: 'test', workdir: '/w', phase: '', phaseIndex: 0, phaseCount: 1, total: 1, done: 0, failed: 0 });
    const begin = (owner: string, o: BeginOptions = {}): Promise<BeginOutcome> =>
      store.beginCommand(runId, o.id ?? commandId, o.attempt ?? 1, owner, o.ttlMs ?? leaseTtlMs, o.startLimit ?? 0, o.goneHolder);
    Object.assign(ctx, {
      ns,
      names,
      runId,
      store,
      redis: client(),
      key: (part: RunKeyPart) => names.runKey(runId, part),
      begin,
      client,
      async startAndDie(owner: string, o: BeginOptions = {}) {
        expect((await begin(owner, o)).kind).toBe('started');
        const worker = owner.split('#')[0]!;
        expect(await store.recordStart(runId, o.id ?? commandId, o.attempt ?? 1, worker, owner, leaseTtlMs)).toBeGreaterThan(0);
      },
    });
  });
  afterEach(async () => {
    await deleteNamespace(ctx.redis, ctx.ns);
    await ctx.store.close();
    for (const redis of clients) await redis.quit().catch(() => redis.disconnect());
    // The store no longer answers, and none of its connections (or the test's) is left open.
    await expect(ctx.store.queueLosses('q')).rejects.toThrow(/Connection is closed/);
    expect(await socketsSettledAt(baseline), 'TCP connections left open by the test').toBe(baseline);
  });
  return ctx;
}
