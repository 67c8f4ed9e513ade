import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './cli.js';

/**
 * Reading what we ship for containers and Kubernetes: the manifests under k8s/ and the two
 * Dockerfiles, with the few Kubernetes and Docker rules the checks need (variable expansion,
 * label selectors, COPY paths). Pure functions of the files; no cluster, no Docker.
 */

export const k8sDir = join(repoRoot, 'k8s');

export type Doc = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string> };
};

/** A document's name; for one created with a generated name (`generateName: tasker-`), its stem (`tasker`). */
export function nameOf(doc: Doc): string | undefined {
  return doc.metadata?.name ?? doc.metadata?.generateName?.replace(/-$/, '');
}

export interface Manifest {
  /** Relative to the repository root, e.g. k8s/worker.yml. */
  file: string;
  /** Position of the document in its file. */
  index: number;
  doc: Doc;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry)) out.push(path);
  }
  return out;
}

/** Every YAML document under k8s/ (kustomization files included). Throws on a YAML error, naming the file. */
export function loadManifests(dir = k8sDir): Manifest[] {
  const manifests: Manifest[] = [];
  for (const path of yamlFiles(dir)) {
    const file = relative(repoRoot, path);
    const docs = parseAllDocuments(readFileSync(path, 'utf8'), { prettyErrors: true });
    for (const [index, document] of docs.entries()) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
      const doc = document.toJSON() as Doc | null;
      if (doc !== null) manifests.push({ file, index, doc });
    }
  }
  return manifests;
}

export function manifestsOf(file: string): Doc[] {
  return loadManifests().filter((manifest) => manifest.file === file).map((manifest) => manifest.doc);
}

export function findDoc(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.filter((manifest) => manifest.doc.kind === kind && nameOf(manifest.doc) === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name} under k8s/, found ${found.length}`);
  return found[0]!;
}

// -- Pods and containers -------------------------------------------------------------------------

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string };
  };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: Container[];
    volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object; configMap?: { name: string } }[];
    securityContext?: Record<string, unknown>;
    terminationGracePeriodSeconds?: number;
    automountServiceAccountToken?: boolean;
    restartPolicy?: string;
  } & Record<string, unknown>;
}

/**
 * The pod template of a workload (Deployment, Job, KEDA ScaledJob), or undefined. Undefined too for
 * a template without a pod spec: a worker pool's Deployment (k8s/pools/NAME/deployment.yml), whose
 * pod kustomize copies from worker.yml; the tests check its pod in the rendered stack.
 */
export function podTemplateOf(doc: Doc): PodTemplate | undefined {
  const spec = doc['spec'] as Record<string, unknown> | undefined;
  if (spec === undefined) return undefined;
  let template: PodTemplate | undefined;
  if (doc.kind === 'ScaledJob') template = (spec['jobTargetRef'] as { template?: PodTemplate } | undefined)?.template;
  else if (doc.kind === 'Deployment' || doc.kind === 'Job' || doc.kind === 'StatefulSet' || doc.kind === 'DaemonSet') template = spec['template'] as PodTemplate;
  return template?.spec === undefined ? undefined : template;
}

/**
 * Kubernetes' expansion of `$(NAME)` in env values, command and args: a defined name is replaced,
 * `$$` is a literal `$`, anything else is left as written.
 */
export function expandReferences(text: string, defined: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match: string, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && defined.has(name) ? defined.get(name)! : match;
  });
}

/** The `$(NAME)` references in a text. */
export function referencesIn(text: string): string[] {
  return [...text.replace(/\$\$/g, '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g)].map((match) => match[1]!);
}

export interface EnvSources {
  /** Secret name -> key -> value. A missing optional secret or key leaves the variable unset. */
  secrets: Record<string, Record<string, string>>;
  configMaps?: Record<string, Record<string, string>>;
  /** fieldPath -> value (downward API). */
  fields: Record<string, string>;
}

/** The environment a container gets, as the kubelet computes it, from test values for its sources. */
export function containerEnv(container: Container, sources: EnvSources): Map<string, string> {
  const env = new Map<string, string>();
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env.set(variable.name, expandReferences(variable.value, env));
      continue;
    }
    const from = variable.valueFrom;
    const ref = from?.secretKeyRef ?? from?.configMapKeyRef;
    if (ref !== undefined) {
      const store = from?.secretKeyRef !== undefined ? sources.secrets : (sources.configMaps ?? {});
      const value = store[ref.name]?.[ref.key];
      if (value !== undefined) env.set(variable.name, value);
      else if (ref.optional !== true) throw new Error(`${container.name}: ${variable.name} needs ${ref.name}/${ref.key}, which the test does not provide`);
      continue;
    }
    if (from?.fieldRef !== undefined) {
      const value = sources.fields[from.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`${container.name}: no test value for fieldRef ${from.fieldRef.fieldPath}`);
      env.set(variable.name, value);
      continue;
    }
    throw new Error(`${container.name}: ${variable.name} has no value the test knows how to give`);
  }
  return env;
}

/** A memory quantity (`512Mi`, `8Gi`, `1G`, `1000`) in bytes. */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (match === null) throw new Error(`not a memory quantity: ${quantity}`);
  const factors: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * factors[match[2] ?? '']!;
}

// -- Label selectors ----------------------------------------------------------------------------

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const value = labels[expression.key];
    const values = expression.values ?? [];
    if (expression.operator === 'In' && (value === undefined || !values.includes(value))) return false;
    if (expression.operator === 'NotIn' && value !== undefined && values.includes(value)) return false;
    if (expression.operator === 'Exists' && value === undefined) return false;
    if (expression.operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

// -- Dockerfiles --------------------------------------------------------------------------------

export interface Instruction {
  keyword: string;
  /** The rest of the line, continuations joined. */
  text: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  path: string;
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(path: string): Dockerfile {
  const lines = readFileSync(path, 'utf8').split('\n');
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i]!;
    if (/^\s*(#|$)/.test(text)) continue;
    while (text.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue; // comment lines inside a continuation are dropped, as Docker does
      text = `${text.slice(0, -1)} ${next.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(text);
    if (match === null) throw new Error(`${path}:${start + 1}: cannot read "${text}"`);
    instructions.push({ keyword: match[1]!.toUpperCase(), text: match[2]!.trim(), line: start + 1 });
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [from, as, name] = instruction.text.split(/\s+/);
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, from: expandArgs(from!, globalArgs), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        const [name, value] = instruction.text.split('=');
        globalArgs[name!] = value ?? '';
      }
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { path, globalArgs, stages };
}

/**
 * What an image built to `target` (default: the last stage, Docker's default target) holds: the
 * instructions of that stage after those of the stages it is built FROM, in order.
 */
export function imageOf(dockerfile: Dockerfile, target?: string): Stage {
  const stage = target === undefined ? dockerfile.stages.at(-1)! : dockerfile.stages.find((candidate) => candidate.name === target);
  if (stage === undefined) throw new Error(`${dockerfile.path}: no stage ${target}`);
  const base = dockerfile.stages.slice(0, dockerfile.stages.indexOf(stage)).find((candidate) => candidate.name === stage.from);
  if (base === undefined) return stage;
  const inherited = imageOf(dockerfile, base.name);
  return { name: stage.name, from: inherited.from, instructions: [...inherited.instructions, ...stage.instructions] };
}

function expandArgs(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (match, name: string) => args[name] ?? match);
}

/** JSON-form ENTRYPOINT / CMD (the shell form does not forward signals: not accepted). */
export function execForm(stage: Stage, keyword: 'ENTRYPOINT' | 'CMD'): string[] | undefined {
  const instruction = stage.instructions.filter((item) => item.keyword === keyword).at(-1);
  if (instruction === undefined) return undefined;
  const parsed = JSON.parse(instruction.text) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`${keyword} line ${instruction.line} is not in JSON (exec) form`);
  return parsed as string[];
}

export interface Copy {
  from: string | undefined;
  sources: string[];
  /** Absolute path in the image. */
  destination: string;
  line: number;
}

/** COPY instructions of a stage, destinations made absolute with the WORKDIR in effect. */
export function copiesOf(stage: Stage): Copy[] {
  let workdir = '/';
  const copies: Copy[] = [];
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.text);
    if (instruction.keyword !== 'COPY') continue;
    const words = instruction.text.split(/\s+/);
    const flags = words.filter((word) => word.startsWith('--'));
    const paths = words.filter((word) => !word.startsWith('--'));
    const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
    const destination = posix.resolve(workdir, paths.at(-1)!);
    copies.push({ from, sources: paths.slice(0, -1), destination, line: instruction.line });
  }
  return copies;
}

export function workdirOf(stage: Stage): string {
  let workdir = '/';
  for (const instruction of stage.instructions) if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.text);
  return workdir;
}

/**
 * Where a path of the final image comes from in this repository (after `npm run build`), following
 * COPY lines; `--from` a build stage maps that stage's WORKDIR to the repository root, since the
 * build stages copy the repository's layout there. Undefined when the path comes from elsewhere.
 */
export function repoPathOf(dockerfile: Dockerfile, imagePath: string, target?: string): string | undefined {
  const final = imageOf(dockerfile, target);
  const copies = copiesOf(final)
    .filter((copy) => imagePath === copy.destination || imagePath.startsWith(`${copy.destination}/`))
    .sort((a, b) => b.destination.length - a.destination.length);
  const copy = copies[0];
  if (copy === undefined || copy.sources.length !== 1) return undefined;
  const rest = imagePath.slice(copy.destination.length);
  if (copy.from === undefined) return join(repoRoot, copy.sources[0]!, rest);
  const stage = dockerfile.stages.find((candidate) => candidate.name === copy.from);
  if (stage === undefined) return undefined;
  const inStage = posix.join(copy.sources[0]!, rest);
  const root = workdirOf(stage);
  if (!inStage.startsWith(`${root}/`)) return undefined;
  return join(repoRoot, inStage.slice(root.length + 1));
}

/** Lines of a .dockerignore, as patterns (comments and blanks dropped). */
export function dockerignorePatterns(): string[] {
  return readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** Whether .dockerignore leaves `path` (relative to the repository root) out of the build context. */
export function dockerignored(path: string, patterns: readonly string[]): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const parts = (negated ? raw.slice(1) : raw).replace(/^\/+/, '').replace(/\/+$/, '').split('/');
    let source = '^';
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      if (part === '**') source += last ? '.*' : '(?:.*/)?';
      else source += part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + (last ? '' : '/');
    }
    if (new RegExp(`${source}(?:/.*)?$`).test(path)) ignored = !negated;
  }
  return ignored;
}

// -- Network policies ---------------------------------------------------------------------------

/** One end of a connection, as a network policy sees it: a pod (labels, namespace) or an address. */
export interface Endpoint {
  labels?: Record<string, string>;
  /** The pod's namespace; every namespace carries kubernetes.io/metadata.name. Default: the stack's. */
  namespace?: string;
  /** An address outside the cluster's pods (ipBlock rules). */
  ip?: string;
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: { port?: number; protocol?: string }[];
}

interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

function ipv4(address: string): number | undefined {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const ip = ipv4(address);
  const network = ipv4(base!);
  if (ip === undefined || network === undefined) return false;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return ((ip & mask) >>> 0) === ((network & mask) >>> 0);
}

function peerMatches(peer: PolicyPeer, other: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock !== undefined) {
    return other.ip !== undefined && inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((cidr) => inCidr(other.ip!, cidr));
  }
  if (other.labels === undefined) return false;
  const namespace = other.namespace ?? policyNamespace;
  const namespaceOk = peer.namespaceSelector === undefined ? namespace === policyNamespace : selects(peer.namespaceSelector, { 'kubernetes.io/metadata.name': namespace });
  return namespaceOk && (peer.podSelector === undefined || selects(peer.podSelector, other.labels));
}

/**
 * Whether the policies let `subject` (a pod of the stack's namespace) connect to, or be reached by,
 * `other` on `port`, as Kubernetes evaluates them: a pod no policy of that direction selects is
 * open; otherwise some rule of a policy that selects it must allow the peer and the port.
 */
export function policiesAllow(
  policies: readonly Doc[],
  direction: 'Ingress' | 'Egress',
  subject: Record<string, string>,
  other: Endpoint,
  port: number,
  protocol = 'TCP',
  namespace = 'tasker',
): boolean {
  const selecting = policies
    .filter((doc) => doc.kind === 'NetworkPolicy')
    .map((doc) => doc['spec'] as PolicySpec)
    .filter((spec) => selects(spec.podSelector, subject) && (spec.policyTypes ?? ['Ingress']).includes(direction));
  if (selecting.length === 0) return true;
  return selecting.some((spec) =>
    (direction === 'Ingress' ? (spec.ingress ?? []) : (spec.egress ?? [])).some((rule) => {
      const portOk = rule.ports === undefined || rule.ports.some((allowed) => (allowed.port === undefined || allowed.port === port) && (allowed.protocol ?? 'TCP') === protocol);
      const peers = direction === 'Ingress' ? rule.from : rule.to;
      return portOk && (peers === undefined || peers.length === 0 || peers.some((peer) => peerMatches(peer, other, namespace)));
    }),
  );
}
