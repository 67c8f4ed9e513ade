import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { declareRunQueue, declareTopology } from '../../shared/broker/amqp-topology.js';
import { names } from '../../shared/config/names.js';
import { taskerEnvironment } from '../../tasker/environment.js';
import { workerEnvironment } from '../../worker/config.js';
import { repoRoot } from '../helpers/cli.js';
import { commandEnvironment, withheldFromCommands } from '../../shared/config/config-values.js';
import { findDoc, loadManifests, memoryBytes, nameOf, podTemplateOf, policiesAllow, referencesIn, type Container, type Doc } from '../helpers/manifests.js';
import { allows, permissionCheckingChannel, type Access, type RabbitmqPermission, type RabbitmqUser } from '../helpers/rabbitmq-topology.js';

/**
 * Least privilege in k8s/ (issue 25, point 7), checked against what the programs do: each role
 * its own RabbitMQ user, whose permissions are evaluated by running the programs' own topology
 * code against a channel that applies RabbitMQ's access rules; Redis users per role; network
 * policies that keep the workers' egress to RabbitMQ, Redis, DNS and S3; bounded emptyDirs;
 * Redis's maxmemory with noeviction; the metrics servers' bind address.
 */

const manifests = loadManifests();
const docs = manifests.map((manifest) => manifest.doc);
const ns = names();
const permission = (name: string): RabbitmqPermission => findDoc(manifests, 'Permission', name).doc as unknown as RabbitmqPermission;
const user = (name: string): RabbitmqUser => findDoc(manifests, 'User', name).doc as unknown as RabbitmqUser;
const may = (name: string, access: Access, resource: string): boolean => allows(permission(name), { access, resource });

type FakeChannel = Parameters<typeof declareTopology>[0];

/** The dead-letter queue's declaration, on the same checking channel (it is declared last: a refusal closing it stops nothing). */
const sameChannel = (channel: FakeChannel): Parameters<typeof declareTopology>[3] => ({ apart: (operation) => operation(channel), unbounded: () => undefined });

describe('RabbitMQ: a user per role, allowed what it does and nothing else', () => {
  it('each role has its user, from its credentials Secret, and its pods log in with that Secret', () => {
    const roles: Record<string, { secret: string; pods: Doc[] }> = {
      'tasker-tasker': { secret: 'tasker-credentials-tasker', pods: [findDoc(manifests, 'Job', 'tasker').doc, findDoc(manifests, 'Job', 'tasker-configmap').doc, findDoc(manifests, 'Job', 'tasker-purge').doc] },
      'tasker-worker': { secret: 'tasker-credentials-worker', pods: [findDoc(manifests, 'Deployment', 'tasker-worker').doc, findDoc(manifests, 'ScaledJob', 'tasker-worker').doc] },
      'tasker-keda': { secret: 'tasker-credentials-keda', pods: [] },
      'tasker-worker-highmem': { secret: 'tasker-credentials-worker-highmem', pods: [] },
    };
    for (const [name, role] of Object.entries(roles)) {
      expect(user(name).spec.importCredentialsSecret?.name, name).toBe(role.secret);
      expect(user(name).spec.tags ?? [], name).toEqual(name === 'tasker-keda' ? ['management'] : []);
      expect(permission(name).spec.userReference?.name, name).toBe(name);
      expect(permission(name).spec.vhost).toBe('/');
      for (const pod of role.pods) {
        const env = podTemplateOf(pod)!.spec.containers[0]!.env!;
        const secretOf = (variable: string) => env.find((item) => item.name === variable)?.valueFrom?.secretKeyRef?.name;
        expect([secretOf('RABBITMQ_USERNAME'), secretOf('RABBITMQ_PASSWORD')], `${nameOf(pod)}`).toEqual([role.secret, role.secret]);
      }
    }
    // Nobody logs in as the operator's administrator any more.
    expect(JSON.stringify(docs)).not.toContain('tasker-rabbitmq-default-user');
    const trigger = findDoc(manifests, 'TriggerAuthentication', 'tasker-rabbitmq').doc['spec'] as { secretTargetRef: { name: string }[] };
    expect(new Set(trigger.secretTargetRef.map((ref) => ref.name))).toEqual(new Set(['tasker-credentials-keda']));
  });

  it('the tasker: everything its run declares, publishes, consumes and deletes is allowed', async () => {
    const { channel, refused, needed } = permissionCheckingChannel(permission('tasker-tasker'));
    const fake = channel as FakeChannel & { publish(exchange: string): Promise<void>; consume(queue: string): Promise<void>; deleteQueue(queue: string): Promise<void> };
    await declareTopology(fake, ns, ['default', 'highmem'], sameChannel(fake));
    await declareRunQueue(fake, ns, 'run-1.2_x');
    await fake.publish(ns.exchange);
    await fake.consume(ns.runQueue('run-1.2_x'));
    await fake.deleteQueue(ns.runQueue('run-1.2_x'));
    expect(refused).toEqual([]);
    expect(needed.length).toBeGreaterThan(15);
    // It counts dead letters; it never takes them.
    expect(may('tasker-tasker', 'read', ns.deadQueue)).toBe(false);
    expect(may('tasker-tasker', 'configure', 'other.commands')).toBe(false);
  });

  it('a worker: declares and consumes only its pool’s queue; refused the dead-letter queue, which its declaration leaves to the tasker', async () => {
    for (const [name, pool] of [['tasker-worker', 'default'], ['tasker-worker-highmem', 'highmem']] as const) {
      const { channel, refused } = permissionCheckingChannel(permission(name));
      const fake = channel as FakeChannel & { publish(exchange: string): Promise<void>; consume(queue: string): Promise<void> };
      // The worker's own setup (worker/service/start-worker.ts): the declaration goes through, the one refusal aside.
      await declareTopology(fake, ns, [pool], sameChannel(fake));
      expect(refused.map((need) => `${need.access} ${need.resource}`), name).toEqual([`configure ${ns.deadQueue}`]);
      const { channel: next, refused: later } = permissionCheckingChannel(permission(name));
      const after = next as typeof fake;
      await after.consume(ns.poolQueue(pool));
      await after.publish(''); // results, to a run's queue, through the default exchange
      expect(later, name).toEqual([]);
      const other = ns.poolQueue(pool === 'default' ? 'highmem' : 'default');
      expect(
        {
          declareOtherPool: may(name, 'configure', other),
          consumeOtherPool: may(name, 'read', other),
          declareOrDeleteDeadQueue: may(name, 'configure', ns.deadQueue),
          consumeDeadQueue: may(name, 'read', ns.deadQueue),
          declareOrDeleteRunQueue: may(name, 'configure', ns.runQueue('r1')),
          readRunQueue: may(name, 'read', ns.runQueue('r1')),
          publishCommands: may(name, 'write', ns.exchange),
        },
        name,
      ).toEqual({ declareOtherPool: false, consumeOtherPool: false, declareOrDeleteDeadQueue: false, consumeDeadQueue: false, declareOrDeleteRunQueue: false, readRunQueue: false, publishCommands: false });
    }
  });

  it('KEDA: reads queue lengths through the management API and may do nothing over AMQP', () => {
    for (const access of ['configure', 'write', 'read'] as const) {
      for (const resource of [ns.exchange, ns.workQueue, ns.poolQueue('highmem'), ns.deadQueue, ns.runQueue('r1'), 'amq.default']) expect(may('tasker-keda', access, resource), `${access} ${resource}`).toBe(false);
    }
  });
});

/** The ACL file of k8s/redis.yml: user name -> its rules. */
function redisUsers(): Map<string, string[]> {
  const acl = (findDoc(manifests, 'ConfigMap', 'tasker-redis-acl').doc['data'] as Record<string, string>)['users.acl']!;
  return new Map(acl.trim().split('\n').map((line) => {
    const [keyword, name, ...rules] = line.trim().split(/\s+/);
    expect(keyword).toBe('user');
    return [name!, rules];
  }));
}

/** Redis's glob (* and ?), as its key patterns use it. */
function globMatches(pattern: string, key: string): boolean {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(key);
}

describe('Redis: a user per role', () => {
  const users = redisUsers();
  const writable = (rules: readonly string[], key: string) => rules.some((rule) => /^(~|%RW~|%W~)/.test(rule) && globMatches(rule.replace(/^(%RW|%W)?~/, ''), key));
  const readable = (rules: readonly string[], key: string) => rules.some((rule) => /^(~|%RW~|%R~)/.test(rule) && globMatches(rule.replace(/^(%RW|%R)?~/, ''), key));

  it('no password-only access; the probe may only PING; the tasker has its namespace, without the dangerous commands', () => {
    expect([...users.keys()]).toEqual(['default', 'probe', '@TASKER_USERNAME@', '@WORKER_USERNAME@']);
    expect(users.get('default')).toEqual(['off']);
    expect(users.get('probe')).toEqual(['on', 'nopass', 'resetkeys', 'resetchannels', '-@all', '+ping']);
    const tasker = users.get('@TASKER_USERNAME@')!;
    expect(tasker).toEqual(['on', '>@TASKER_PASSWORD@', 'resetkeys', `~${ns.namespace}:*`, 'resetchannels', '-@all', '+@all', '-@dangerous', '+info']);
  });

  it('a worker reads the namespace, writes what a worker writes, and not a run’s meta or the index of runs', () => {
    const worker = users.get('@WORKER_USERNAME@')!;
    expect(worker.slice(0, 2)).toEqual(['on', '>@WORKER_PASSWORD@']);
    expect(worker).toContain('-@dangerous');
    const run = 'run-1.2_x';
    // Every key a worker's scripts and commands are given (shared/redis/redis-command-state.ts, redis-workers.ts, redis-queue-losses.ts).
    const written = [
      ns.cancelledKey(run),
      ...(['results', 'published', 'starts', 'stopped', 'lease:f1-L3', 'ok:f1', 'failed:2:f1'] as const).map((part) => ns.runKey(run, part)),
      ns.workerKey('host-12'),
      ns.queueLossesKey(ns.workQueue),
    ];
    for (const key of written) expect(writable(worker, key), key).toBe(true);
    for (const key of [ns.runKey(run, 'meta'), ns.runsIndexKey, ns.runKey(run, 'queue-losses')]) {
      expect(readable(worker, key), key).toBe(true);
      expect(writable(worker, key), key).toBe(false);
    }
    expect(worker).toContain(`&${ns.workerPresenceChannel('*')}`);
    // Redis checks every key given to a script as written to; this selector lets the begin script be
    // given the keys it only reads (meta, over, ...), each command in it being checked as itself.
    expect(worker.slice(-3)).toEqual([`(~${ns.namespace}:*`, '+evalsha', '+eval)']);
  });

  it('the Redis pod fills in the users from the credentials Secrets, has no password for all, and maxmemory with noeviction below its memory limit', () => {
    const pod = podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-redis').doc)!;
    const container = pod.spec.containers[0]!;
    const script = container.args!.join('\n');
    expect(script).not.toContain('--requirepass');
    for (const placeholder of ['TASKER_USERNAME', 'TASKER_PASSWORD', 'WORKER_USERNAME', 'WORKER_PASSWORD']) {
      expect(script).toContain(`s/@${placeholder}@/$${placeholder}/`);
      expect(container.env!.find((variable) => variable.name === placeholder)?.valueFrom?.secretKeyRef?.name).toBe(placeholder.startsWith('TASKER') ? 'tasker-credentials-tasker' : 'tasker-credentials-worker');
    }
    const maxmemory = /--maxmemory (\d+)mb/.exec(script)?.[1];
    expect(Number(maxmemory) * 2 ** 20).toBeLessThan(memoryBytes(container.resources!.limits!['memory']!));
    expect(Number(maxmemory) * 2 ** 20).toBeGreaterThanOrEqual(memoryBytes(container.resources!.limits!['memory']!) / 2);
    expect(script).toMatch(/--maxmemory-policy noeviction\b/);
    expect(script).toMatch(/--aclfile \/run\/redis-acl\/users\.acl/);
    expect(JSON.stringify(container.readinessProbe)).toContain('--user probe');
  });
});

describe('network policies: a worker reaches RabbitMQ, Redis, DNS and S3, and nothing else', () => {
  const policies = docs.filter((doc) => doc.kind === 'NetworkPolicy');
  const worker = podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-worker').doc)!.metadata!.labels!;
  // A pool's pod spec is copied by kustomize; its labels are its own.
  const pool = (findDoc(manifests, 'Deployment', 'tasker-worker-highmem').doc['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
  const tasker = podTemplateOf(findDoc(manifests, 'Job', 'tasker').doc)!.metadata!.labels!;
  const rabbitmq = { 'app.kubernetes.io/name': 'tasker-rabbitmq', 'app.kubernetes.io/component': 'rabbitmq', 'app.kubernetes.io/part-of': 'rabbitmq' };
  const redis = podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-redis').doc)!.metadata!.labels!;
  const dns = { labels: { 'k8s-app': 'kube-dns' }, namespace: 'kube-system' };

  it('egress of every worker pod', () => {
    for (const labels of [worker, pool]) {
      const out = (other: Parameters<typeof policiesAllow>[3], port: number, protocol = 'TCP') => policiesAllow(policies, 'Egress', labels, other, port, protocol);
      expect({
        rabbitmq: out({ labels: rabbitmq }, 5672),
        rabbitmqTls: out({ labels: rabbitmq }, 5671),
        redis: out({ labels: redis }, 6379),
        dnsUdp: out(dns, 53, 'UDP'),
        dnsTcp: out(dns, 53),
        s3: out({ ip: '52.218.1.1' }, 443),
        rabbitmqManagement: out({ labels: rabbitmq }, 15672),
        taskerMetrics: out({ labels: tasker }, 9090),
        otherPod: out({ labels: { app: 'something-else' } }, 443),
        kubernetesApi: out({ ip: '10.96.0.1' }, 443),
        cloudMetadata: out({ ip: '169.254.169.254' }, 80),
        plainHttp: out({ ip: '52.218.1.1' }, 80),
        otherNamespace: out({ labels: redis, namespace: 'default' }, 6379),
      }).toEqual({
        rabbitmq: true,
        rabbitmqTls: true,
        redis: true,
        dnsUdp: true,
        dnsTcp: true,
        s3: true,
        rabbitmqManagement: false,
        taskerMetrics: false,
        otherPod: false,
        kubernetesApi: false,
        cloudMetadata: false,
        plainHttp: false,
        otherNamespace: false,
      });
    }
    // The tasker's pod is not limited (its tasker phases' commands are the jobs file author's own).
    expect(policiesAllow(policies, 'Egress', tasker, { ip: '52.218.1.1' }, 80)).toBe(true);
  });

  it('the Messaging Topology Operator reaches RabbitMQ’s management API, and only that', () => {
    const operator = { labels: { 'app.kubernetes.io/name': 'messaging-topology-operator' }, namespace: 'rabbitmq-system' };
    expect(policiesAllow(policies, 'Ingress', rabbitmq, operator, 15672)).toBe(true);
    expect(policiesAllow(policies, 'Ingress', rabbitmq, operator, 5672)).toBe(false);
    expect(policiesAllow(policies, 'Ingress', rabbitmq, { labels: worker }, 15672)).toBe(false);
  });
});

describe('pods: credentials out of the commands’ environment, bounded scratch space, the metrics bind address', () => {
  it('every variable a pod builds its URLs from (user names, passwords) is withheld from commands', () => {
    for (const { file, doc } of manifests) {
      for (const container of podTemplateOf(doc)?.spec.containers ?? ([] as Container[])) {
        for (const url of ['AMQP_URL', 'REDIS_URL']) {
          const value = container.env?.find((variable) => variable.name === url)?.value;
          if (value === undefined) continue;
          const used = referencesIn(value);
          expect(used.length, `${file} ${url}`).toBeGreaterThan(0);
          for (const name of used) expect(withheldFromCommands as readonly string[], `${file} ${url} uses ${name}`).toContain(name);
        }
      }
    }
    expect(Object.keys(commandEnvironment({ REDIS_USERNAME: 'worker', REDIS_PASSWORD: 'x', RABBITMQ_PASSWORD: 'y', HOME: '/h' }))).toEqual(['HOME']);
  });


  it('every emptyDir has a size limit', () => {
    const unbounded: string[] = [];
    for (const { file, doc } of manifests) {
      for (const volume of podTemplateOf(doc)?.spec.volumes ?? []) {
        const emptyDir = volume.emptyDir as { sizeLimit?: string } | undefined;
        if (emptyDir !== undefined && emptyDir.sizeLimit === undefined) unbounded.push(`${file} ${nameOf(doc)} ${volume.name}`);
        if (emptyDir?.sizeLimit !== undefined) expect(memoryBytes(emptyDir.sizeLimit), `${file} ${volume.name}`).toBeGreaterThan(0);
      }
    }
    expect(unbounded).toEqual([]);
  });

  it('METRICS_HOST: read by the tasker and the worker, documented; a pod that sets it binds every interface (its probes come from outside it)', () => {
    expect(Object.keys(taskerEnvironment)).toContain('METRICS_HOST');
    expect(Object.keys(workerEnvironment)).toContain('METRICS_HOST');
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toContain('| `METRICS_HOST` |');
    expect(readme).toContain('`--metrics-host ADDRESS`');
    for (const { file, doc } of manifests) {
      for (const container of podTemplateOf(doc)?.spec.containers ?? ([] as Container[])) {
        const host = container.env?.find((variable) => variable.name === 'METRICS_HOST')?.value;
        if (host !== undefined) expect(['0.0.0.0', '::'], file).toContain(host);
      }
    }
  });
});

describe('docs/kubernetes.md: the operators and the credentials', () => {
  const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');

  it('installs cert-manager and the Messaging Topology Operator of pinned releases, and removes the same', () => {
    for (const [what, pattern] of [
      ['cert-manager', /https:\/\/github\.com\/cert-manager\/cert-manager\/releases\/\S+?\.yaml/g],
      ['topology operator', /https:\/\/github\.com\/rabbitmq\/messaging-topology-operator\/releases\/\S+?\.yaml/g],
    ] as const) {
      const urls = [...guide.matchAll(pattern)].map((match) => match[0]);
      expect(urls.length, what).toBeGreaterThanOrEqual(2);
      for (const url of urls) expect(url, what).toMatch(/\/releases\/download\/v\d+\.\d+\.\d+\//);
      expect(new Set(urls).size, what).toBe(1);
    }
  });

  it('creates each role’s credentials, hex (URL-safe: they go into AMQP_URL and REDIS_URL)', () => {
    expect(guide).toMatch(/for role in tasker worker keda; do kubectl -n tasker create secret generic "tasker-credentials-\$role" --from-literal=username="\$role" --from-literal=password="\$\(openssl rand -hex 24\)"; done/);
    expect(guide).toContain('kubectl -n tasker create secret generic tasker-credentials-worker-highmem --from-literal=username=worker-highmem --from-literal=password="$(openssl rand -hex 24)"');
  });
});
