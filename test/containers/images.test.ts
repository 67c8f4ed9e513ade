import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, tempDir } from '../helpers/cli.js';
import { detectEngine, engineRun, imageSize, noEngineMessage, type Engine } from '../helpers/container-engine.js';
import { cleanupNamespace, newNamespace, testSigningKey, waitFor } from '../helpers/distributed.js';
import { buildImages, exitCodeOf, images, logsOf, startContainer, taskerJobArgs, waitForLog, type Built } from '../helpers/images.js';
import { attackScript, filesUnder, leaksIn } from '../helpers/secret-attack.js';

/**
 * What users deploy: tasker.Dockerfile and worker.Dockerfile built, and run as containers the way
 * k8s/ runs them (root with SETUID, SETGID and KILL only, commands as node; read-only root
 * filesystem; the shared volume at /work given to group 1000 as fsGroup makes it), against the
 * RabbitMQ and Redis of the test setup: two workers and the tasker Job's own command line running
 * the makita demo; a worker stopped with SIGTERM drains; the tasker container's exit code is the
 * run's; commands that try every way to read the tasker's and a worker's secrets find none.
 * `npm run test:images`; prints build times and sizes.
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

async function start(name: string, image: string, extraEnv: Record<string, string>, args?: string[], secrets?: Record<string, string>): Promise<void> {
  containers.push(name);
  await startContainer(engine, { name, image, workdir: workdir.path, emptyDirs: emptyDirs.path, env: env(extraEnv), ...(args === undefined ? {} : { args }), ...(secrets === undefined ? {} : { secrets }) });
}

/** Runs the tasker image with `args`; its exit code, with its output for messages. */
async function runTasker(runId: string, args: string[], during?: () => Promise<void>, extraEnv: Record<string, string> = {}, secrets?: Record<string, string>): Promise<{ exitCode: number; output: string }> {
  runIds.push(runId);
  const name = `tasker-test-${ns}-tasker-${runIds.length}`;
  await start(name, images.tasker, extraEnv, args, secrets);
  await during?.();
  const exitCode = await exitCodeOf(engine, name);
  return { exitCode, output: (await logsOf(engine, name)).slice(-4000) };
}

beforeAll(async () => {
  const found = await detectEngine();
  if (found === undefined) throw new Error(noEngineMessage('The images test (npm run test:images)'));
  engine = found;
  built = await buildImages(engine);
  // The shared volume, as the manifests' fsGroup makes it: given to group 1000, set-group-id.
  chownSync(workdir.path, 0, 1000);
  chmodSync(workdir.path, 0o2775);
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
  it('run as root with SETUID, SETGID and KILL only and a read-only root filesystem, commands as node; the workers start and consume', async () => {
    for (const image of Object.values(images)) expect(await engineRun(engine, ['image', 'inspect', '--format', '{{.Config.User}}', image])).toBe('0:1000');
    await Promise.all([1, 2].map((n) => start(workerName(n), images.worker, { WORKER_CONCURRENCY: '1', WORKER_DRAIN_TIMEOUT: '60s', WORKER_LABEL: String(n) })));
    await Promise.all([1, 2].map((n) => waitForLog(engine, workerName(n), 'waiting for commands')));
    expect(await logsOf(engine, workerName(1))).toContain('"commandUser":"node (1000:1000)"');
    const probe = 'id -u; id -g; grep CapEff /proc/self/status; touch /opt/tasker/probe 2>/dev/null && echo root-writable || echo root-read-only; touch /work/probe /tmp/probe /home/node/probe && echo volumes-writable; stat -c %a /run/secrets /work';
    const seen = await engineRun(engine, ['exec', workerName(1), 'sh', '-c', probe]);
    // SETGID (6), SETUID (7), KILL (5): 0xe0.
    expect(seen.split('\n').map((line) => line.replace(/\s+/g, ' '))).toEqual(['0', '1000', 'CapEff: 00000000000000e0', 'root-read-only', 'volumes-writable', '700', '3775']);
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

describe('commands in the containers cannot obtain a secret', () => {
  it("a tasker phase's and the workers' commands find none of the signing key, the RabbitMQ and Redis passwords or a secret volume's file; they run as node", async () => {
    const tag = randomBytes(4).toString('hex');
    const secrets = {
      signingKey: `signingKey${tag}${randomBytes(16).toString('hex')}`,
      redisPassword: `redisPw${tag}${randomBytes(8).toString('hex')}`,
      rabbitmqPassword: `rabbitPw${tag}${randomBytes(8).toString('hex')}`,
      fileSecret: `fileSecret${tag}${randomBytes(8).toString('hex')}`,
    };
    // A Secret volume as the kubelet makes it with fsGroup 1000: root's, group-readable (0440).
    const secretDir = join(emptyDirs.path, `secret-${tag}`);
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, 'key'), secrets.fileSecret);
    chownSync(join(secretDir, 'key'), 0, 1000);
    chmodSync(join(secretDir, 'key'), 0o440);
    const mounts = { '/run/secrets/tasker/key': join(secretDir, 'key') };
    const attackNs = `${ns}a`;
    const redis = new URL(services.redisUrl);
    redis.password = secrets.redisPassword;
    const secretEnv = { TASKER_NAMESPACE: attackNs, REDIS_URL: redis.toString(), TASKER_SIGNING_KEY: secrets.signingKey, RABBITMQ_PASSWORD: secrets.rabbitmqPassword };
    writeFileSync(join(workdir.path, 'attack.sh'), attackScript(['/run/secrets/tasker/key']), { mode: 0o755 });
    const jobs = ['# phase: setup (tasker)', 'mkdir -p loot; bash attack.sh > loot/tasker-phase.txt 2>&1', '# phase: attack', 'bash attack.sh > loot/worker-1.txt 2>&1', 'bash attack.sh > loot/worker-2.txt 2>&1'];
    writeFileSync(join(workdir.path, 'attack-jobs.sh'), `${jobs.join('\n')}\n`);
    const worker = `tasker-test-${ns}-attacked-worker`;
    await start(worker, images.worker, { ...secretEnv, WORKER_CONCURRENCY: '2' }, undefined, mounts);
    await waitForLog(engine, worker, 'waiting for commands');
    // The file is there, and root (the worker) may read it.
    expect(await engineRun(engine, ['exec', worker, 'cat', '/run/secrets/tasker/key'])).toBe(secrets.fileSecret);
    const runId = `attack-${ns}`;
    const result = await runTasker(runId, ['run', '--run-id', runId, '/work/attack-jobs.sh'], undefined, secretEnv, mounts);
    await cleanupNamespace(services, attackNs, [runId]).catch(() => undefined);
    expect(result.exitCode, result.output).toBe(0);
    expect(readResults(workdir.path, runId).map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    for (const name of ['tasker-phase', 'worker-1', 'worker-2']) {
      const loot = readFileSync(join(workdir.path, 'loot', `${name}.txt`), 'latin1');
      expect(loot, name).toContain('uid=1000 gid=1000 groups=1000');
      expect(loot, name).toMatch(/\/proc\/1\/environ: Permission denied/);
      expect(loot, name).toMatch(/\/run\/secrets\/tasker\/key: Permission denied/);
    }
    for (const file of filesUnder(workdir.path)) expect(leaksIn(file.text, secrets), file.path).toEqual([]);
    expect(leaksIn(await logsOf(engine, worker), secrets), 'worker log').toEqual([]);
    expect(leaksIn(result.output, secrets), 'tasker log').toEqual([]);
  });
});
