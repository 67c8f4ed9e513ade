import { join } from 'node:path';
import { ScaledJob, ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { repoRoot } from './cli.js';
import type { Doc, Manifest } from './manifests.js';
import { checkRabbitmqCluster } from './rabbitmq-cluster.js';
import { checkTopologyObject } from './rabbitmq-topology.js';

/**
 * Schema checks of the manifests, two ways:
 * - kubernetes-models' validators (JSON schema of each kind: types, enums, required fields);
 * - TypeScript's excess-property check of each document against the same models' types, which
 *   catches what the schemas let through: a misspelt field (`readOnlyRootFilesytem`) that the API
 *   server's strict field validation would reject, or worse, silently drop.
 * KEDA kinds come from @kubernetes-models/keda; the RabbitmqCluster, User and Permission from our
 * own shapes.
 */

interface Kind {
  /** Throws when the document does not match the kind's schema. */
  validate(doc: Doc): void;
  /** Module and interface the document is type-checked against. */
  type: { module: string; name: string };
}

type ModelClass = new (data: never) => { validate(): void };

function model(cls: ModelClass, module: string, name: string): Kind {
  return { validate: (doc) => new cls(doc as never).validate(), type: { module, name } };
}

export const kinds: Record<string, Kind> = {
  'v1/Namespace': model(Namespace, 'kubernetes-models/v1/Namespace', 'INamespace'),
  'v1/Service': model(Service, 'kubernetes-models/v1/Service', 'IService'),
  'v1/PersistentVolume': model(PersistentVolume, 'kubernetes-models/v1/PersistentVolume', 'IPersistentVolume'),
  'v1/PersistentVolumeClaim': model(PersistentVolumeClaim, 'kubernetes-models/v1/PersistentVolumeClaim', 'IPersistentVolumeClaim'),
  'v1/Secret': model(Secret, 'kubernetes-models/v1/Secret', 'ISecret'),
  'v1/ConfigMap': model(ConfigMap, 'kubernetes-models/v1/ConfigMap', 'IConfigMap'),
  'apps/v1/Deployment': model(Deployment, 'kubernetes-models/apps/v1/Deployment', 'IDeployment'),
  'batch/v1/Job': model(Job, 'kubernetes-models/batch/v1/Job', 'IJob'),
  'networking.k8s.io/v1/NetworkPolicy': model(NetworkPolicy, 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'),
  'keda.sh/v1alpha1/ScaledObject': model(ScaledObject, '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'IScaledObject'),
  'keda.sh/v1alpha1/ScaledJob': model(ScaledJob, '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob', 'IScaledJob'),
  'keda.sh/v1alpha1/TriggerAuthentication': model(TriggerAuthentication, '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication', 'ITriggerAuthentication'),
  'rabbitmq.com/v1beta1/RabbitmqCluster': {
    validate(doc) {
      const problems = checkRabbitmqCluster(doc);
      if (problems.length > 0) throw new Error(problems.join('; '));
    },
    // Relative to the in-memory files, which sit in test/.manifest-types/.
    type: { module: '../helpers/rabbitmq-cluster.js', name: 'RabbitmqCluster' },
  },
  'rabbitmq.com/v1beta1/User': topologyKind('RabbitmqUser'),
  'rabbitmq.com/v1beta1/Permission': topologyKind('RabbitmqPermission'),
};

/** A kind of the Messaging Topology Operator (rabbitmq-topology.ts). */
function topologyKind(name: string): Kind {
  return {
    validate(doc) {
      const problems = checkTopologyObject(doc);
      if (problems.length > 0) throw new Error(problems.join('; '));
    },
    type: { module: '../helpers/rabbitmq-topology.js', name },
  };
}

/** Kustomize's own files: checked separately (they are not Kubernetes objects). */
export function isKustomizeFile(doc: Doc): boolean {
  return typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('kustomize.config.k8s.io/');
}

export function kindOf(doc: Doc): Kind | undefined {
  return kinds[`${doc.apiVersion}/${doc.kind}`];
}

/**
 * Type-checks every manifest against its kind's TypeScript type, in one in-memory program (about
 * a second). Returns one line per problem, naming the file and document.
 */
export function typeCheckManifests(manifests: readonly Manifest[]): string[] {
  const sources = new Map<string, { source: string; label: string }>();
  for (const [n, { file, index, doc }] of manifests.entries()) {
    const kind = kindOf(doc);
    if (kind === undefined) continue;
    const label = `${file} (document ${index + 1}, ${doc.kind} ${doc.metadata?.name ?? ''})`;
    const path = join(repoRoot, 'test', '.manifest-types', `doc${n}.ts`);
    sources.set(path, {
      label,
      source: `import type { ${kind.type.name} as T } from '${kind.type.module}';\nexport const doc: T = ${JSON.stringify(doc, null, 1)};\n`,
    });
  }
  const options: ts.CompilerOptions = {
    noEmit: true,
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    const virtual = sources.get(fileName);
    return virtual !== undefined ? ts.createSourceFile(fileName, virtual.source, languageVersion) : getSourceFile(fileName, languageVersion, ...rest);
  };
  host.fileExists = (fileName) => sources.has(fileName) || fileExists(fileName);
  const program = ts.createProgram([...sources.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file === undefined ? 'typescript' : (sources.get(diagnostic.file.fileName)?.label ?? diagnostic.file.fileName);
    return `${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
  });
}
