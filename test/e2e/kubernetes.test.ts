import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, tempDir } from '../helpers/cli.js';
import { cleanupNamespace, freePort, newNamespace, stopAll, testSigningKey, waitFor, watchOutput, type Proc } from '../helpers/distributed.js';
import {
  containerEnv,
  execForm,
  expandReferences,
  findDoc,
  imageOf,
  loadManifests,
  nameOf,
  parseDockerfile,
  podTemplateOf,
  repoPathOf,
  workdirOf,
  type Doc,
  type Dockerfile,
} from '../helpers/manifests.js';
import { operatorNames } from '../helpers/rabbitmq-cluster.js';
import { repoRoot } from '../helpers/cli.js';

/**
 * The pods of k8s/tasker.yml and k8s/worker.yml, as processes: exactly the container's command,
 * arguments and environment of the manifests, with what only a cluster has replaced by test
 * values: the operator's Secret by the test broker's user, the Services' names by the test
 * RabbitMQ and Redis, the Job uid by a random one, the shared volume by a temporary directory,
 * the image's paths by this repository's files (through the Dockerfile's COPY lines), and each
 * pod's metrics port by a free one (pods have a network namespace each; these processes share
 * one). Plus a TASKER_NAMESPACE of its own, as every distributed test has. As the pods do, they
 * run as root and their commands as 1000:1000 (WORKER_COMMAND_USER, TASKER_COMMAND_USER), with the
 * volumes given to group 1000 as fsGroup makes them; when the tests do not run as root (CI does),
 * these processes cannot switch users and run their commands as their own.
 */

const isRoot = process.getuid?.() === 0;

/** A volume as the kubelet gives it to the pod's fsGroup (1000): group 1000's, set-group-id. */
function asFsGroupMakesIt(path: string, mode: number): void {
  if (!isRoot) return;
  chownSync(path, 0, 1000);
  chmodSync(path, mode);
}

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const manifests = loadManifests();
const taskerJob = findDoc(manifests, 'Job', 'tasker').doc;
const workerDeployment = findDoc(manifests, 'Deployment', 'tasker-worker').doc;
const rabbitmqName = manifests.find((manifest) => manifest.doc.kind === 'RabbitmqCluster')!.doc.metadata!.name!;
const redisService = findDoc(manifests, 'Service', 'tasker-redis').doc;
const dockerfiles = { tasker: parseDockerfile(join(repoRoot, 'tasker.Dockerfile')), worker: parseDockerfile(join(repoRoot, 'worker.Dockerfile')) };

interface PodProcess {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  metricsPort: number;
  graceSeconds: number;
}

/** What the kubelet would start for this pod template, mapped onto this machine. */
async function podProcess(
  doc: Doc,
  dockerfile: Dockerfile,
  test: { workdir: string; namespace: string; jobUid: string; configMaps?: Record<string, Record<string, string>> },
): Promise<PodProcess> {
  const pod = podTemplateOf(doc)!;
  const container = pod.spec.containers[0]!;
  const broker = new URL(services.amqpUrl);
  const env = containerEnv(container, {
    secrets: {
      [operatorNames(rabbitmqName).defaultUserSecret]: { username: decodeURIComponent(broker.username), password: decodeURIComponent(broker.password) },
      // The one Secret the guide has you create (docs/kubernetes.md, section 4): required by every pod.
      'tasker-signing-key': { key: testSigningKey },
    },
    fields: { "metadata.labels['batch.kubernetes.io/controller-uid']": test.jobUid },
  });
  // Service names -> the test's RabbitMQ and Redis.
  const endpoints: Record<string, string> = {
    [operatorNames(rabbitmqName).service]: broker.host,
    [redisService.metadata!.name!]: new URL(services.redisUrl).host,
  };
  for (const [name, value] of env) {
    if (!/^[a-z]+:\/\//.test(value)) continue;
    const url = new URL(value);
    if (endpoints[url.hostname] !== undefined) {
      url.host = endpoints[url.hostname]!;
      env.set(name, url.toString());
    }
  }
  // The shared volume -> the test's directory; emptyDir and ConfigMap volumes -> directories of
  // their own, a ConfigMap's holding its keys as files.
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec.volumes!.find((candidate) => candidate.name === mount.name)!;
    const path = volume.persistentVolumeClaim !== undefined ? test.workdir : join(test.workdir, '..', `${nameOf(doc)}-${mount.name}`);
    mkdirSync(path, { recursive: true });
    if (volume.persistentVolumeClaim === undefined) asFsGroupMakesIt(path, 0o2777);
    if (volume.configMap !== undefined) {
      const data = test.configMaps?.[volume.configMap.name];
      if (data === undefined) throw new Error(`${nameOf(doc)}: the test gives no ConfigMap ${volume.configMap.name}`);
      for (const [key, text] of Object.entries(data)) writeFileSync(join(path, key), text);
    }
    mounts.set(mount.mountPath, path);
  }
  const mapPath = (path: string): string => {
    for (const [mountPath, local] of mounts) if (path === mountPath || path.startsWith(`${mountPath}/`)) return local + path.slice(mountPath.length);
    return repoPathOf(dockerfile, path) ?? path;
  };
  for (const [name, value] of env) if (value.startsWith('/')) env.set(name, mapPath(value));
  const metricsPort = await freePort();
  env.set('METRICS_PORT', String(metricsPort));
  env.set('TASKER_NAMESPACE', test.namespace);

  // The image: ENTRYPOINT (tini, then the program) and CMD, unless the container overrides them.
  const final = imageOf(dockerfile);
  const entrypoint = container.command ?? execForm(final, 'ENTRYPOINT')!;
  expect(entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
  const program = repoPathOf(dockerfile, entrypoint[2]!)!;
  const nodeFlags = /^#!\/usr\/bin\/env -S node(.*)$/m.exec(readFileSync(program, 'utf8'))![1]!.trim().split(/\s+/).filter(Boolean);
  const defined = new Map(env);
  const args = (container.args ?? execForm(final, 'CMD') ?? []).map((arg) => expandReferences(arg, defined)).map((arg) => (arg.startsWith('/') ? mapPath(arg) : arg));
  const imageEnv = Object.fromEntries(
    final.instructions.filter((instruction) => instruction.keyword === 'ENV').map((instruction) => instruction.text.split('=') as [string, string]),
  );
  const podEnv: Record<string, string> = { PATH: process.env['PATH']!, HOME: mounts.get('/home/node') ?? test.workdir, ...imageEnv, ...Object.fromEntries(env) };
  if (!isRoot) for (const name of ['WORKER_COMMAND_USER', 'TASKER_COMMAND_USER']) delete podEnv[name];
  return {
    file: program,
    args: [...nodeFlags, program, ...args],
    env: podEnv,
    cwd: mapPath(workdirOf(final)),
    metricsPort,
    graceSeconds: pod.spec.terminationGracePeriodSeconds ?? 30,
  };
}

function spawnPod(pod: PodProcess): Proc {
  // extendEnv: false: the container's environment only, not the test runner's.
  return execa(process.execPath, pod.args, { env: pod.env, extendEnv: false, cwd: pod.cwd, reject: false, all: true, stdin: 'ignore', timeout: 120_000 }) as Proc;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

interface Ctx {
  ns: string;
  workdir: string;
  procs: Proc[];
  runIds: string[];
  cleanup: () => void;
}
let ctx: Ctx;

beforeEach(() => {
  const temp = tempDir('tasker-k8s-');
  const workdir = join(temp.path, 'work');
  mkdirSync(workdir);
  chmodSync(temp.path, 0o755);
  asFsGroupMakesIt(workdir, 0o2775);
  ctx = { ns: newNamespace(), workdir, procs: [], runIds: [], cleanup: temp.cleanup };
});

afterEach(async () => {
  await stopAll(ctx.procs);
  await cleanupNamespace(services, ctx.ns, ctx.runIds);
  ctx.cleanup();
});

/** The Deployment's replicas, each ready (its readiness probe, /healthz, answers 200). */
async function startWorkers(): Promise<{ pod: PodProcess; proc: Proc; output: () => string }[]> {
  const replicas = (workerDeployment['spec'] as { replicas: number }).replicas;
  const workers = [];
  for (let i = 0; i < replicas; i++) {
    const pod = await podProcess(workerDeployment, dockerfiles.worker, { workdir: ctx.workdir, namespace: ctx.ns, jobUid: 'unused' });
    const proc = spawnPod(pod);
    ctx.procs.push(proc);
    workers.push({ pod, proc, output: watchOutput(proc).text });
  }
  for (const worker of workers) {
    await waitFor(
      'a worker to be ready (/healthz 200)',
      async () => {
        if (worker.proc.exitCode !== null) throw new Error(`worker exited ${worker.proc.exitCode}: ${worker.output()}`);
        return (await get(worker.pod.metricsPort, '/healthz').catch(() => ({ status: 0 }))).status === 200;
      },
      20_000,
    );
  }
  return workers;
}

async function tasker(jobUid: string): Promise<{ pod: PodProcess; proc: Proc; output: () => string }> {
  if (!ctx.runIds.includes(jobUid)) ctx.runIds.push(jobUid);
  const pod = await podProcess(taskerJob, dockerfiles.tasker, { workdir: ctx.workdir, namespace: ctx.ns, jobUid });
  const proc = spawnPod(pod);
  ctx.procs.push(proc);
  return { pod, proc, output: watchOutput(proc).text };
}

describe('k8s/tasker.yml and k8s/worker.yml, run as processes', () => {
  it('complete a run: the demo job of the tasker image, on the Deployment’s two workers, with metrics', async () => {
    const workers = await startWorkers();
    expect(workers).toHaveLength(2);
    const jobUid = randomUUID();
    const run = await tasker(jobUid);
    const result = await run.proc;
    expect(result.exitCode, run.output()).toBe(0);
    expect(String(result.stdout)).toMatch(new RegExp(`Run ${jobUid} finished in \\S+: all \\d+ commands succeeded; tasker exit code 0`));

    // The run id is the Job's uid; the commands ran in the shared directory.
    const summary = readSummary(ctx.workdir, jobUid);
    expect(summary.status).toBe('succeeded');
    expect(summary.phases.map((phase) => [phase.name, phase.status])).toEqual([
      ['setup', 'succeeded'],
      ['simulate', 'succeeded'],
      ['aggregate', 'succeeded'],
    ]);
    expect(readFileSync(join(ctx.workdir, 'output', 'tables', 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(9);
    const results = readResults(ctx.workdir, jobUid);
    const byWorkers = results.filter((record) => record.phase !== 'setup');
    expect(byWorkers.length).toBe(21);
    expect(byWorkers.every((record) => record.outcome === 'succeeded' && !record.worker.startsWith('tasker@'))).toBe(true);
    expect(new Set(byWorkers.map((record) => record.worker)).size).toBe(2);

    // Each worker counted what it ran, and how long each message waited in the queue.
    let succeeded = 0;
    let picked = 0;
    for (const worker of workers) {
      const metrics = (await get(worker.pod.metricsPort, '/metrics')).body;
      succeeded += metric(metrics, 'tasker_commands_total{outcome="succeeded"}');
      picked += metric(metrics, 'tasker_queue_lag_seconds_count');
      expect(metric(metrics, 'tasker_commands_in_flight')).toBe(0);
      expect(metric(metrics, 'tasker_command_duration_seconds_count{outcome="succeeded"}')).toBeGreaterThan(0);
      expect((await get(worker.pod.metricsPort, '/healthz')).status).toBe(200);
    }
    expect(succeeded).toBe(21);
    // One lag per message: bundles (README) carry several commands, as many as the run says it sent.
    const published = /published (\d+) attempts in (\d+) messages/.exec(run.output());
    expect(published, run.output()).not.toBeNull();
    expect(Number(published![1])).toBe(21);
    expect(picked).toBe(Number(published![2]));

    // Pod deletion: SIGTERM, and the worker is gone well within the grace period.
    for (const worker of workers) {
      const started = Date.now();
      worker.proc.kill('SIGTERM');
      const stopped = await worker.proc;
      expect(stopped.exitCode).toBe(0);
      expect(Date.now() - started).toBeLessThan(worker.pod.graceSeconds * 1000);
    }
  });

  it('a restarted tasker pod resumes its run; a new Job (a new uid) is a new run', async () => {
    await startWorkers();
    const jobUid = randomUUID();
    const first = await tasker(jobUid);
    const resultsPath = join(ctx.workdir, '.tasker', 'runs', jobUid, 'results.jsonl');
    // The pod is deleted (evicted, node drained) once the workers are at it.
    await waitFor('the workers to finish a simulation', () => existsSync(resultsPath) && readFileSync(resultsPath, 'utf8').includes('"phase":"simulate"'), 30_000);
    first.proc.kill('SIGTERM');
    const interrupted = await first.proc;
    expect(interrupted.exitCode, first.output()).toBe(130);

    // The Job's next pod: the same manifest, the same uid.
    const resumedAt = Date.now();
    const second = await tasker(jobUid);
    const resumed = await second.proc;
    expect(resumed.exitCode, second.output()).toBe(0);
    // Promptly: the commands the first pod recorded as interrupted, published again, are answered
    // by the workers with their success (not found in Redis by the 30 s reconciliation).
    expect(Date.now() - resumedAt).toBeLessThan(20_000);
    expect(second.output()).toContain('resuming run');
    const results = readResults(ctx.workdir, jobUid);
    const succeeded = new Map<string, number>();
    for (const record of results) if (record.outcome === 'succeeded') succeeded.set(record.id, (succeeded.get(record.id) ?? 0) + 1);
    expect(succeeded.size).toBe(36);
    expect([...succeeded.values()].every((count) => count === 1)).toBe(true);
    expect(readSummary(ctx.workdir, jobUid).status).toBe('succeeded');

    // Another restart of a finished run's pod runs nothing again.
    const third = await tasker(jobUid);
    expect((await third.proc).exitCode, third.output()).toBe(0);
    expect(readResults(ctx.workdir, jobUid)).toHaveLength(results.length);

    // A new Job: a new uid, a new run beside the first.
    const newJob = randomUUID();
    const fresh = await tasker(newJob);
    const freshResult = await fresh.proc;
    expect(freshResult.exitCode, fresh.output()).toBe(0);
    expect(fresh.output()).not.toContain('resuming run');
    expect(readdirSync(join(ctx.workdir, '.tasker', 'runs')).sort()).toEqual([jobUid, newJob].sort());
  });

  it('k8s/examples/tasker-configmap.yml runs the jobs file of the ConfigMap the guide creates, staging nothing of the demo', async () => {
    // The guide's command: kubectl -n NS create configmap NAME --from-file=KEY=PATH
    const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
    const [, name, key, path] = /kubectl -n \S+ create configmap (\S+) --from-file=([^=\s]+)=(\S+)/.exec(guide)!;
    await startWorkers();
    const jobUid = randomUUID();
    ctx.runIds.push(jobUid);
    const example = findDoc(manifests, 'Job', 'tasker-configmap').doc;
    const configMaps = { [name!]: { [key!]: readFileSync(join(repoRoot, path!), 'utf8') } };
    const proc = spawnPod(await podProcess(example, dockerfiles.tasker, { workdir: ctx.workdir, namespace: ctx.ns, jobUid, configMaps }));
    ctx.procs.push(proc);
    const result = await proc;
    expect(result.exitCode, result.all).toBe(0);
    expect(readSummary(ctx.workdir, jobUid).status).toBe('succeeded');
    expect(readFileSync(join(ctx.workdir, 'out', 'count.txt'), 'utf8').trim()).toBe('12 parts done');
    expect(readdirSync(ctx.workdir).sort()).toEqual(['.tasker', 'out']);
  });
});
