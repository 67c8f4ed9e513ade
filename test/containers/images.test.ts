import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, tempDir } from '../helpers/cli.js';
import { detectEngine, engineRun, imageSize, noEngineMessage, type Engine } from '../helpers/container-engine.js';
import { cleanupNamespace, newNamespace, testSigningKey, waitFor } from '../helpers/distributed.js';
import { buildImages, exitCodeOf, images, logsOf, startContainer, taskerJobArgs, waitForLog, type Built } from '../helpers/images.js';

/**
 * What users deploy: tasker.Dockerfile and worker.Dockerfile built, and run as containers the way
 * k8s/ runs them (uid 1000, read-only root filesystem, the shared volume at /work owned by uid
 * 1000 as fsGroup makes it), against the RabbitMQ and Redis of the test setup: two workers and the
 * tasker Job's own command line running the makita demo; a worker stopped with SIGTERM drains; the
 * tasker container's exit code is the run's. `npm run test:images`; prints build times and sizes.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ns = newNamespace();
const workdir = tempDir('tasker-images-');
const emptyDirs = tempDir('tasker-images-emptydirs-');
const runIds: string[] = [];
const containers: string[] = [];
let engine: Engine;
let built: Built;

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  AMQP_URL: services.amqpUrl,
  REDIS_URL: services.redisUrl,
  TASKER_NAMESPACE: ns,
  TASKER_SIGNING_KEY: testSigningKey,
  WORKDIR: '/work',
  LOG_LEVEL: 'info',
  ...extra,
});

const workerName = (n: number): string => `tasker-test-${ns}-worker-${n}`;

async function start(name: string, image: string, extraEnv: Record<string, string>, args?: string[]): Promise<void> {
  containers.push(name);
  await startContainer(engine, { name, image, workdir: workdir.path, emptyDirs: emptyDirs.path, env: env(extraEnv), ...(args === undefined ? {} : { args }) });
}

/** Runs the tasker image with `args`; its exit code, with its output for messages. */
async function runTasker(runId: string, args: string[], during?: () => Promise<void>): Promise<{ exitCode: number; output: string }> {
  runIds.push(runId);
  const name = `tasker-test-${ns}-tasker-${runIds.length}`;
  await start(name, images.tasker, {}, args);
  await during?.();
  const exitCode = await exitCodeOf(engine, name);
  return { exitCode, output: (await logsOf(engine, name)).slice(-4000) };
}

beforeAll(async () => {
  const found = await detectEngine();
  if (found === undefined) throw new Error(noEngineMessage('The images test (npm run test:images)'));
  engine = found;
  built = await buildImages(engine);
  // The shared volume, as the manifests' fsGroup makes it: owned by the images' user.
  chownSync(workdir.path, 1000, 1000);
});

afterAll(async () => {
  if (engine !== undefined) {
    for (const name of containers) await engineRun(engine, ['rm', '-f', name]).catch(() => undefined);
    await cleanupNamespace(services, ns, runIds).catch(() => undefined);
  }
  workdir.cleanup();
  emptyDirs.cleanup();
  if (built === undefined) return;
  const size = async (image: string): Promise<string> => `${(await imageSize(engine, image) / 1e6).toFixed(0)} MB`;
  const lines = [
    `engine: ${engine.name}; base image: ${built.base} (${built.baseHow}, ${built.baseSeconds} s)`,
    `build: worker ${built.buildSeconds.worker} s, tasker ${built.buildSeconds.tasker} s`,
    `image sizes: ${images.worker} ${await size(images.worker)}, ${images.tasker} ${await size(images.tasker)}`,
  ];
  process.stdout.write(`\nImages\n${lines.join('\n')}\n`);
});

describe('the container images', () => {
  it('run as uid 1000 with a read-only root filesystem; the workers start and consume', async () => {
    for (const image of Object.values(images)) expect(await engineRun(engine, ['image', 'inspect', '--format', '{{.Config.User}}', image])).toBe('1000:1000');
    await Promise.all([1, 2].map((n) => start(workerName(n), images.worker, { WORKER_CONCURRENCY: '1', WORKER_DRAIN_TIMEOUT: '60s', WORKER_LABEL: String(n) })));
    await Promise.all([1, 2].map((n) => waitForLog(engine, workerName(n), 'waiting for commands')));
    const probe = 'id -u; id -g; touch /opt/tasker/probe 2>/dev/null && echo root-writable || echo root-read-only; touch /work/probe /tmp/probe /home/node/probe && echo volumes-writable';
    const seen = await engineRun(engine, ['exec', workerName(1), 'sh', '-c', probe]);
    expect(seen.split('\n')).toEqual(['1000', '1000', 'root-read-only', 'volumes-writable']);
  });

  it('the tasker container runs the makita demo (the tasker Job\'s args) through the two worker containers', async () => {
    const runId = `makita-${ns}`;
    const result = await runTasker(runId, taskerJobArgs(runId));
    expect(result.exitCode, result.output).toBe(0);
    const records = readResults(workdir.path, runId);
    expect(records.length).toBeGreaterThan(20);
    expect(records.filter((r) => r.outcome !== 'succeeded')).toEqual([]);
    const onWorkers = records.filter((r) => !r.worker.startsWith('tasker@'));
    expect(new Set(onWorkers.map((r) => r.phase))).toEqual(new Set(['simulate', 'aggregate']));
    expect(new Set(onWorkers.map((r) => r.worker)).size, 'commands ran on both worker containers').toBe(2);
    expect(readSummary(workdir.path, runId).exitCode).toBe(0);
  });

  it('a worker container stopped with SIGTERM drains its command and exits 0; the tasker container exits with the run\'s code', async () => {
    const jobs = ['# phase: drain', 'echo "$WORKER_LABEL" > started; sleep 3; echo done > drained', '# phase: fails', 'exit 3'];
    writeFileSync(join(workdir.path, 'drain.sh'), `${jobs.join('\n')}\n`);
    const runId = `drain-${ns}`;
    let stopped = '';
    const result = await runTasker(runId, ['run', '--run-id', runId, '/work/drain.sh'], async () => {
      await waitFor('the drain command to start', () => existsSync(join(workdir.path, 'started')) && readFileSync(join(workdir.path, 'started'), 'utf8').trim() !== '', 60_000);
      stopped = workerName(Number(readFileSync(join(workdir.path, 'started'), 'utf8').trim()));
      // What Kubernetes does to a pod: SIGTERM, SIGKILL after the grace period (90 s in k8s/worker.yml).
      await engineRun(engine, ['stop', '--time', '90', stopped], { timeoutMs: 120_000 });
    });
    expect(await exitCodeOf(engine, stopped), await logsOf(engine, stopped)).toBe(0);
    expect(await logsOf(engine, stopped)).toContain('shutting down');
    expect(existsSync(join(workdir.path, 'drained')), 'the running command finished before the worker exited').toBe(true);
    // The command failing on the other worker makes the run's exit code 1: the container's.
    expect(result.exitCode, result.output).toBe(1);
    const summary = readSummary(workdir.path, runId);
    expect(summary.exitCode).toBe(1);
    expect(summary.failed.map((f) => f.exitCode)).toEqual([3]);
    expect(readResults(workdir.path, runId).find((r) => r.phase === 'drain')?.outcome).toBe('succeeded');
  });
});
