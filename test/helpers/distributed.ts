import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import amqp from 'amqplib';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterEach, beforeEach } from 'vitest';
import { signatureHeaders } from '../../shared/broker/signing.js';
import { names } from '../../shared/config/names.js';
import { taskerBin, tempDir, workerBin, repoRoot, writeEventScript } from './cli.js';

/** Helpers for tests that run the tasker and several workers against the real RabbitMQ and Redis. */

export function newNamespace(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export interface Services {
  amqpUrl: string;
  redisUrl: string;
}

export type Proc = ResultPromise<{ reject: false; all: true }>;

/** The signing key of the tests' taskers and workers: they run signed, as in production. */
export const testSigningKey = 'tasker-test-signing-key-5e1d0c2b9a8f7e6d';

export function serviceEnv(services: Services, namespace: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AMQP_URL: services.amqpUrl,
    REDIS_URL: services.redisUrl,
    TASKER_NAMESPACE: namespace,
    TASKER_LEASE_TTL: '2s',
    LOG_LEVEL: 'info',
    TASKER_SIGNING_KEY: testSigningKey,
    ...extra,
  };
}

/** Publishes a work message as a tasker does: to the namespace's exchange, signed as work for its routing key (unsigned without a key). */
export async function publishWork(url: string, namespace: string, routingKey: string, body: Buffer, key: string | undefined = testSigningKey): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(namespace, routingKey, body, { persistent: true, headers: signatureHeaders(key, body, { purpose: 'work', destination: routingKey }) });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Registers a run in Redis as its tasker does before publishing: workers run commands only of runs that exist. */
export async function registerTestRun(services: Services, namespace: string, runId: string): Promise<void> {
  const redis = new Redis(services.redisUrl);
  try {
    const now = new Date().toISOString();
    const meta = { runId, state: 'running', startedAt: now, heartbeatAt: now, host: 'test', workdir: '', phase: '', phaseIndex: 0, phaseCount: 1, total: 1, done: 0, failed: 0 };
    await redis.hset(names(namespace).runKey(runId, 'meta'), { json: JSON.stringify(meta) });
  } finally {
    redis.disconnect();
  }
}

export function spawnWorker(env: Record<string, string>, args: string[] = []): Proc {
  return execa(process.execPath, [workerBin, ...args], { env, reject: false, all: true, stdin: 'ignore', cwd: repoRoot }) as Proc;
}

/** The tasker as a process; killed (SIGTERM, so it exits 130) after `timeoutMs`. */
export function spawnTasker(env: Record<string, string>, args: string[], timeoutMs = 120_000): Proc {
  return execa(process.execPath, [taskerBin, ...args], { env, reject: false, all: true, stdin: 'ignore', cwd: repoRoot, timeout: timeoutMs }) as Proc;
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function watchOutput(proc: Proc): { text(): string } {
  let text = '';
  proc.all?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { text: () => text };
}

/** Starts a worker and waits until it consumes. */
export async function readyWorker(env: Record<string, string>, args: string[] = []): Promise<{ proc: Proc; output: () => string }> {
  const proc = spawnWorker(env, args);
  const out = watchOutput(proc);
  await waitFor('a worker to be ready', () => out.text().includes('waiting for commands') || proc.exitCode !== null, 20_000);
  if (proc.exitCode !== null) throw new Error(`worker exited ${proc.exitCode}: ${out.text()}`);
  return { proc, output: out.text };
}

export async function stopAll(procs: Proc[]): Promise<void> {
  for (const proc of procs) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  await Promise.all(procs.map((proc) => proc.catch(() => undefined)));
}

/** Removes every queue and Redis key of a test namespace (`pools`: the worker pools it used besides the default). */
export async function cleanupNamespace(services: Services, namespace: string, runIds: string[] = [], pools: string[] = []): Promise<void> {
  const connection = await amqp.connect(services.amqpUrl);
  try {
    const poolQueues = pools.map((pool) => `${namespace}.pool.${pool}.commands`);
    for (const queue of [`${namespace}.commands`, `${namespace}.commands.dead`, ...poolQueues, ...runIds.map((id) => `${namespace}.run.${id}.done`)]) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await channel.deleteExchange(namespace).catch(() => undefined);
    await channel.deleteExchange(`${namespace}.dead`).catch(() => undefined);
    await channel.close().catch(() => undefined);
  } finally {
    await connection.close();
  }
  const redis = new Redis(services.redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function withChannel<T>(url: string, operation: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    return await operation(channel);
  } finally {
    await connection.close();
  }
}

export async function queueCounts(url: string, queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return await channel.checkQueue(queue).catch(() => undefined);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** A TCP port free at the time of asking (for a metrics server or a private Redis). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One test's own namespace, workdir (with ev.sh), processes and run ids. */
export interface TestNamespace {
  ns: string;
  dir: string;
  env: Record<string, string>;
  /** Killed after the test. */
  procs: Proc[];
  /** Their result queues are deleted after the test. */
  runIds: string[];
  /** Worker pools besides the default whose queues are deleted after the test. */
  pools: string[];
}

/**
 * Gives every test of the file a fresh namespace and workdir (the returned object is refilled
 * before each test); afterwards its processes are killed and its queues, keys and files removed.
 */
export function useTestNamespace(services: Services, dirPrefix: string): TestNamespace {
  const ctx = {} as TestNamespace;
  let removeDir = (): void => undefined;
  beforeEach(() => {
    const temp = tempDir(dirPrefix);
    const ns = newNamespace();
    Object.assign(ctx, { ns, dir: temp.path, env: serviceEnv(services, ns), procs: [], runIds: [], pools: [] });
    removeDir = temp.cleanup;
    writeEventScript(ctx.dir);
  });
  afterEach(async () => {
    await stopAll(ctx.procs);
    await cleanupNamespace(services, ctx.ns, ctx.runIds, ctx.pools);
    removeDir();
  });
  return ctx;
}

/** A worker of the test's namespace in its workdir, killed after the test; returns its output so far. */
export async function workerFor(ctx: TestNamespace, args: string[] = []): Promise<() => string> {
  const started = await readyWorker(ctx.env, ['--workdir', ctx.dir, ...args]);
  ctx.procs.push(started.proc);
  return started.output;
}
