import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IAffinity } from 'kubernetes-models/v1/Affinity';
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import type { IToleration } from 'kubernetes-models/v1/Toleration';

/**
 * The shape of a RabbitmqCluster (rabbitmq.com/v1beta1) of the RabbitMQ Cluster Operator, as far
 * as a manifest of ours may use it: its CRD is not part of kubernetes-models. Field names follow
 * the operator's api/v1beta1/rabbitmqcluster_types.go; `override` is left open (a StatefulSet
 * patch). The manifest test type-checks k8s/rabbitmq.yml against it, unknown fields included.
 */
export interface RabbitmqCluster {
  apiVersion: 'rabbitmq.com/v1beta1';
  kind: 'RabbitmqCluster';
  metadata: NonNullable<IDeployment['metadata']> & { name: string };
  spec?: {
    /** 1, 3 or 5 are the tested sizes. */
    replicas?: number;
    image?: string;
    imagePullSecrets?: { name: string }[];
    service?: { type?: 'ClusterIP' | 'LoadBalancer' | 'NodePort'; annotations?: Record<string, string>; ipFamilyPolicy?: string };
    persistence?: { storageClassName?: string; storage?: string };
    resources?: IResourceRequirements;
    affinity?: IAffinity;
    tolerations?: IToleration[];
    rabbitmq?: {
      additionalPlugins?: string[];
      /** Appended to rabbitmq.conf; at most 2000 characters. */
      additionalConfig?: string;
      advancedConfig?: string;
      envConfig?: string;
      erlangInetConfig?: string;
    };
    tls?: { secretName?: string; caSecretName?: string; disableNonTLSListeners?: boolean };
    override?: { statefulSet?: Record<string, unknown>; service?: Record<string, unknown> };
    skipPostDeploySteps?: boolean;
    terminationGracePeriodSeconds?: number;
    delayStartSeconds?: number;
    autoEnableAllFeatureFlags?: boolean;
    secretBackend?: Record<string, unknown>;
  };
}

/** What the operator creates for a cluster of this name (Service, default-user Secret, first pod). */
export function operatorNames(clusterName: string): { service: string; defaultUserSecret: string; firstPod: string; statefulSet: string } {
  return { service: clusterName, defaultUserSecret: `${clusterName}-default-user`, firstPod: `${clusterName}-server-0`, statefulSet: `${clusterName}-server` };
}

/** Runtime checks the type cannot express. Returns the problems found. */
export function checkRabbitmqCluster(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (doc['apiVersion'] !== 'rabbitmq.com/v1beta1') problems.push(`apiVersion must be rabbitmq.com/v1beta1, got ${String(doc['apiVersion'])}`);
  const metadata = doc['metadata'] as { name?: unknown } | undefined;
  if (typeof metadata?.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(metadata.name)) problems.push('metadata.name must be a DNS label');
  const spec = (doc['spec'] ?? {}) as NonNullable<RabbitmqCluster['spec']>;
  if (spec.replicas !== undefined && (!Number.isInteger(spec.replicas) || spec.replicas < 0)) problems.push('spec.replicas must be a whole number');
  const additional = spec.rabbitmq?.additionalConfig;
  if (additional !== undefined && additional.length > 2000) problems.push(`spec.rabbitmq.additionalConfig is ${additional.length} characters; the operator accepts 2000`);
  if (spec.persistence?.storage !== undefined && !/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.test(spec.persistence.storage)) problems.push(`spec.persistence.storage "${spec.persistence.storage}" is not a quantity`);
  return problems;
}
