import { describe, expect, it } from 'vitest';
import { findDoc, loadManifests, podTemplateOf, selects, type Container, type Doc, type LabelSelector } from '../helpers/manifests.js';

/**
 * KEDA's second trigger (issue 26): the pools' demand from GET /demand on the tasker and worker
 * pods, through the tasker-demand Service, which KEDA's namespace may reach. Static checks.
 */

const manifests = loadManifests();
const service = findDoc(manifests, 'Service', 'tasker-demand');
const serviceSpec = service.doc['spec'] as { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] };
const pods = {
  tasker: podTemplateOf(findDoc(manifests, 'Job', 'tasker').doc)!,
  'tasker (ConfigMap)': podTemplateOf(findDoc(manifests, 'Job', 'tasker-configmap').doc)!,
  worker: podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-worker').doc)!,
  'worker (ScaledJob)': podTemplateOf(findDoc(manifests, 'ScaledJob', 'tasker-worker').doc)!,
};
/** The pool's pod: its labels here, the rest copied from worker.yml's by kustomize (k8s/pools/highmem/pod). */
const poolLabels = (findDoc(manifests, 'Deployment', 'tasker-worker-highmem').doc['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
const allLabels = [...Object.values(pods).map((pod) => pod.metadata!.labels!), poolLabels];

interface Trigger {
  type: string;
  metadata: Record<string, string>;
}

function env(container: Container, name: string): string | undefined {
  return container.env?.find((variable) => variable.name === name)?.value;
}

function metricsPort(container: Container): { name?: string; containerPort: number } | undefined {
  return (container.ports as { name?: string; containerPort: number }[] | undefined)?.find((port) => port.name === 'metrics');
}

describe('the demand trigger', () => {
  it('the tasker-demand Service selects every tasker and worker pod, on the port their METRICS_PORT serves', () => {
    expect(service.file).toBe('k8s/keda/auth/demand-service.yml');
    const [port] = serviceSpec.ports;
    expect(port!.targetPort).toBe('metrics');
    for (const [what, pod] of Object.entries(pods)) {
      expect(selects({ matchLabels: serviceSpec.selector }, pod.metadata!.labels!), what).toBe(true);
      const container = pod.spec.containers[0]!;
      expect(String(metricsPort(container)?.containerPort), what).toBe(env(container, 'METRICS_PORT') ?? 'unset');
      expect(port!.port, what).toBe(metricsPort(container)!.containerPort);
    }
    expect(selects({ matchLabels: serviceSpec.selector }, poolLabels)).toBe(true);
    // Nothing else: RabbitMQ's and Redis' pods serve no /demand.
    const redis = podTemplateOf(findDoc(manifests, 'Deployment', 'tasker-redis').doc)!;
    expect(selects({ matchLabels: serviceSpec.selector }, redis.metadata!.labels!)).toBe(false);
  });

  it('every ScaledObject and the ScaledJob ask /demand of their pool for commands per worker (WORKER_CONCURRENCY), beside the queue', () => {
    const worker = pods.worker.spec.containers[0]!;
    const scalers: [Doc, string][] = [
      [findDoc(manifests, 'ScaledObject', 'tasker-worker').doc, 'default'],
      [findDoc(manifests, 'ScaledJob', 'tasker-worker').doc, 'default'],
      [findDoc(manifests, 'ScaledObject', 'tasker-worker-highmem').doc, 'highmem'],
    ];
    for (const [doc, pool] of scalers) {
      const triggers = (doc['spec'] as { triggers: Trigger[] }).triggers;
      expect(triggers.map((trigger) => trigger.type)).toEqual(['rabbitmq', 'metrics-api']);
      const { metadata } = triggers[1]!;
      const url = new URL(metadata['url']!);
      expect([url.hostname, url.port, url.pathname, url.searchParams.get('pool')]).toEqual([`tasker-demand.tasker.svc`, String(serviceSpec.ports[0]!.port), '/demand', pool]);
      expect(metadata['format']).toBe('json');
      expect(metadata['valueLocation']).toBe('commands');
      expect(metadata['targetValue']).toBe(env(worker, 'WORKER_CONCURRENCY'));
      // One call to the Service: every pod answers the same, summing them would count it N times.
      expect(metadata['aggregateFromKubeServiceEndpoints']).toBeUndefined();
    }
  });

  it("KEDA's namespace may reach the pods' metrics port; the policy ships with the trigger (keda/auth)", () => {
    const policies = manifests.filter((manifest) => manifest.doc.kind === 'NetworkPolicy');
    const policy = policies.find((manifest) => selects((manifest.doc['spec'] as { podSelector: LabelSelector }).podSelector, pods.worker.metadata!.labels!))!;
    expect(policy.file).toBe('k8s/keda/auth/network-policy.yml');
    const spec = policy.doc['spec'] as { podSelector: LabelSelector; ingress: { from: { namespaceSelector?: LabelSelector }[]; ports: { port: number }[] }[] };
    for (const labels of allLabels) expect(selects(spec.podSelector, labels)).toBe(true);
    const fromKeda = spec.ingress.some(
      (rule) => rule.ports.some((port) => port.port === serviceSpec.ports[0]!.port) && rule.from.some((peer) => peer.namespaceSelector !== undefined && selects(peer.namespaceSelector, { 'kubernetes.io/metadata.name': 'keda' })),
    );
    expect(fromKeda).toBe(true);
  });
});
