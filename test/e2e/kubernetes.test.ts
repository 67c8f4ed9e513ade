import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, taskerBin, tempDir } from '../helpers/cli.js';
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
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/cli.js';

/**
 * The pods of k8s/tasker.yml, k8s/worker.yml and k8s/redis.yml, as processes: exactly the
 * container's command, arguments and environment of the manifests, with what only a cluster has
 * replaced by test values: the credentials Secrets by random ones (and the signing key the guide
 * has you create by the tests' key), the Services' names by the test RabbitMQ and a Redis of each
 * test's own, the Job uid by a random one, the shared volume by a temporary directory, the image's
 * paths by this repository's files (through the Dockerfile's COPY lines), and each pod's metrics
 * port by a free one (pods have a network namespace each; these processes share one). Plus a
 * TASKER_NAMESPACE of its own, as every distributed test has. As the pods do, they run as root and
 * their commands as 1000:1000 (WORKER_COMMAND_USER, TASKER_COMMAND_USER), with the volumes given
 * to group 1000 as fsGroup makes them; when the tests do not run as root (CI does), these
 * processes cannot switch users and run their commands as their own.
 *
 * Redis is k8s/redis.yml's container script, run with the ACL of its ConfigMap (the namespace's
 * keys for `tasker:`), so the tasker and the workers log in as the users the manifests give them.
 * RabbitMQ users cannot be made on the shared test broker: AMQP_URL keeps the broker's own user
 * (test/deploy/least-privilege.test.ts checks the RabbitMQ permissions against the code).
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
const redisDeployment = findDoc(manifests, 'Deployment', 'tasker-redis').doc;
const redisAcl = (findDoc(manifests, 'ConfigMap', 'tasker-redis-acl').doc['data'] as Record<string, string>)['users.acl']!;
/** The credentials Secrets of docs/kubernetes.md, section 4, with test passwords. */
const credentials = Object.fromEntries(
  ['tasker', 'worker'].map((role) => [`tasker-credentials-${role}`, { username: role, password: randomBytes(24).toString('hex') }]),
) as Record<string, { username: string; password: string }>;
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
  // The one Secret besides the credentials that the guide has you create (docs/kubernetes.md, section 4): required by every pod.
  const env = containerEnv(container, { secrets: { ...credentials, 'tasker-signing-key': { key: testSigningKey } }, fields: { "metadata.labels['batch.kubernetes.io/controller-uid']": test.jobUid, 'metadata.name': `${doc.metadata?.name ?? 'tasker'}-pod`, 'spec.nodeName': 'test-node' } });
  // Service names -> the test's RabbitMQ (as its own user) and this test's Redis.
  const endpoints: Record<string, string> = {
    [operatorNames(rabbitmqName).service]: broker.host,
    [redisService.metadata!.name!]: `127.0.0.1:${ctx.redisPort}`,
  };
  for (const [name, value] of env) {
    if (!/^[a-z]+:\/\//.test(value)) continue;
    const url = new URL(value);
    if (endpoints[url.hostname] === undefined) continue;
    if (url.hostname === operatorNames(rabbitmqName).service) [url.username, url.password] = [broker.username, broker.password];
    url.host = endpoints[url.hostname]!;
    env.set(name, url.toString());
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
    // A pod without the shared volume (the purge Job) starts in a directory of its own.
    cwd: existsSync(mapPath(workdirOf(final))) ? mapPath(workdirOf(final)) : test.workdir,
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
  redisPort: number;
  redis: Proc;
}
let ctx: Ctx;

/**
 * k8s/redis.yml's container, as a process: its script, with the credentials Secrets in its
 * environment, its volumes as directories (the ConfigMap's ACL for the test's namespace), and a
 * port of its own.
 */
async function startRedis(root: string, namespace: string): Promise<{ port: number; proc: Proc }> {
  const container = podTemplateOf(redisDeployment)!.spec.containers[0]!;
  const dirs = { template: join(root, 'redis-acl-template'), acl: join(root, 'redis-acl'), data: join(root, 'redis-data') };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
  writeFileSync(join(dirs.template, 'users.acl'), redisAcl.replaceAll('tasker:', `${namespace}:`));
  const port = await freePort();
  const script = container
    .args!.join('\n')
    .replaceAll('/etc/redis-acl', dirs.template)
    .replaceAll('/run/redis-acl', dirs.acl)
    .replace('--dir /data', `--dir ${dirs.data} --port ${port} --bind 127.0.0.1`);
  const env = Object.fromEntries(containerEnv(container, { secrets: credentials, fields: {} }));
  const proc = execa(container.command![0]!, [...container.command!.slice(1), script], { env: { PATH: process.env['PATH']!, ...env }, extendEnv: false, reject: false, all: true }) as Proc;
  const output = watchOutput(proc).text;
  // Its readiness probe, as the kubelet runs it.
  const probe = podTemplateOf(redisDeployment)!.spec.containers[0]!.readinessProbe as { exec: { command: string[] } };
  await waitFor('Redis to answer its readiness probe', async () => {
    if (proc.exitCode !== null) throw new Error(`redis exited ${proc.exitCode}: ${output()}`);
    const command = probe.exec.command.map((part) => part.replace('redis-cli', `redis-cli -p ${port}`));
    return (await execa(command[0]!, command.slice(1), { reject: false })).exitCode === 0;
  }, 10_000);
  return { port, proc };
}

beforeEach(async () => {
  const temp = tempDir('tasker-k8s-');
  const workdir = join(temp.path, 'work');
  mkdirSync(workdir);
  chmodSync(temp.path, 0o755);
  asFsGroupMakesIt(workdir, 0o2775);
  const ns = newNamespace();
  const redis = await startRedis(temp.path, ns);
  ctx = { ns, workdir, procs: [], runIds: [], cleanup: temp.cleanup, redisPort: redis.port, redis: redis.proc };
});

afterEach(async () => {
  await stopAll(ctx.procs);
  await cleanupNamespace(services, ctx.ns, ctx.runIds);
  ctx.redis.kill('SIGTERM');
  await ctx.redis;
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

  it("the pods log in to Redis as their roles: tasker status works with a worker's user, tasker purge needs the tasker's (k8s/examples/tasker-purge.yml)", async () => {
    const workers = await startWorkers();
    const jobUid = randomUUID();
    const run = await tasker(jobUid);
    expect((await run.proc).exitCode, run.output()).toBe(0);
    // kubectl exec deploy/tasker-worker -- tasker ...: the tasker program with the worker pod's environment.
    const asWorker = (args: string[]) => execa(process.execPath, [taskerBin, ...args], { env: workers[0]!.pod.env, extendEnv: false, reject: false, all: true });
    const status = await asWorker(['status', jobUid, '--json']);
    expect(status.exitCode, status.all).toBe(0);
    expect(String(status.stdout)).toContain(jobUid);
    const refused = await asWorker(['purge', jobUid]);
    expect(refused.exitCode, refused.all).not.toBe(0);
    expect(refused.all).toMatch(/NOPERM/);
    // What the worker's Redis user may not do, command by command.
    const redis = new Redis(workers[0]!.pod.env['REDIS_URL']!, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await redis.connect();
      const meta = `${ctx.ns}:run:${jobUid}:meta`;
      expect(await redis.hget(meta, 'json')).toContain(jobUid);
      const denied = async (command: () => Promise<unknown>) => String(await command().then(() => 'allowed', (error: Error) => error.message));
      expect({
        writeMeta: await denied(() => redis.hset(meta, 'json', '{}')),
        deleteMeta: await denied(() => redis.del(meta)),
        indexOfRuns: await denied(() => redis.zadd(`${ctx.ns}:runs`, 1, 'forged')),
        otherNamespace: await denied(() => redis.get('elsewhere:key')),
        flushAll: await denied(() => redis.flushall()),
        keys: await denied(() => redis.keys('*')),
      }).toEqual({
        writeMeta: expect.stringMatching(/^NOPERM/),
        deleteMeta: expect.stringMatching(/^NOPERM/),
        indexOfRuns: expect.stringMatching(/^NOPERM/),
        otherNamespace: expect.stringMatching(/^NOPERM/),
        flushAll: expect.stringMatching(/^NOPERM/),
        keys: expect.stringMatching(/^NOPERM/),
      });
    } finally {
      redis.disconnect();
    }

    // The guide's command: sed "s/RUN_ID_TO_PURGE/$RUN_ID/" k8s/examples/tasker-purge.yml | kubectl create -f -
    const purgeJob = parseAllDocuments(readFileSync(join(repoRoot, 'k8s', 'examples', 'tasker-purge.yml'), 'utf8').replaceAll('RUN_ID_TO_PURGE', jobUid))[0]!.toJSON() as Doc;
    const purge = spawnPod(await podProcess(purgeJob, dockerfiles.tasker, { workdir: ctx.workdir, namespace: ctx.ns, jobUid: 'unused' }));
    ctx.procs.push(purge);
    const purged = await purge;
    expect(purged.exitCode, purged.all).toBe(0);
    expect(purged.all).toContain(jobUid);
    const after = await asWorker(['status', jobUid]);
    expect(after.exitCode, after.all).not.toBe(0);
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
