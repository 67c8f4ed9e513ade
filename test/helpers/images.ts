import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { engineRun, type Engine } from './container-engine.js';
import { repoRoot } from './cli.js';
import { expandReferences, findDoc, loadManifests, podTemplateOf } from './manifests.js';
import { nodeBaseImage } from './standin-images.js';

/**
 * Builds the two images and runs them as containers the way k8s/ runs them: as root in group 1000
 * (the images' USER, and fsGroup's supplementary group) with the capabilities SETUID, SETGID and
 * KILL only, no privilege escalation, read-only root filesystem; writable only the shared volume at
 * /work and empty directories at /tmp and /home/node; secret volumes under /run/secrets.
 */

export const images = { tasker: 'localhost/tasker:test', worker: 'localhost/tasker-worker:test' };

export interface Built {
  base: string;
  /** How the base image was found: present, pulled, or the stand-in built (or cached). */
  baseHow: string;
  baseSeconds: number;
  buildSeconds: Record<keyof typeof images, number>;
}

const seconds = (since: number): number => Math.round((Date.now() - since) / 100) / 10;

/** Builds worker.Dockerfile and tasker.Dockerfile on node:24-bookworm-slim or its stand-in. */
export async function buildImages(engine: Engine): Promise<Built> {
  let started = Date.now();
  const { image: base, how } = await nodeBaseImage(engine);
  const baseSeconds = seconds(started);
  const buildSeconds = { worker: 0, tasker: 0 };
  // Podman builds on the host's network (no bridge networking on machines like CI's).
  const network = engine.name === 'podman' ? ['--network', 'host'] : [];
  for (const which of ['worker', 'tasker'] as const) {
    started = Date.now();
    await engineRun(engine, ['build', ...network, '--build-arg', `NODE_IMAGE=${base}`, '-f', `${repoRoot}/${which}.Dockerfile`, '-t', images[which], repoRoot], { timeoutMs: 900_000 });
    buildSeconds[which] = seconds(started);
  }
  return { base, baseHow: how, baseSeconds, buildSeconds };
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** Host directory mounted at /work (owned by uid 1000, as fsGroup makes the volume). */
  workdir: string;
  /** Host directory under which the container's emptyDir volumes (/tmp, /home/node) are made. */
  emptyDirs: string;
  env: Record<string, string>;
  args?: string[];
  /** Host files mounted read-only at these paths, as a Secret volume's (the caller gives them the kubelet's owner and mode). */
  secrets?: Record<string, string>;
}

/** `run -d` arguments with the manifests' security context and volumes. */
function runArgs(engine: Engine, spec: ContainerSpec): string[] {
  // Podman would add tmpfs mounts of its own to a read-only container; Kubernetes does not.
  const readOnly = engine.name === 'podman' ? ['--read-only', '--read-only-tmpfs=false'] : ['--read-only'];
  return [
    // Its own host name, as a pod has: a worker's id is made of it (and of its pid, 1 or 2 in every container).
    'run', '-d', '--name', spec.name, '--hostname', spec.name, '--network', 'host',
    ...readOnly,
    // k8s/: runAsUser 0, runAsGroup and fsGroup 1000, capabilities drop ALL, add SETUID, SETGID, KILL.
    '--user', '0:1000', '--group-add', '1000',
    '--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID', '--cap-add', 'KILL', '--security-opt', 'no-new-privileges',
    '-v', `${spec.workdir}:/work`,
    ...Object.entries(emptyDirsOf(spec)).flatMap(([path, hostDir]) => ['-v', `${hostDir}:${path}`]),
    ...Object.entries(spec.secrets ?? {}).flatMap(([path, hostFile]) => ['-v', `${hostFile}:${path}:ro`]),
    ...Object.entries(spec.env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
    spec.image, ...(spec.args ?? []),
  ];
}

/**
 * The manifests' emptyDir volumes, as a kubelet makes them: fresh host directories, mode 0777,
 * given to the pod's fsGroup (1000, set-group-id). (Not tmpfs mounts: podman ignores the mode of a
 * tmpfs mounted over a directory the image has, such as /home/node.)
 */
function emptyDirsOf(spec: ContainerSpec): Record<string, string> {
  const dirs = { '/tmp': join(spec.emptyDirs, spec.name, 'tmp'), '/home/node': join(spec.emptyDirs, spec.name, 'home') };
  for (const dir of Object.values(dirs)) {
    mkdirSync(dir, { recursive: true });
    chownSync(dir, 0, 1000);
    chmodSync(dir, 0o2777);
  }
  return dirs;
}

export async function startContainer(engine: Engine, spec: ContainerSpec): Promise<void> {
  await engineRun(engine, runArgs(engine, spec));
}

export function logsOf(engine: Engine, name: string): Promise<string> {
  return engineRun(engine, ['logs', name], { all: true }).catch((error: unknown) => String(error));
}

/** Waits until the container's output contains `text`; fails early, with its output, if it exits. */
export async function waitForLog(engine: Engine, name: string, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await logsOf(engine, name)).includes(text)) return;
    if ((await engineRun(engine, ['inspect', '--format', '{{.State.Running}}', name])) !== 'true') break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`container ${name} did not print "${text}" within ${timeoutMs} ms:\n${(await logsOf(engine, name)).slice(-3000)}`);
}

/** Waits for the container to exit; its exit code. */
export async function exitCodeOf(engine: Engine, name: string, timeoutMs = 300_000): Promise<number> {
  return Number((await engineRun(engine, ['wait', name], { timeoutMs })).split('\n').at(-1));
}

/** The tasker Job's args in k8s/tasker.yml, with the run id in place of the Job's uid. */
export function taskerJobArgs(runId: string): string[] {
  const job = findDoc(loadManifests(), 'Job', 'tasker');
  const container = podTemplateOf(job.doc)?.spec.containers.find((c) => c.name === 'tasker');
  if (container?.args === undefined) throw new Error('k8s/tasker.yml: no args for the tasker container');
  return container.args.map((arg) => expandReferences(arg, new Map([['JOB_UID', runId]])));
}
