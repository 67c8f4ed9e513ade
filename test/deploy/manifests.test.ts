import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../shared/config/duration.js';
import { names } from '../../shared/config/names.js';
import { taskerEnvironment } from '../../tasker/environment.js';
import { workerEnvironment } from '../../worker/config.js';
import { repoRoot, taskerBin } from '../helpers/cli.js';
import { isKustomizeFile, kindOf, typeCheckManifests } from '../helpers/manifest-types.js';
import {
  copiesOf,
  dockerignored,
  dockerignorePatterns,
  execForm,
  findDoc,
  imageOf,
  k8sDir,
  loadManifests,
  memoryBytes,
  nameOf,
  parseDockerfile,
  podTemplateOf,
  referencesIn,
  repoPathOf,
  selects,
  workdirOf,
  type Container,
  type Doc,
  type Dockerfile,
  type LabelSelector,
  type Manifest,
  type PodTemplate,
} from '../helpers/manifests.js';
import { operatorNames } from '../helpers/rabbitmq-cluster.js';

/**
 * Static checks of what we ship for containers and Kubernetes (k8s/, the Dockerfiles, the
 * cluster guide), against the code: environment variables come from the config modules' tables,
 * queue names from shared/names.ts, entry points from the build. No cluster, no Docker.
 */

const manifests = loadManifests();
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const kustomization = manifests.find((manifest) => manifest.file === 'k8s/kustomization.yaml')!.doc as Doc & {
  namespace: string;
  resources: string[];
  images: { name: string; newName?: string; newTag?: string }[];
};
const namespace = kustomization.namespace;
const rabbitmq = manifests.find((manifest) => manifest.doc.kind === 'RabbitmqCluster')!;
const operator = operatorNames(rabbitmq.doc.metadata!.name!);
const workerDeployment = findDoc(manifests, 'Deployment', 'tasker-worker');
const taskerJob = findDoc(manifests, 'Job', 'tasker');
const redisService = findDoc(manifests, 'Service', 'tasker-redis');
const dockerfiles = { worker: parseDockerfile(join(repoRoot, 'worker.Dockerfile')), tasker: parseDockerfile(join(repoRoot, 'tasker.Dockerfile')) };

/** Which program an image runs, from the Dockerfile that builds it (its `docker build -t` line) and its ENTRYPOINT. */
function programOfImage(image: string): 'tasker' | 'worker' | undefined {
  const name = image.split(':')[0]!;
  for (const dockerfile of Object.values(dockerfiles)) {
    const header = readFileSync(dockerfile.path, 'utf8');
    const built = /docker build -f \S+ -t ([^:\s]+):/.exec(header)?.[1];
    const mapped = kustomization.images.find((entry) => entry.name === name)?.newName ?? name;
    if (built !== name && built !== mapped) continue;
    const entrypoint = execForm(imageOf(dockerfile), 'ENTRYPOINT')!;
    const program = /bin\/(tasker|worker)\.js$/.exec(entrypoint.at(-1)!)?.[1];
    return program as 'tasker' | 'worker' | undefined;
  }
  return undefined;
}

const tables = { tasker: Object.keys(taskerEnvironment), worker: Object.keys(workerEnvironment) };

interface OurContainer {
  where: string;
  program: 'tasker' | 'worker';
  pod: PodTemplate;
  container: Container;
  /** A command that ends at once (`tasker purge`): no probes, no metrics, no workdir. */
  oneShot: boolean;
}

/** Every container under k8s/ that runs one of our images. */
function ourContainers(): OurContainer[] {
  const out: OurContainer[] = [];
  for (const { file, doc } of manifests) {
    const pod = podTemplateOf(doc);
    if (pod === undefined) continue;
    for (const container of pod.spec.containers) {
      const program = programOfImage(container.image ?? '');
      const oneShot = program === 'tasker' && container.args?.[0] !== undefined && container.args[0] !== 'run';
      if (program !== undefined) out.push({ where: `${file} ${doc.kind}/${nameOf(doc)} container ${container.name}`, program, pod, container, oneShot });
    }
  }
  return out;
}

function envValue(container: Container, name: string): string | undefined {
  return container.env?.find((variable) => variable.name === name)?.value;
}

/**
 * The credentials Secrets the guide's commands create: `stack` by the install step's loop
 * (`for role in ...; do kubectl -n NS create secret generic "tasker-credentials-$role" ...`),
 * `all` with a pool's (`kubectl -n NS create secret generic tasker-credentials-worker-POOL ...`).
 */
function guideCredentialSecrets(): { stack: string[]; all: string[] } {
  const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
  const loop = /for role in ([a-z -]+); do kubectl -n \S+ create secret generic "tasker-credentials-\$role" --from-literal=username="\$role" --from-literal=password="\$\(openssl rand -hex \d+\)"; done/.exec(guide);
  const stack = (loop?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map((role) => `tasker-credentials-${role}`);
  const pools = [...guide.matchAll(/kubectl -n \S+ create secret generic (tasker-credentials-worker-[a-z0-9-]+) --from-literal=username=worker-[a-z0-9-]+ --from-literal=password="\$\(openssl rand -hex \d+\)"/g)].map((match) => match[1]!);
  return { stack, all: [...stack, ...pools] };
}

function kubectlAvailable(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false; // not installed: the kustomize build check says so and is skipped
  }
}

/**
 * `kubectl kustomize` of a copy of k8s/ (in a temporary directory, as `k8s/`), its
 * kustomization.yaml edited and its namespace changed to `elsewhere`, so that nothing passes by
 * naming `tasker`. `prepare` runs first, given the directory that holds the copy.
 */
function buildStack(edit: (text: string) => string, prepare?: (root: string) => void): Doc[] {
  const root = mkdtempSync(join(tmpdir(), 'tasker-k8s-'));
  try {
    const dir = join(root, 'k8s');
    cpSync(k8sDir, dir, { recursive: true });
    prepare?.(root);
    const file = join(dir, 'kustomization.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')).replace(`namespace: ${namespace}`, 'namespace: elsewhere'));
    let output: string;
    try {
      output = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      throw new Error(`kubectl kustomize failed: ${String((error as { stderr?: unknown }).stderr ?? error)}`, { cause: error });
    }
    return parseAllDocuments(output).map((document) => document.toJSON() as Doc);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Whether the ingress rules of these policies let a pod with labels `from` reach one with labels `to` on `port`. */
function reaches(policies: readonly Doc[], from: Record<string, string>, to: Record<string, string>, port: number): boolean {
  return policies.some((doc) => {
    if (doc.kind !== 'NetworkPolicy') return false;
    const spec = doc['spec'] as { podSelector: LabelSelector; ingress?: { from?: { podSelector?: LabelSelector }[]; ports?: { port: number }[] }[] };
    if (!selects(spec.podSelector, to) || spec.ingress === undefined) return false;
    return spec.ingress.some(
      (rule) => (rule.ports === undefined || rule.ports.some((allowed) => allowed.port === port)) && (rule.from ?? []).some((peer) => peer.podSelector !== undefined && selects(peer.podSelector, from)),
    );
  });
}

describe('k8s/ manifests', () => {
  it('every document is a known kind and validates against its schema', () => {
    const problems: string[] = [];
    for (const { file, index, doc } of manifests) {
      if (isKustomizeFile(doc)) continue;
      const kind = kindOf(doc);
      if (kind === undefined) {
        problems.push(`${file}#${index + 1}: no schema for ${doc.apiVersion}/${doc.kind}`);
        continue;
      }
      try {
        kind.validate(doc);
      } catch (error) {
        problems.push(`${file}#${index + 1} ${doc.kind}/${doc.metadata?.name}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
    expect(manifests.filter((manifest) => !isKustomizeFile(manifest.doc)).length).toBeGreaterThan(15);
  });

  it('no document has a field its kind does not know (TypeScript check against the same models)', () => {
    expect(typeCheckManifests(manifests)).toEqual([]);
  });

  it('the type check does catch a misspelt field', () => {
    const broken = structuredClone(workerDeployment);
    podTemplateOf(broken.doc)!.spec.containers[0]!.securityContext!['readOnlyRootFilesytem'] = true;
    const problems = typeCheckManifests([broken]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("'\"readOnlyRootFilesytem\"' does not exist");
  });

  it('kustomizations name files that exist; the run (tasker.yml) and the examples are not applied with the stack', () => {
    const problems: string[] = [];
    for (const { file, doc } of manifests.filter((manifest) => isKustomizeFile(manifest.doc))) {
      const base = dirname(join(repoRoot, file));
      const listed = [...((doc['resources'] as string[] | undefined) ?? []), ...((doc['components'] as string[] | undefined) ?? [])];
      for (const entry of listed) if (!existsSync(join(base, entry))) problems.push(`${file}: ${entry} does not exist`);
    }
    expect(problems).toEqual([]);
    expect(kustomization.resources).not.toContain('tasker.yml');
    expect(kustomization.resources.some((entry) => entry.startsWith('examples/'))).toBe(false);
    // Both KEDA variants are offered, commented out: KEDA is optional.
    const text = readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8');
    expect(text).toMatch(/^# {3}- keda\/scaled-object/m);
    expect(text).toMatch(/^# {3}- keda\/scaled-job/m);
  });

  it('environment variables: each one a manifest sets is read by the program of its image (or only builds another)', () => {
    const containers = ourContainers();
    expect(containers.map((item) => item.program).sort()).toEqual(['tasker', 'tasker', 'tasker', 'worker', 'worker']);
    const problems: string[] = [];
    for (const { where, program, container } of containers) {
      const env = container.env ?? [];
      const names = env.map((variable) => variable.name);
      const duplicates = names.filter((name, i) => names.indexOf(name) !== i);
      if (duplicates.length > 0) problems.push(`${where}: set twice: ${duplicates.join(', ')}`);
      const texts = [...env.map((variable) => variable.value ?? ''), ...(container.args ?? []), ...(container.command ?? [])];
      const referenced = new Set(texts.flatMap(referencesIn));
      for (const [i, variable] of env.entries()) {
        // A variable the program does not read is fine only as a piece of another ($(NAME)), which
        // is how Kubernetes composes values (AMQP_URL from the operator's user name and password).
        if (!tables[program].includes(variable.name) && !referenced.has(variable.name)) {
          problems.push(`${where}: ${variable.name} is not read by the ${program} (not in ${program}Environment) and not used by another variable`);
        }
        for (const name of referencesIn(variable.value ?? '')) {
          if (!names.slice(0, i).includes(name)) problems.push(`${where}: ${variable.name} uses $(${name}), which is not set before it (Kubernetes would leave it as written)`);
        }
      }
      for (const arg of [...(container.args ?? []), ...(container.command ?? [])]) {
        for (const name of referencesIn(arg)) if (!names.includes(name)) problems.push(`${where}: argument "${arg}" uses $(${name}), which is not set`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("works as installed: every Secret it needs is one the guide's install step creates (a pool's: its own step), or the signing key; the others are optional", () => {
    const created = guideCredentialSecrets();
    expect(created.stack).toEqual(['tasker-credentials-tasker', 'tasker-credentials-worker', 'tasker-credentials-keda']);
    const problems: string[] = [];
    for (const { file, doc } of manifests) {
      const pod = podTemplateOf(doc);
      for (const container of pod?.spec.containers ?? []) {
        for (const variable of container.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
          if (ref === undefined || ref.optional === true) continue;
          const guideMade = created.all.includes(ref.name) && ['username', 'password'].includes(ref.key);
          const signingKey = variable.name === 'TASKER_SIGNING_KEY' && ref.name === 'tasker-signing-key' && ref.key === 'key';
          if (!guideMade && !signingKey) problems.push(`${file} ${container.name}: ${variable.name} needs ${ref.name}/${ref.key}, which nothing creates: make it optional`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('placement: every tasker and worker gets its pod and node from the Downward API, and each image names itself', () => {
    // A one-shot tasker (the purge Job) runs no command: nothing to place.
    for (const { where, container } of ourContainers().filter((item) => !item.oneShot)) {
      const fieldOf = (name: string): string | undefined => container.env?.find((variable) => variable.name === name)?.valueFrom?.fieldRef?.fieldPath;
      expect([fieldOf('POD_NAME'), fieldOf('NODE_NAME')], where).toEqual(['metadata.name', 'spec.nodeName']);
    }
    for (const dockerfile of Object.values(dockerfiles)) {
      const runtime = dockerfile.stages.flatMap((stage) => stage.instructions).map((instruction) => `${instruction.keyword} ${instruction.text}`);
      expect(runtime, dockerfile.path).toContain('ENV TASKER_IMAGE=$IMAGE');
      expect(runtime.some((line) => /^ARG IMAGE=\S+:\S+$/.test(line)), dockerfile.path).toBe(true);
    }
  });

  it('signing fails closed: every tasker and worker requires TASKER_SIGNING_KEY from its Secret, which the guide creates before the stack', () => {
    // A one-shot tasker (the purge Job) publishes and runs nothing: it needs no key.
    const containers = ourContainers().filter((item) => !item.oneShot);
    for (const { where, container } of containers) {
      const variable = container.env?.find((candidate) => candidate.name === 'TASKER_SIGNING_KEY');
      // Not optional: without the Secret the pod does not start (CreateContainerConfigError), it never runs unsigned.
      expect(variable?.valueFrom?.secretKeyRef, where).toEqual({ name: 'tasker-signing-key', key: 'key' });
      expect(envValue(container, 'TASKER_SIGNING'), `${where}: signing turned off`).toBeUndefined();
    }
    // Every pod template that runs our images, pools and KEDA's Jobs included (kustomize copies worker.yml's).
    expect(containers.length).toBeGreaterThanOrEqual(4);
    const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
    const createKey = guide.indexOf('kubectl -n tasker create secret generic tasker-signing-key --from-literal=key="$(openssl rand -hex 32)"');
    expect(createKey).toBeGreaterThan(0);
    expect(createKey).toBeLessThan(guide.indexOf('kubectl apply -k k8s/\n'));
  });

  it('connection URLs point at the RabbitMQ and Redis services of the stack', () => {
    const redisPort = (redisService.doc['spec'] as { ports: { port: number }[] }).ports[0]!.port;
    for (const { where, container } of ourContainers()) {
      const amqp = new URL(envValue(container, 'AMQP_URL')!.replace(/\$\([A-Z_]+\)/g, 'x'));
      expect([where, amqp.protocol, amqp.hostname, amqp.port]).toEqual([where, 'amqp:', operator.service, '5672']);
      const redis = new URL(envValue(container, 'REDIS_URL')!.replace(/\$\([A-Z_]+\)/g, 'x'));
      expect([where, redis.protocol, redis.hostname, Number(redis.port)]).toEqual([where, 'redis:', redisService.doc.metadata!.name, redisPort]);
    }
  });

  it("a worker's grace period outlasts its drain timeout", () => {
    for (const { where, program, pod, container } of ourContainers()) {
      if (program !== 'worker') continue;
      const drainMs = parseDuration(envValue(container, 'WORKER_DRAIN_TIMEOUT') ?? '60s')!;
      // 10 s beyond the drain: killing the commands, requeueing them and closing connections.
      expect(pod.spec.terminationGracePeriodSeconds! * 1000, where).toBeGreaterThanOrEqual(drainMs + 10_000);
    }
  });

  it('probes ask the port the program serves /healthz, /livez and /metrics on', () => {
    for (const { where, program, pod, container } of ourContainers().filter((item) => !item.oneShot)) {
      const port = Number(envValue(container, 'METRICS_PORT'));
      const named = container.ports?.find((candidate) => candidate.name === 'metrics');
      expect(named?.containerPort, where).toBe(port);
      expect(container.livenessProbe?.httpGet, where).toEqual({ path: '/livez', port: 'metrics' });
      if (program === 'worker') expect(container.readinessProbe?.httpGet, where).toEqual({ path: '/healthz', port: 'metrics' });
      expect(pod.metadata?.annotations?.['prometheus.io/port'], where).toBe(String(port));
    }
  });

  it('pods are locked down: no privilege escalation, read-only root, no API token; non-root and no capabilities, but for the tasker and the workers', () => {
    const problems: string[] = [];
    const runsCommands = new Set(ourContainers().filter((item) => !item.oneShot).map((item) => item.pod));
    for (const { file, doc } of manifests) {
      const pod = podTemplateOf(doc);
      if (pod === undefined) continue;
      const where = `${file} ${doc.kind}/${doc.metadata?.name}`;
      const podContext = pod.spec.securityContext ?? {};
      // The tasker's and the workers' are checked by the next test: root, to run commands as another user.
      if (!runsCommands.has(pod) && podContext['runAsNonRoot'] !== true) problems.push(`${where}: runAsNonRoot`);
      if (!runsCommands.has(pod) && (typeof podContext['runAsUser'] !== 'number' || podContext['runAsUser'] === 0)) problems.push(`${where}: runAsUser (a number, not 0)`);
      if ((podContext['seccompProfile'] as { type?: string } | undefined)?.type !== 'RuntimeDefault') problems.push(`${where}: seccompProfile RuntimeDefault`);
      if (pod.spec.automountServiceAccountToken !== false) problems.push(`${where}: automountServiceAccountToken: false`);
      for (const container of pod.spec.containers) {
        const context = container.securityContext ?? {};
        const capabilities = context['capabilities'] as { drop?: string[]; add?: string[] } | undefined;
        if (context['allowPrivilegeEscalation'] !== false) problems.push(`${where} ${container.name}: allowPrivilegeEscalation: false`);
        if (context['readOnlyRootFilesystem'] !== true) problems.push(`${where} ${container.name}: readOnlyRootFilesystem: true`);
        if (JSON.stringify(capabilities?.drop) !== '["ALL"]') problems.push(`${where} ${container.name}: capabilities.drop [ALL]`);
        if (!runsCommands.has(pod) && capabilities?.add !== undefined) problems.push(`${where} ${container.name}: no capabilities added`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('commands cannot obtain a secret: the tasker and the workers run as root with SETUID, SETGID and KILL only, their commands as another user of the shared volume\'s group; secret volumes are root\'s', () => {
    const problems: string[] = [];
    // A one-shot tasker (the purge Job) runs no command: it runs as a plain user, checked by the previous test.
    for (const { where, program, pod, container } of ourContainers().filter((item) => !item.oneShot)) {
      const podContext = pod.spec.securityContext ?? {};
      const context = container.securityContext ?? {};
      const capabilities = context['capabilities'] as { drop?: string[]; add?: string[] } | undefined;
      // Root holds the secrets; allowPrivilegeEscalation false (no_new_privs) keeps commands from
      // gaining anything back through a set-user-id file.
      if (podContext['runAsUser'] !== 0 || context['runAsUser'] !== undefined) problems.push(`${where}: runAsUser 0 (the pod's), so that it can switch users`);
      if (podContext['runAsNonRoot'] !== undefined || context['runAsNonRoot'] !== undefined) problems.push(`${where}: runAsNonRoot contradicts runAsUser 0`);
      if (context['privileged'] === true || context['allowPrivilegeEscalation'] !== false) problems.push(`${where}: not privileged, no privilege escalation`);
      if (JSON.stringify(capabilities?.drop) !== '["ALL"]' || JSON.stringify([...(capabilities?.add ?? [])].sort()) !== '["KILL","SETGID","SETUID"]') {
        problems.push(`${where}: capabilities drop [ALL], add exactly [SETUID, SETGID, KILL] (no DAC_OVERRIDE, CHOWN, FOWNER, SYS_PTRACE: root must not reach the commands' files or processes beyond stopping them)`);
      }
      // Commands: a user other than root, in the group the shared volume is given to (fsGroup).
      const variable = program === 'worker' ? 'WORKER_COMMAND_USER' : 'TASKER_COMMAND_USER';
      const user = envValue(container, variable);
      const [uid, gid] = (user ?? '').split(':').map(Number);
      if (user === undefined || !/^\d+:\d+$/.test(user) || uid === 0 || gid === 0) problems.push(`${where}: ${variable} "${String(user)}" (UID:GID, not root)`);
      if (gid !== podContext['fsGroup'] || podContext['runAsGroup'] !== podContext['fsGroup']) problems.push(`${where}: ${variable}'s group, runAsGroup and fsGroup are one group (the shared volume's)`);
      // A Secret as a volume: read-only to its owner, root; mounted under /run/secrets, which the
      // images make root's alone (0700), since fsGroup adds group read to every file of the volume.
      const volumes = (pod.spec.volumes ?? []) as { name: string; secret?: { defaultMode?: number }; projected?: { defaultMode?: number } }[];
      const secretVolumes = volumes.filter((volume) => volume.secret !== undefined || volume.projected !== undefined);
      for (const volume of secretVolumes) {
        const mode = volume.secret?.defaultMode ?? volume.projected?.defaultMode;
        if (mode !== 0o400) problems.push(`${where}: volume ${volume.name}: defaultMode 0400 (256), not ${String(mode)}`);
        for (const mount of container.volumeMounts?.filter((candidate) => candidate.name === volume.name) ?? []) {
          if (!mount.mountPath.startsWith('/run/secrets/')) problems.push(`${where}: volume ${volume.name} is mounted at ${mount.mountPath}, not under /run/secrets/`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('grants no RBAC: nothing needs the Kubernetes API', () => {
    const rbac = manifests.filter((manifest) => /^(Role|ClusterRole|RoleBinding|ClusterRoleBinding|ServiceAccount)$/.test(manifest.doc.kind ?? ''));
    expect(rbac.map((manifest) => manifest.file)).toEqual([]);
  });

  it('network policies: only tasker and worker pods reach RabbitMQ (5672) and Redis (6379)', () => {
    const policies = manifests.filter((manifest) => manifest.doc.kind === 'NetworkPolicy' && !manifest.file.startsWith('k8s/keda/'));
    const pods: Record<string, Record<string, string>> = {
      tasker: podTemplateOf(taskerJob.doc)!.metadata!.labels!,
      worker: podTemplateOf(workerDeployment.doc)!.metadata!.labels!,
      redis: podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-redis').doc)!.metadata!.labels!,
      // What the operator puts on its RabbitMQ pods.
      rabbitmq: { 'app.kubernetes.io/name': rabbitmq.doc.metadata!.name!, 'app.kubernetes.io/component': 'rabbitmq', 'app.kubernetes.io/part-of': 'rabbitmq' },
      other: { app: 'something-else' },
    };
    const reach = (from: string, to: string, port: number): boolean => reaches(policies.map((policy) => policy.doc), pods[from]!, pods[to]!, port);
    // Every pod of RabbitMQ and Redis is selected by some policy (else it would be open to all).
    for (const target of ['rabbitmq', 'redis']) {
      expect(policies.some(({ doc }) => selects((doc['spec'] as { podSelector: LabelSelector }).podSelector, pods[target]!)), target).toBe(true);
    }
    expect({
      taskerToRabbitmq: reach('tasker', 'rabbitmq', 5672),
      workerToRabbitmq: reach('worker', 'rabbitmq', 5672),
      taskerToRedis: reach('tasker', 'redis', 6379),
      workerToRedis: reach('worker', 'redis', 6379),
      redisToRabbitmq: reach('redis', 'rabbitmq', 5672),
      otherToRabbitmq: reach('other', 'rabbitmq', 5672),
      otherToRedis: reach('other', 'redis', 6379),
      workerToRabbitmqManagement: reach('worker', 'rabbitmq', 15672),
    }).toEqual({
      taskerToRabbitmq: true,
      workerToRabbitmq: true,
      taskerToRedis: true,
      workerToRedis: true,
      redisToRabbitmq: false,
      otherToRabbitmq: false,
      otherToRedis: false,
      workerToRabbitmqManagement: false,
    });
  });

  it("RabbitMQ's consumer_timeout is the one docs/guarantees.md gives (Long commands), and longer than a day", () => {
    const config = ((rabbitmq.doc['spec'] as { rabbitmq: { additionalConfig: string } }).rabbitmq.additionalConfig ?? '').trim();
    const timeout = /^consumer_timeout\s*=\s*(\d+)\s*$/m.exec(config)?.[1];
    expect(timeout).toBeDefined();
    expect(Number(timeout)).toBeGreaterThan(24 * 3600 * 1000);
    expect(readFileSync(join(repoRoot, 'docs', 'guarantees.md'), 'utf8')).toContain(`consumer_timeout = ${timeout}`);
  });

  it('KEDA scales the workers on the work queue, unacknowledged (running) messages included, down to zero', () => {
    const scaledObject = findDoc(manifests, 'ScaledObject', 'tasker-worker');
    const scaledJob = findDoc(manifests, 'ScaledJob', 'tasker-worker');
    const workerContainer = podTemplateOf(workerDeployment.doc)!.spec.containers[0]!;
    const workQueue = names(envValue(workerContainer, 'TASKER_NAMESPACE')).workQueue;
    const authentications = manifests.filter((manifest) => manifest.doc.kind === 'TriggerAuthentication').map((manifest) => manifest.doc.metadata!.name);
    for (const { file, doc } of [scaledObject, scaledJob]) {
      const triggers = (doc['spec'] as { triggers: { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[] }).triggers;
      // The queue (scale from zero: a run's first commands are there), and the pools' demand (demand-manifests.test.ts).
      expect(triggers.map((candidate) => candidate.type), file).toEqual(['rabbitmq', 'metrics-api']);
      const [trigger] = triggers;
      expect(trigger!.type).toBe('rabbitmq');
      // Only the management API (http) counts unacknowledged messages.
      expect(trigger!.metadata['protocol']).toBe('http');
      expect(trigger!.metadata['excludeUnacknowledged']).toBeUndefined();
      expect(trigger!.metadata['mode']).toBe('QueueLength');
      expect(trigger!.metadata['queueName']).toBe(workQueue);
      expect(trigger!.metadata['value']).toBe(envValue(workerContainer, 'WORKER_CONCURRENCY'));
      expect(new URL(trigger!.metadata['host']!).hostname).toBe(`${operator.service}.${namespace}.svc`);
      expect(authentications).toContain(trigger!.authenticationRef.name);
    }
    const spec = scaledObject.doc['spec'] as { scaleTargetRef: { name: string }; minReplicaCount: number };
    expect(spec.scaleTargetRef.name).toBe(workerDeployment.doc.metadata!.name);
    expect(spec.minReplicaCount).toBe(0);
  });

  it('the ScaledJob runs the worker pod of worker.yml, exiting when idle', () => {
    const scaledJob = podTemplateOf(findDoc(manifests, 'ScaledJob', 'tasker-worker').doc)!;
    const deployment = structuredClone(podTemplateOf(workerDeployment.doc)!);
    const jobPod = structuredClone(scaledJob);
    expect(jobPod.spec.restartPolicy).toBe('Never');
    delete jobPod.spec.restartPolicy;
    const container = jobPod.spec.containers[0]!;
    const idle = container.env!.findIndex((variable) => variable.name === 'WORKER_EXIT_WHEN_IDLE');
    expect(parseDuration(container.env![idle]!.value!)).toBeGreaterThan(0);
    container.env!.splice(idle, 1);
    expect(jobPod).toEqual(deployment);
  });

  it('tasker.yml: the run id is the Job uid (a pod restart resumes, a new Job is a new run); namespace and image agree with the stack', () => {
    const job = taskerJob.doc;
    expect(taskerJob.file).toBe('k8s/tasker.yml');
    expect(job.metadata!.namespace).toBe(namespace);
    const pod = podTemplateOf(job)!;
    expect(pod.spec.restartPolicy).toBe('Never');
    const container = pod.spec.containers[0]!;
    const args = container.args!;
    expect(args[0]).toBe('run');
    const runId = args[args.indexOf('--run-id') + 1]!;
    const [variable] = referencesIn(runId);
    expect(runId).toBe(`$(${variable})`);
    const source = container.env!.find((item) => item.name === variable)!;
    expect(source.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['batch.kubernetes.io/controller-uid']");
    expect(args).not.toContain('--resume'); // a new Job's run does not exist yet
    // Exit 1 (commands failed) ends the Job; a restarted pod would only rerun the failures. Exit 4
    // (cancelled) too: a restarted pod would be refused.
    const rules = (job['spec'] as { podFailurePolicy: { rules: { action: string; onExitCodes?: { values: number[] } }[] } }).podFailurePolicy.rules;
    expect(rules.find((rule) => rule.action === 'FailJob')?.onExitCodes?.values).toEqual([1, 4]);
    expect(readFileSync(join(k8sDir, 'tasker.yml'), 'utf8')).toMatch(/^ {2}# ttlSecondsAfterFinished: \d+$/m);
    // Images: this version's tags.
    expect(container.image).toBe(`tasker:${version}`);
    expect(kustomization.images).toEqual([{ name: 'tasker-worker', newName: 'tasker-worker', newTag: version }]);
    expect(podTemplateOf(workerDeployment.doc)!.spec.containers[0]!.image).toBe('tasker-worker');
  });

  it('every run is a new Job with a generated name: two runs side by side need no edit', () => {
    const jobs = manifests.filter((manifest) => manifest.doc.kind === 'Job');
    expect(jobs.map((job) => job.file).sort()).toEqual(['k8s/examples/tasker-configmap.yml', 'k8s/examples/tasker-purge.yml', 'k8s/tasker.yml']);
    for (const { file, doc } of jobs) {
      // A fixed name would make the second `kubectl create` fail while the first Job exists.
      expect(doc.metadata!.name, file).toBeUndefined();
      expect(doc.metadata!.generateName, file).toMatch(/^[a-z][a-z0-9-]*-$/);
      const text = readFileSync(join(repoRoot, file), 'utf8');
      // The purge Job is created with its run id filled in: sed ... FILE | kubectl create -f -
      expect(text, file).toMatch(new RegExp(`kubectl create -f ${file}|sed "[^"]+" ${file} \\| kubectl create -f -`));
      expect(text, file).not.toMatch(/kubectl apply -f k8s\/(tasker|examples\/tasker-configmap)\.yml/);
    }
  });

  it('k8s/examples/tasker-configmap.yml: the run of tasker.yml with the jobs file of a ConfigMap, no demo file staged', () => {
    const example = findDoc(manifests, 'Job', 'tasker-configmap');
    expect(example.file).toBe('k8s/examples/tasker-configmap.yml');
    expect(example.doc.metadata!.namespace).toBe(namespace);
    expect(example.doc.metadata!.labels).toEqual(taskerJob.doc.metadata!.labels);
    const pod = structuredClone(podTemplateOf(example.doc)!);
    const container = pod.spec.containers[0]!;
    const volume = pod.spec.volumes!.find((candidate) => candidate.configMap !== undefined)!;
    const mount = container.volumeMounts!.find((candidate) => candidate.name === volume.name)!;
    expect(mount.readOnly).toBe(true);
    const args = container.args!;
    const jobsFile = args.at(-1)!;
    expect(jobsFile.startsWith(`${mount.mountPath}/`), jobsFile).toBe(true);
    expect(args.filter((arg) => arg.startsWith('/job'))).toEqual([]);
    expect(args.slice(0, 3)).toEqual(podTemplateOf(taskerJob.doc)!.spec.containers[0]!.args!.slice(0, 3));
    // The guide creates that ConfigMap with that key, and starts this file.
    const key = jobsFile.slice(mount.mountPath.length + 1);
    const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
    expect(guide).toContain(`kubectl -n ${namespace} create configmap ${volume.configMap!.name} --from-file=${key}=`);
    expect(guide).toContain(`kubectl create -f ${example.file}`);
    // All else is tasker.yml's pod: same image, environment, security, volumes.
    pod.spec.volumes = pod.spec.volumes!.filter((candidate) => candidate !== volume);
    container.volumeMounts = container.volumeMounts!.filter((candidate) => candidate !== mount);
    delete container.args;
    const base = structuredClone(podTemplateOf(taskerJob.doc)!);
    delete base.spec.containers[0]!.args;
    expect(pod).toEqual(base);
    // And the Job around it: retries, failure policy.
    const jobSpec = (doc: Doc): Record<string, unknown> => ({ ...(doc['spec'] as Record<string, unknown>), template: undefined });
    expect(jobSpec(example.doc)).toEqual(jobSpec(taskerJob.doc));
  });

  it('the tasker and the workers mount the same ReadWriteMany claim at WORKDIR, the images’ working directory', () => {
    const claims = manifests.filter((manifest) => manifest.doc.kind === 'PersistentVolumeClaim' && manifest.doc.metadata?.name === 'tasker-work');
    expect(claims.map((claim) => claim.file).sort()).toEqual(['k8s/shared-volume.yml', 'k8s/volumes/nfs.yml', 'k8s/volumes/single-node.yml']);
    for (const claim of claims) expect((claim.doc['spec'] as { accessModes: string[] }).accessModes, claim.file).toEqual(['ReadWriteMany']);
    for (const { where, pod, container } of ourContainers().filter((item) => !item.oneShot)) {
      const workdir = envValue(container, 'WORKDIR');
      const mount = container.volumeMounts!.find((candidate) => candidate.mountPath === workdir);
      const volume = pod.spec.volumes!.find((candidate) => candidate.name === mount?.name);
      expect(volume?.persistentVolumeClaim?.claimName, where).toBe('tasker-work');
      for (const dockerfile of Object.values(dockerfiles)) expect(workdirOf(imageOf(dockerfile))).toBe(workdir);
      // The root filesystem is read-only: /tmp must be a writable volume.
      const tmp = container.volumeMounts!.find((candidate) => candidate.mountPath === '/tmp');
      expect(pod.spec.volumes!.find((candidate) => candidate.name === tmp?.name)?.emptyDir, where).toBeDefined();
    }
  });

  it.skipIf(!kubectlAvailable())('kubectl kustomize builds the stack and both KEDA variants, with the namespace set in one place', () => {
    const variants: Record<string, (text: string) => string> = {
      base: (text) => text,
      // What the comment in kustomization.yaml tells the user to do: uncomment one of the two.
      'scaled-object': (text) => text.replace(/^# components:$/m, 'components:').replace(/^# {3}- keda\/scaled-object/m, '  - keda/scaled-object'),
      'scaled-job': (text) => text.replace(/^# components:$/m, 'components:').replace(/^# {3}- keda\/scaled-job/m, '  - keda/scaled-job'),
    };
    const original = readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8');
    for (const [variant, edit] of Object.entries(variants)) {
      expect(edit(original) === original, variant).toBe(variant === 'base');
      const docs = buildStack(edit);
      const built: Manifest[] = docs.map((doc, index) => ({ file: `kustomize ${variant}`, index, doc }));
      for (const { doc } of built) {
        expect(kindOf(doc), `${variant}: ${doc.kind}`).toBeDefined();
        kindOf(doc)!.validate(doc);
        if (doc.kind === 'Namespace') expect(doc.metadata!.name).toBe('elsewhere');
        else if (doc.kind !== 'PersistentVolume') expect(doc.metadata!.namespace, `${variant}: ${doc.kind}/${doc.metadata!.name}`).toBe('elsewhere');
      }
      expect(typeCheckManifests(built)).toEqual([]);
      const kinds = docs.map((doc) => `${doc.kind}/${doc.metadata!.name}`);
      expect(kinds.includes('Deployment/tasker-worker'), variant).toBe(variant !== 'scaled-job');
      expect(kinds.includes('ScaledObject/tasker-worker'), variant).toBe(variant === 'scaled-object');
      expect(kinds.includes('ScaledJob/tasker-worker'), variant).toBe(variant === 'scaled-job');
      // With KEDA, applying the stack again must not reset the number of workers KEDA chose.
      const workers = docs.find((doc) => doc.kind === 'Deployment' && doc.metadata!.name === 'tasker-worker');
      if (workers !== undefined) expect((workers['spec'] as { replicas?: number }).replicas, variant).toBe(variant === 'base' ? 2 : undefined);
      for (const doc of docs) {
        const pod = podTemplateOf(doc);
        for (const container of pod?.spec.containers ?? []) if (container.name === 'worker') expect(container.image).toBe(`tasker-worker:${version}`);
        const trigger = (doc['spec'] as { triggers?: { metadata: { host: string } }[] } | undefined)?.triggers?.[0];
        if (trigger !== undefined) expect(trigger.metadata.host).toBe(`http://${operator.service}.elsewhere.svc:15672/`);
      }
    }
  });
});

describe('Dockerfiles', () => {
  const entries = Object.entries(dockerfiles) as ['tasker' | 'worker', Dockerfile][];

  it.each(entries)('%s: multi-stage, on a slim image of an even (LTS) Node line', (_program, dockerfile) => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(3);
    const image = dockerfile.globalArgs['NODE_IMAGE']!;
    const major = Number(/^node:(\d+)-(bookworm|trixie)-slim$/.exec(image)?.[1]);
    expect(major % 2, image).toBe(0);
    expect(major, image).toBeGreaterThanOrEqual(22);
    // Each stage starts from that image, or from an earlier stage (the tasker's demo from its runtime).
    for (const [i, stage] of dockerfile.stages.entries()) {
      const earlier = dockerfile.stages.slice(0, i).map((candidate) => candidate.name);
      expect(stage.from === image || earlier.includes(stage.from), stage.from).toBe(true);
    }
  });

  it.each(entries)('%s: the runtime holds production dependencies, dist/ and the entry points; runs as root under tini, its commands as another user', (program, dockerfile) => {
    const final = imageOf(dockerfile);
    const copies = copiesOf(final);
    const fromStages = copies.filter((copy) => copy.from !== undefined);
    expect(fromStages.map((copy) => `${copy.from}:${copy.sources.join(',')}`).sort()).toEqual(['build:/src/dist', 'prod-deps:/src/node_modules']);
    const prodDeps = dockerfile.stages.find((stage) => stage.name === 'prod-deps')!;
    const install = prodDeps.instructions.find((instruction) => instruction.keyword === 'RUN')!.text;
    expect(install).toContain('npm ci --omit=dev');
    expect(install).toContain('--ignore-scripts'); // `prepare` would build, without sources
    const local = copies.filter((copy) => copy.from === undefined).flatMap((copy) => copy.sources);
    expect(local.sort()).toEqual(program === 'tasker' ? ['bin', 'examples/makita', 'package.json'] : ['bin', 'package.json']);
    // Root, holding the secrets, in the shared volume's group; commands as the `node` user
    // (TASKER_COMMAND_USER, WORKER_COMMAND_USER); /work and /run/secrets as the commands must not change them.
    const user = final.instructions.filter((instruction) => instruction.keyword === 'USER').at(-1)!.text;
    expect(user).toBe('0:1000');
    const envs = final.instructions.filter((instruction) => instruction.keyword === 'ENV').map((instruction) => instruction.text).join(' ');
    expect(envs).toContain('TASKER_COMMAND_USER=1000:1000');
    if (program === 'worker') expect(envs).toContain('WORKER_COMMAND_USER=1000:1000');
    const runs = final.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.text).join('\n');
    expect(runs).toContain('install -d -o 0 -g 1000 -m 3775 /work');
    expect(runs).toContain('install -d -o 0 -g 0 -m 0700 /run/secrets');
    const entrypoint = execForm(final, 'ENTRYPOINT')!;
    expect(entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(final.instructions.some((instruction) => instruction.keyword === 'RUN' && /apt-get install .*\btini\b/.test(instruction.text))).toBe(true);
    expect(workdirOf(final)).toBe('/work');
  });

  it.each(entries)('%s: the entry point is a file the build produces, and runs that program', (program, dockerfile) => {
    const entrypoint = execForm(imageOf(dockerfile), 'ENTRYPOINT')!;
    const script = repoPathOf(dockerfile, entrypoint[2]!);
    expect(script && relative(repoRoot, script)).toBe(`bin/${program}.js`);
    const imported = /^(?:await )?import\(?'([^']+)'\)?;$/m.exec(readFileSync(script!, 'utf8'))![1]!;
    const target = join(dirname(script!), imported);
    expect(relative(repoRoot, target)).toBe(`dist/${program}/main.js`);
    expect(existsSync(target), `${relative(repoRoot, target)} is missing: run npm run build first`).toBe(true);
    // The build stage compiles with the same config as `npm run build`, into dist/.
    const build = dockerfile.stages.find((stage) => stage.name === 'build')!;
    expect(build.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.text)).toContain('npm run build');
    const outDir = (JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    expect(outDir).toBe('dist');
  });

  it("tasker: report.html's browser files ship: the build stage has tasker/, npm run build copies its assets into dist/, uPlot is a production dependency", () => {
    const build = dockerfiles.tasker.stages.find((stage) => stage.name === 'build')!;
    expect(copiesOf(build).flatMap((copy) => copy.sources)).toContain('tasker');
    for (const name of ['report.js', 'report.css']) expect(existsSync(join(repoRoot, 'dist', 'tasker', 'report', 'assets', name)), `dist/tasker/report/assets/${name}: run npm run build`).toBe(true);
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; files: string[] };
    expect(Object.keys(pkg.dependencies)).toContain('uplot');
    expect(pkg.files).toContain('dist');
  });

  it("tasker: the default command's job files are in the image", () => {
    const dockerfile = dockerfiles.tasker;
    const command = execForm(imageOf(dockerfile), 'CMD')!;
    expect(command[0]).toBe('run');
    for (const arg of command.filter((item) => item.startsWith('/'))) {
      const path = repoPathOf(dockerfile, arg);
      expect(path && existsSync(path), arg).toBe(true);
    }
    // k8s/tasker.yml gives the same job.
    const args = podTemplateOf(taskerJob.doc)!.spec.containers[0]!.args!;
    for (const arg of command.slice(1)) expect(args).toContain(arg);
  });

  it('tasker: the recipe for your own job builds on a stage without the demo, which has no /job', () => {
    const dockerfile = dockerfiles.tasker;
    const recipes = { 'tasker.Dockerfile': readFileSync(dockerfile.path, 'utf8'), 'docs/kubernetes.md': readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8') };
    const demo = imageOf(dockerfile);
    const underJob = (stage: ReturnType<typeof imageOf>): string[] => copiesOf(stage).filter((copy) => copy.destination === '/job' || copy.destination.startsWith('/job/')).map((copy) => copy.sources.join(','));
    expect(underJob(demo)).toEqual(['examples/makita']); // the default image: the demo
    for (const [where, text] of Object.entries(recipes)) {
      const build = /docker build -f tasker\.Dockerfile --target (\S+) -t ([^\s:]+):(\S+) \./.exec(text);
      expect(build, `${where}: no docker build --target line for the base of your own job`).not.toBeNull();
      const [, target, image, tag] = build!;
      const base = imageOf(dockerfile, target);
      expect(underJob(base), where).toEqual([]);
      expect(execForm(base, 'ENTRYPOINT'), where).toEqual(execForm(demo, 'ENTRYPOINT'));
      expect(workdirOf(base), where).toBe(workdirOf(demo));
      // The recipe builds FROM that image, never FROM the demo's (the worker image's recipe aside).
      const froms = [...text.matchAll(/^[#\s]*FROM (\S+)/gm)].map((match) => match[1]!).filter((from) => /^tasker[:-]/.test(from) && !from.startsWith('tasker-worker:'));
      expect(froms, where).toEqual([`${image}:${tag}`]);
    }
  });

  it.each(entries)('%s: every COPY source exists and is in the build context', (_program, dockerfile) => {
    const patterns = dockerignorePatterns();
    for (const stage of dockerfile.stages) {
      for (const copy of copiesOf(stage).filter((item) => item.from === undefined)) {
        for (const source of copy.sources) {
          expect(existsSync(join(repoRoot, source)), source).toBe(true);
          expect(dockerignored(source, patterns), `${source} is excluded by .dockerignore`).toBe(false);
        }
      }
    }
    expect(dockerignored('node_modules', patterns)).toBe(true);
    expect(dockerignored('dist', patterns)).toBe(true);
    expect(dockerignored('examples/makita/.tasker', patterns)).toBe(true);
  });
});

describe('docs/kubernetes.md', () => {
  const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
  /** Lines of the shell blocks (```bash), continuation lines joined. */
  const commands: string[] = [];
  let fence: string | undefined;
  let block = '';
  for (const line of guide.split('\n')) {
    const opening = /^\s*```(\w*)\s*$/.exec(line);
    if (opening !== null && fence === undefined) {
      fence = opening[1];
      block = '';
    } else if (/^\s*```/.test(line) && fence !== undefined) {
      if (fence === 'bash') commands.push(...block.replace(/\\\n\s*/g, ' ').split('\n').filter((text) => text.trim() !== ''));
      fence = undefined;
    } else if (fence !== undefined) {
      block += `${line}\n`;
    }
  }

  it('is linked from the README', () => {
    expect(readFileSync(join(repoRoot, 'README.md'), 'utf8')).toMatch(/\]\(docs\/kubernetes\.md\)/);
  });

  it('names files that exist', () => {
    const paths = new Set([...guide.matchAll(/\b((?:k8s|examples|docs)\/[\w./-]*[\w/])|\b([\w-]+\.Dockerfile)\b/g)].map((match) => match[1] ?? match[2]!));
    expect(paths.size).toBeGreaterThan(5);
    // What the guide's own commands create (`cp -r k8s/pools/highmem k8s/pools/gpu`) exists only then.
    const created = commands.flatMap((line) => /^cp -r \S+ (\S+)$/.exec(line)?.[1] ?? []);
    expect(created.length).toBeGreaterThan(0);
    for (const path of paths) {
      if (created.some((made) => path === made || path.startsWith(`${made}/`))) continue;
      expect(existsSync(join(repoRoot, path)), path).toBe(true);
    }
  });

  it("uses the stack's namespace in every kubectl command", () => {
    const kubectl = commands.filter((line) => /^\s*(\$ )?kubectl\b/.test(line) && !/\bkubectl (apply|create|delete) -[kf]\b|kubectl kustomize|kubectl (version|config)|kubectl create namespace|-A\b|--all-namespaces/.test(line));
    expect(kubectl.length).toBeGreaterThan(10);
    for (const line of kubectl) expect(line, line).toMatch(new RegExp(`(-n|--namespace)[ =]${namespace}\\b`));
  });

  it('names resources the manifests (or the RabbitMQ operator) create', () => {
    const known = new Set<string>();
    for (const { doc } of manifests) if (doc.metadata?.name !== undefined) known.add(`${doc.kind!.toLowerCase()}/${doc.metadata.name}`);
    for (const [kind, name] of [['service', operator.service], ['secret', operator.defaultUserSecret], ['pod', operator.firstPod], ['statefulset', operator.statefulSet]] as const) known.add(`${kind}/${name}`);
    const aliases: Record<string, string> = { deploy: 'deployment', svc: 'service', sts: 'statefulset', pvc: 'persistentvolumeclaim', scaledobjects: 'scaledobject', scaledjobs: 'scaledjob' };
    const references = [...commands.join('\n').matchAll(/\b(deployment|deploy|job|svc|service|statefulset|sts|pvc|secret|scaledobject|scaledjob|pod|networkpolicy|rabbitmqcluster)\/([a-z0-9][a-z0-9-]*)/g)];
    expect(references.length).toBeGreaterThan(5);
    for (const [, kind, name] of references) expect(known.has(`${aliases[kind!] ?? kind}/${name}`), `${kind}/${name}`).toBe(true);
    // Pods addressed by name: the first RabbitMQ node.
    for (const [, pod] of commands.join('\n').matchAll(/\bexec (?:-it )?(tasker-rabbitmq-server-\d+)/g)) expect(pod).toBe(operator.firstPod);
  });

  it('starts runs with kubectl create (a new Job each), never kubectl apply of a Job file', () => {
    const runs = commands.filter((line) => /kubectl (apply|create) -f k8s\/(tasker|examples\/tasker-configmap)\.yml/.test(line));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const line of runs) expect(line, line).toMatch(/kubectl create -f/);
    expect(guide).not.toMatch(/kubectl apply -f k8s\/tasker\.yml/);
    // The Job is addressed by the name `kubectl create` printed, not by a fixed one.
    expect(commands.some((line) => /^JOB=\$\(kubectl create -f k8s\/tasker\.yml -o name\)$/.test(line))).toBe(true);
  });

  it('installs the RabbitMQ operator of one pinned release, and removes the same', () => {
    const urls = [...guide.matchAll(/https:\/\/github\.com\/rabbitmq\/cluster-operator\/\S+?\.yml/g)].map((match) => match[0]);
    expect(urls.length).toBeGreaterThanOrEqual(2);
    for (const url of urls) expect(url).toMatch(/\/releases\/download\/v\d+\.\d+\.\d+\/cluster-operator\.yml$/);
    expect(new Set(urls).size).toBe(1);
    expect(guide).not.toMatch(/releases\/latest/);
  });

  it('shows how to get results out: kubectl cp from a pod of the shared volume, and from S3', () => {
    const workdir = envValue(podTemplateOf(workerDeployment.doc)!.spec.containers[0]!, 'WORKDIR')!;
    const copies = commands.filter((line) => new RegExp(`^kubectl -n ${namespace} cp "?\\$POD"?:${workdir}/`).test(line));
    expect(copies.length, 'kubectl cp of outputs and of the run records').toBeGreaterThanOrEqual(2);
    expect(copies.some((line) => line.includes('/.tasker/runs/'))).toBe(true);
    // $POD is a pod that mounts the volume: a worker, found by its label.
    const podLine = commands.find((line) => line.startsWith('POD=$(kubectl'))!;
    expect(podLine).toContain(`-l app.kubernetes.io/name=${podTemplateOf(workerDeployment.doc)!.metadata!.labels!['app.kubernetes.io/name']}`);
    // S3: keys are S3_PREFIX (the run id by default) / the path in the workdir.
    const bucket = (manifests.find((manifest) => manifest.file === 'k8s/examples/s3-secret.yml')!.doc['stringData'] as Record<string, string>)['S3_BUCKET'];
    expect(commands.some((line) => line.startsWith(`aws s3 sync "s3://${bucket}/$RUN_ID/"`))).toBe(true);
    expect(commands.some((line) => line.includes(`s3://${bucket}/$RUN_ID/.tasker/runs/$RUN_ID/summary.json`))).toBe(true);
  });

  it('explains rabbitmqctl list_queues with the queue names the programs use', () => {
    expect(guide).toContain('rabbitmqctl list_queues name messages_ready messages_unacknowledged consumers');
    const queues = names();
    for (const queue of [queues.workQueue, queues.deadQueue, queues.runQueue('RUN_ID')]) expect(guide, queue).toContain(queue);
  });

  it('shows tasker status run inside the cluster, and tasker purge as a Job with the tasker’s credentials', () => {
    expect(commands.some((line) => /kubectl -n \S+ exec \S+ -- tasker status/.test(line))).toBe(true);
    // A worker's credentials may not delete a run's queue and keys: purge runs as the tasker.
    expect(commands.some((line) => /kubectl -n \S+ exec \S+ -- tasker purge/.test(line))).toBe(false);
    const purge = commands.find((line) => line.includes('k8s/examples/tasker-purge.yml'));
    expect(purge).toMatch(/^sed "s\/RUN_ID_TO_PURGE\/\$RUN_ID\/" k8s\/examples\/tasker-purge\.yml \| kubectl create -f -$/);
    const job = findDoc(manifests, 'Job', 'tasker-purge').doc;
    const container = podTemplateOf(job)!.spec.containers[0]!;
    expect(container.args).toEqual(['purge', 'RUN_ID_TO_PURGE']);
    expect(new Set(container.env!.flatMap((variable) => variable.valueFrom?.secretKeyRef?.name ?? []))).toEqual(new Set(['tasker-credentials-tasker']));
  });
});

// -- Worker pools (issue 17) ----------------------------------------------------------------------

/** A pool's work queue, as the programs name it (shared/config/names.ts). */
function poolQueue(taskerNamespace: string, pool: string): string {
  return names(taskerNamespace).poolQueue(pool);
}

/** Pool names: DNS labels of at most 32 characters (the tasker refuses others, exit 2). */
const poolNamePattern = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

interface CodeBlock {
  lang: string;
  text: string;
}

/** The fenced code blocks of a piece of markdown, in order. */
function codeBlocks(markdown: string): CodeBlock[] {
  return [...markdown.matchAll(/^[ \t]*```(\w*)[ \t]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm)].map((match) => ({ lang: match[1]!, text: match[2]! }));
}

/** A section of the guide, from its heading to the next heading of its level or above (code blocks' `#` lines are not headings). */
function guideSection(heading: string): string {
  const lines = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8').split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`docs/kubernetes.md has no heading "${heading}"`);
  const level = heading.indexOf(' ');
  const next = new RegExp(`^#{1,${level}} `);
  let fenced = false;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    if (/^\s*```/.test(lines[i]!)) fenced = !fenced;
    else if (!fenced && next.test(lines[i]!)) {
      end = i;
      break;
    }
  }
  return lines.slice(start + 1, end).join('\n');
}

/** The `components:` lists of a text's yaml blocks: what the guide says k8s/kustomization.yaml's should be. */
function componentLists(markdown: string): string[][] {
  return codeBlocks(markdown)
    .filter((block) => block.lang === 'yaml')
    .map((block) => parse(block.text) as unknown)
    .flatMap((value) => (typeof value === 'object' && value !== null && Array.isArray((value as { components?: unknown }).components) ? [(value as { components: string[] }).components] : []));
}

/** The entries kustomization.yaml offers commented out under `# components:`, in order. */
function offeredComponents(text: string): string[] {
  return [...text.matchAll(/^# {3}- (\S+)/gm)].map((match) => match[1]!);
}

/** kustomization.yaml with its commented `components:` block replaced by this list. */
function withComponents(text: string, components: readonly string[]): string {
  const block = /^# components:\n(?:# {3}- .*\n)+/m;
  if (!block.test(text)) throw new Error('k8s/kustomization.yaml has no commented components: block');
  return text.replace(block, `components:\n${components.map((entry) => `  - ${entry}\n`).join('')}`);
}

function docNamed(docs: readonly Doc[], kind: string, name: string): Doc | undefined {
  return docs.find((doc) => doc.kind === kind && doc.metadata?.name === name);
}

interface Trigger {
  type: string;
  metadata: Record<string, string>;
  authenticationRef: { name: string };
}

describe('worker pools: k8s/pools/ and the guide\'s "Worker pools"', () => {
  const pool = 'highmem';
  const poolDir = `k8s/pools/${pool}`;
  const section = guideSection('### Worker pools');
  const ownPool = guideSection('#### Your own pool');
  const enabling = section.slice(0, section.indexOf('#### Your own pool'));
  const [enableComponents] = componentLists(enabling);
  const [ownComponents] = componentLists(ownPool);
  const component = manifests.find((manifest) => manifest.file === `${poolDir}/kustomization.yaml`)!.doc as Doc & { images: { name: string; newName?: string; newTag?: string }[] };
  const poolDeployment = findDoc(manifests, 'Deployment', `tasker-worker-${pool}`);
  const workerPod = podTemplateOf(workerDeployment.doc)!;
  const workerContainer = workerPod.spec.containers[0]!;
  const taskerNamespace = envValue(workerContainer, 'TASKER_NAMESPACE') ?? names().namespace;
  const rabbitmqPod = { 'app.kubernetes.io/name': operator.service, 'app.kubernetes.io/component': 'rabbitmq', 'app.kubernetes.io/part-of': 'rabbitmq' };

  it('kustomization.yaml offers the example pool commented out, above the KEDA lines; the guide uncomments it with one of them', () => {
    expect(readdirSync(join(k8sDir, 'pools'))).toEqual([pool]);
    expect(poolDeployment.file).toBe(`${poolDir}/deployment.yml`);
    const offered = offeredComponents(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'));
    expect(offered).toContain(`pools/${pool}`);
    const lastPool = (entries: readonly string[]): number => entries.findLastIndex((entry) => entry.startsWith('pools/'));
    const firstKeda = (entries: readonly string[]): number => entries.findIndex((entry) => entry.startsWith('keda/'));
    expect(lastPool(offered)).toBeLessThan(firstKeda(offered));
    // The guide's list: lines the file offers, in the file's order, the pool and one KEDA line.
    expect(enableComponents).toBeDefined();
    expect(offered.filter((entry) => enableComponents!.includes(entry))).toEqual(enableComponents);
    expect(enableComponents).toContain(`pools/${pool}`);
    expect(enableComponents!.filter((entry) => entry.startsWith('keda/'))).toHaveLength(1);
    expect(lastPool(enableComponents!)).toBeLessThan(firstKeda(enableComponents!));
  });

  it("the guide's --pool lines are k8s/tasker.yml's, commented; uncommented, they send a phase the demo runs on the workers to the pool", () => {
    const block = codeBlocks(enabling).find((candidate) => candidate.lang === 'yaml' && candidate.text.includes('--pool'))!;
    const lines = block.text.split('\n').filter((line) => line.trim() !== '');
    let text = readFileSync(join(k8sDir, 'tasker.yml'), 'utf8');
    for (const line of lines) {
      const commented = line.replace(/^(\s*)- /, '$1# - ');
      expect(text, `k8s/tasker.yml has no line "${commented}"`).toContain(`\n${commented}\n`);
      text = text.replace(`\n${commented}\n`, `\n${line}\n`);
    }
    const job = parseAllDocuments(text).map((document) => document.toJSON() as Doc).find((doc) => doc.kind === 'Job')!;
    const args = podTemplateOf(job)!.spec.containers[0]!.args!;
    const at = args.indexOf('--pool');
    expect(at).toBeGreaterThan(0);
    const [phase, named] = args[at + 1]!.split('=');
    expect(named).toBe(pool);
    expect(pool).toMatch(poolNamePattern);
    expect(enabling).toContain(`# phase: ${phase} (pool: ${pool})`);
    // The phase is one of the demo's, and runs on the workers (a tasker phase has no pool).
    const jobsFile = repoPathOf(dockerfiles.tasker, args.at(-1)!)!;
    const split = args[args.indexOf('--split') + 1]!;
    // As the tasker Job plans it: with a broker (a plan without one says `local slots`).
    const env = { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672' };
    const plan = JSON.parse(execFileSync(process.execPath, [taskerBin, 'plan', '--json', '--split', split, jobsFile], { encoding: 'utf8', env })) as { phases: { name: string; runsOn: string }[] };
    expect(plan.phases.find((candidate) => candidate.name === phase)?.runsOn).toBe('workers');
  });

  it("the guide's names are the manifests': the pool's queue, its image, and the pools a worker may serve", () => {
    const queue = poolQueue(taskerNamespace, pool);
    const scaledObject = findDoc(manifests, 'ScaledObject', `tasker-worker-${pool}`);
    expect(scaledObject.file).toBe(`${poolDir}/scaled-object.yml`);
    expect((scaledObject.doc['spec'] as { triggers: Trigger[] }).triggers[0]!.metadata['queueName']).toBe(queue);
    // list_queues, as the guide shows it, has the pool's queue beside the default one.
    const listing = codeBlocks(section).find((block) => block.text.startsWith('name '))!.text;
    expect(listing.split('\n').map((line) => line.split(/\s+/)[0])).toEqual(expect.arrayContaining([names(taskerNamespace).workQueue, queue]));
    // The pool's image: built as the guide says, named in the component.
    const image = component.images.find((entry) => entry.name === `tasker-worker-${pool}`)!;
    expect(image.newTag).toBe(version);
    const build = /image build -t (\S+) -f (\S+) \./.exec(section)!;
    expect(build[1]).toBe(`${image.newName}:${image.newTag}`);
    expect(join(repoRoot, build[2]!)).toBe(dockerfiles.worker.path);
    // The troubleshooting's worker of two pools names pools that exist.
    const served = [...guideSection('## 8. Troubleshooting').matchAll(/WORKER_POOL=([a-z0-9,-]+)/g)].flatMap((match) => match[1]!.split(','));
    expect(served).toEqual(expect.arrayContaining(['default', pool]));
    for (const name of served) expect(name === 'default' || existsSync(join(k8sDir, 'pools', name)), name).toBe(true);
  });

  it.skipIf(!kubectlAvailable())("with the guide's components, the pool's Deployment has its own image, memory and WORKER_POOL, and worker.yml's pod otherwise", () => {
    const docs = buildStack((text) => withComponents(text, enableComponents!));
    for (const doc of docs) kindOf(doc)!.validate(doc);
    expect(typeCheckManifests(docs.map((doc, index) => ({ file: 'kustomize pool', index, doc })))).toEqual([]);
    const deployment = docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!;
    expect(deployment.metadata!.namespace).toBe('elsewhere');
    // KEDA owns the number of workers.
    expect((deployment['spec'] as { replicas?: number }).replicas).toBeUndefined();
    const pod = structuredClone(podTemplateOf(deployment)!);
    expect(selects((deployment['spec'] as { selector: LabelSelector }).selector, pod.metadata!.labels!)).toBe(true);
    expect(selects((workerDeployment.doc['spec'] as { selector: LabelSelector }).selector, pod.metadata!.labels!)).toBe(false);
    const container = pod.spec.containers[0]!;
    expect(container.image).toBe(`tasker-worker-${pool}:${version}`);
    expect(envValue(container, 'WORKER_POOL')).toBe(pool);
    const memory = (resources: Container['resources'], which: 'requests' | 'limits'): number => memoryBytes(resources![which]!['memory']!);
    expect(memory(container.resources, 'requests')).toBeGreaterThan(memory(workerContainer.resources, 'requests'));
    expect(memory(container.resources, 'limits')).toBeGreaterThan(memory(workerContainer.resources, 'limits'));
    expect(memory(container.resources, 'limits')).toBeGreaterThanOrEqual(memory(container.resources, 'requests'));
    // All else is worker.yml's pod: environment, probes, volumes, security, grace period, annotations.
    const base = structuredClone(workerPod);
    for (const item of [container, base.spec.containers[0]!]) {
      delete item.image;
      delete item.resources;
    }
    container.env = container.env!.filter((variable) => variable.name !== 'WORKER_POOL');
    // The pool's own RabbitMQ user (its Redis user is the workers').
    const credentials = (item: Container, name: string) => item.env!.find((variable) => variable.name === name)!.valueFrom!.secretKeyRef!;
    expect(credentials(container, 'RABBITMQ_PASSWORD').name).toBe(`tasker-credentials-worker-${pool}`);
    expect(credentials(container, 'REDIS_PASSWORD').name).toBe('tasker-credentials-worker');
    for (const name of ['RABBITMQ_USERNAME', 'RABBITMQ_PASSWORD']) credentials(container, name).name = credentials(base.spec.containers[0]!, name).name;
    delete pod.spec['nodeSelector'];
    delete pod.spec['tolerations'];
    // The patch's variables come first in kustomize's merge; the order matters only for $(VAR) references, checked elsewhere.
    for (const item of [container, base.spec.containers[0]!]) item.env = [...item.env!].sort((a, b) => a.name.localeCompare(b.name));
    expect(pod.spec).toEqual(base.spec);
    expect(pod.metadata!.annotations).toEqual(base.metadata!.annotations);
    expect(pod.metadata!.labels).toEqual({ ...base.metadata!.labels, 'app.kubernetes.io/name': `tasker-worker-${pool}` });
  });

  it.skipIf(!kubectlAvailable())("its ScaledObject scales that Deployment on the pool's queue, waiting + running, RabbitMQ in the stack's namespace; with either KEDA line", () => {
    for (const keda of ['keda/scaled-object', 'keda/scaled-job']) {
      const docs = buildStack((text) => withComponents(text, enableComponents!.map((entry) => (entry.startsWith('keda/') ? keda : entry))));
      for (const doc of docs) if (doc.kind !== 'Namespace' && doc.kind !== 'PersistentVolume') expect(doc.metadata!.namespace, `${keda}: ${doc.kind}/${doc.metadata!.name}`).toBe('elsewhere');
      const deployment = docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!;
      const container = podTemplateOf(deployment)!.spec.containers[0]!;
      const scaledObject = docNamed(docs, 'ScaledObject', `tasker-worker-${pool}`)!;
      const spec = scaledObject['spec'] as { scaleTargetRef: { name: string }; minReplicaCount: number; triggers: Trigger[] };
      expect(spec.scaleTargetRef.name, keda).toBe(deployment.metadata!.name);
      expect(spec.minReplicaCount, keda).toBe(0);
      expect(spec.triggers.map((candidate) => candidate.type), keda).toEqual(['rabbitmq', 'metrics-api']);
      const trigger = spec.triggers[0]!;
      // The pool's demand, from the Service in the stack's namespace (kustomization.yaml's replacement).
      const demand = new URL(spec.triggers[1]!.metadata['url']!);
      expect([demand.hostname, demand.pathname, demand.searchParams.get('pool')], keda).toEqual(['tasker-demand.elsewhere.svc', '/demand', pool]);
      expect(spec.triggers[1]!.metadata['targetValue'], keda).toBe(envValue(container, 'WORKER_CONCURRENCY'));
      expect(trigger.type).toBe('rabbitmq');
      // Only the management API (http) counts unacknowledged (running) messages.
      expect(trigger.metadata['protocol']).toBe('http');
      expect(trigger.metadata['excludeUnacknowledged']).toBeUndefined();
      expect(trigger.metadata['mode']).toBe('QueueLength');
      expect(trigger.metadata['queueName']).toBe(poolQueue(envValue(container, 'TASKER_NAMESPACE') ?? taskerNamespace, envValue(container, 'WORKER_POOL')!));
      expect(trigger.metadata['value']).toBe(envValue(container, 'WORKER_CONCURRENCY'));
      expect(trigger.metadata['host'], keda).toBe(`http://${operator.service}.elsewhere.svc:15672/`);
      expect(docNamed(docs, 'TriggerAuthentication', trigger.authenticationRef.name), keda).toBeDefined();
      // The default pool's workers as that KEDA line makes them, beside the pool's.
      expect(docNamed(docs, 'Deployment', 'tasker-worker') !== undefined, keda).toBe(keda === 'keda/scaled-object');
      expect(docNamed(docs, keda === 'keda/scaled-object' ? 'ScaledObject' : 'ScaledJob', 'tasker-worker'), keda).toBeDefined();
    }
  });

  it.skipIf(!kubectlAvailable())("the network policies let the pool's workers reach RabbitMQ and Redis, as they do the default workers", () => {
    const docs = buildStack((text) => withComponents(text, enableComponents!));
    const labels = podTemplateOf(docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!)!.metadata!.labels!;
    const redis = podTemplateOf(docNamed(docs, 'Deployment', 'tasker-redis')!)!.metadata!.labels!;
    expect({
      rabbitmq: reaches(docs, labels, rabbitmqPod, 5672),
      redis: reaches(docs, labels, redis, 6379),
      management: reaches(docs, labels, rabbitmqPod, 15672),
    }).toEqual({ rabbitmq: true, redis: true, management: false });
  });

  it.skipIf(!kubectlAvailable())('the stack as shipped (the pool commented out) has no object of k8s/pools/', () => {
    const docs = buildStack((text) => text);
    const poolObjects = manifests.filter((manifest) => manifest.file.startsWith('k8s/pools/') && !isKustomizeFile(manifest.doc)).map((manifest) => `${manifest.doc.kind}/${nameOf(manifest.doc)}`);
    expect(poolObjects.sort()).toEqual([`Deployment/tasker-worker-${pool}`, `Permission/tasker-worker-${pool}`, `ScaledObject/tasker-worker-${pool}`, `User/tasker-worker-${pool}`]);
    const built = docs.map((doc) => `${doc.kind}/${nameOf(doc)}`);
    for (const object of poolObjects) expect(built).not.toContain(object);
    expect(JSON.stringify(docs)).not.toContain('.pool.');
  });

  it.skipIf(!kubectlAvailable())("the commented nodeSelector and tolerations, uncommented, put the pool's pods on its nodes", () => {
    const docs = buildStack(
      (text) => withComponents(text, enableComponents!),
      (root) => {
        const file = join(root, poolDir, 'kustomization.yaml');
        const lines = readFileSync(file, 'utf8').split('\n');
        // A commented field: `# nodeSelector:` and the more indented commented lines under it.
        for (let i = 0; i < lines.length; i++) {
          const field = /^(\s*)# (nodeSelector|tolerations):$/.exec(lines[i]!);
          if (field === null) continue;
          const indent = field[1]!;
          lines[i] = `${indent}${field[2]}:`;
          for (let j = i + 1; j < lines.length && lines[j]!.startsWith(`${indent}#   `); j++) lines[j] = indent + lines[j]!.slice(indent.length + 2);
        }
        writeFileSync(file, lines.join('\n'));
      },
    );
    const deployment = docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!;
    kindOf(deployment)!.validate(deployment);
    expect(typeCheckManifests([{ file: 'kustomize pool', index: 0, doc: deployment }])).toEqual([]);
    const spec = podTemplateOf(deployment)!.spec as { nodeSelector?: Record<string, string>; tolerations?: { key: string; effect: string }[] };
    expect(Object.keys(spec.nodeSelector ?? {})).toHaveLength(1);
    expect(spec.tolerations?.map((toleration) => toleration.effect)).toEqual(['NoSchedule']);
    // Nothing else of the default workers changes.
    expect(podTemplateOf(docNamed(docs, 'Deployment', 'tasker-worker')!)!.spec['nodeSelector']).toBeUndefined();
  });

  it.skipIf(!kubectlAvailable())('the steps of "Your own pool", followed on a copy of k8s/, give a second pool beside the first', () => {
    const steps = codeBlocks(ownPool).filter((block) => block.lang === 'bash').flatMap((block) => block.text.split('\n').filter((line) => line.trim() !== ''));
    // Only copying and renaming inside k8s/pools/ is run here.
    for (const step of steps) expect(step).toMatch(/^(cp -r k8s\/pools\/[a-z0-9-]+ k8s\/pools\/[a-z0-9-]+|grep -rl [a-z0-9-]+ k8s\/pools\/[a-z0-9-]+ \| xargs sed -i 's\/[a-z0-9-]+\/[a-z0-9-]+\/g')$/);
    const copied = /^cp -r k8s\/pools\/(\S+) k8s\/pools\/(\S+)$/.exec(steps[0]!)!;
    expect(copied[1]).toBe(pool);
    const mine = copied[2]!;
    expect(mine).toMatch(poolNamePattern);
    expect(ownComponents).toEqual(expect.arrayContaining([`pools/${pool}`, `pools/${mine}`]));
    const docs = buildStack(
      (text) => withComponents(text, ownComponents!),
      (root) => {
        for (const step of steps) execFileSync('bash', ['-c', step], { cwd: root, stdio: 'ignore' });
      },
    );
    const deployment = docNamed(docs, 'Deployment', `tasker-worker-${mine}`)!;
    const container = podTemplateOf(deployment)!.spec.containers[0]!;
    expect(envValue(container, 'WORKER_POOL')).toBe(mine);
    expect(container.image).toBe(`tasker-worker-${mine}:${version}`);
    const scaledObject = docNamed(docs, 'ScaledObject', `tasker-worker-${mine}`)!;
    const spec = scaledObject['spec'] as { scaleTargetRef: { name: string }; triggers: Trigger[] };
    expect(spec.scaleTargetRef.name).toBe(deployment.metadata!.name);
    expect(spec.triggers[0]!.metadata['queueName']).toBe(poolQueue(taskerNamespace, mine));
    expect(spec.triggers[0]!.metadata['host']).toBe(`http://${operator.service}.elsewhere.svc:15672/`);
    expect(JSON.stringify([deployment, scaledObject])).not.toContain(pool);
    // Its own RabbitMQ user, from its own Secret, allowed its own queue.
    const permission = docNamed(docs, 'Permission', `tasker-worker-${mine}`)!['spec'] as { permissions: { read: string } };
    expect(new RegExp(permission.permissions.read).test(poolQueue(taskerNamespace, mine))).toBe(true);
    expect(new RegExp(permission.permissions.read).test(poolQueue(taskerNamespace, pool))).toBe(false);
    expect((docNamed(docs, 'User', `tasker-worker-${mine}`)!['spec'] as { importCredentialsSecret: { name: string } }).importCredentialsSecret.name).toBe(`tasker-credentials-worker-${mine}`);
    expect(ownPool).toContain(`kubectl -n ${namespace} create secret generic tasker-credentials-worker-${mine} `);
    // The example pool is still there, unchanged.
    expect(envValue(podTemplateOf(docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!)!.spec.containers[0]!, 'WORKER_POOL')).toBe(pool);
    // The guide names what the steps made.
    for (const name of [`tasker-worker-${mine}`, `WORKER_POOL=${mine}`, `queueName: ${poolQueue(taskerNamespace, mine)}`, `# phase: simulate (pool: ${mine})`]) expect(ownPool, name).toContain(name);
  });

  it.skipIf(!kubectlAvailable())("a pool's line below keda/scaled-job fails the build, with the error the troubleshooting names", () => {
    const troubleshooting = guideSection('## 8. Troubleshooting');
    const quoted = /`kubectl apply -k k8s\/` fails with `([^`]+)`/.exec(troubleshooting)![1]!;
    expect(() => buildStack((text) => withComponents(text, ['keda/scaled-object', `pools/${pool}`]))).not.toThrow();
    let message = '';
    try {
      buildStack((text) => withComponents(text, ['keda/scaled-job', `pools/${pool}`]));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    for (const part of quoted.split(' ... ')) expect(message).toContain(part);
  });

  it("the pool's worker reads every variable its pod sets", () => {
    const docs = buildStack((text) => withComponents(text, enableComponents!));
    const container = podTemplateOf(docNamed(docs, 'Deployment', `tasker-worker-${pool}`)!)!.spec.containers[0]!;
    const referenced = new Set((container.env ?? []).flatMap((variable) => referencesIn(variable.value ?? '')));
    const unread = (container.env ?? []).map((variable) => variable.name).filter((name) => !tables.worker.includes(name) && !referenced.has(name));
    expect(unread).toEqual([]);
  });
});
