import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from './cli.js';

/**
 * The container engine of the container tests (test/images, the RabbitMQ 4 run): Docker when
 * its engine answers, else podman (with the repository's containers.conf), else none. None is a
 * failure that says what to install, unless the opt-out variable below is set: these tests never
 * skip silently.
 */

/** Set to 1 to run without a container engine: the container tests then report themselves skipped. */
export const optOutVariable = 'TASKER_TEST_NO_CONTAINERS';

/** What the tests need to call the engine (plain data: it passes through vitest's provide). */
export interface Engine {
  name: 'docker' | 'podman';
  /** Environment for every call of the engine's command. */
  env: Record<string, string>;
}

/** Podman's settings for machines like CI's (runc, cgroupfs, no default ulimits): see the file. */
export const podmanConf = join(repoRoot, '.ci', 'containers.conf');

export function optedOut(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[optOutVariable] === '1';
}

async function answers(command: string, env: Record<string, string>): Promise<boolean> {
  const result = await execa(command, ['info'], { env, reject: false, timeout: 15_000, stdin: 'ignore' });
  return result.exitCode === 0;
}

/** Docker when its engine answers, else podman when it runs; undefined when neither does. */
export async function detectEngine(): Promise<Engine | undefined> {
  if (await answers('docker', {})) return { name: 'docker', env: {} };
  const podmanEnv = { CONTAINERS_CONF: process.env['CONTAINERS_CONF'] ?? podmanConf };
  if (await answers('podman', podmanEnv)) return { name: 'podman', env: podmanEnv };
  return undefined;
}

export function noEngineMessage(what: string): string {
  return (
    `${what} needs a container engine, and neither Docker (no engine answers \`docker info\`) nor podman works here. ` +
    'Install podman and runc (Debian: apt-get install podman runc debootstrap; .ci/run does it), or start Docker. ' +
    `To run the suite without these tests, set ${optOutVariable}=1 (they are then reported as skipped).`
  );
}

/** Runs the engine's command; its stdout (`all`: stdout and stderr, as `logs` needs). Throws with its output when it fails. */
export async function engineRun(engine: Engine, args: string[], options: { timeoutMs?: number; all?: boolean } = {}): Promise<string> {
  const result = await execa(engine.name, args, { env: engine.env, reject: false, all: true, timeout: options.timeoutMs ?? 120_000, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`${engine.name} ${args.join(' ')} failed (exit ${String(result.exitCode)}):\n${String(result.all).slice(-4000)}`);
  return String(options.all === true ? result.all : result.stdout).trim();
}

/** The engine's command as an argv prefix, for `rabbitmqctl` through `exec` (and its env). */
export function execPrefix(engine: Engine, container: string, user?: string): string[] {
  return [engine.name, 'exec', ...(user === undefined ? [] : ['--user', user]), container];
}

export async function imageExists(engine: Engine, image: string): Promise<boolean> {
  const result = await execa(engine.name, ['image', 'inspect', '--format', '{{.Id}}', image], { env: engine.env, reject: false, stdin: 'ignore' });
  return result.exitCode === 0;
}

/** The image's size in bytes, as the engine reports it. */
export async function imageSize(engine: Engine, image: string): Promise<number> {
  return Number(await engineRun(engine, ['image', 'inspect', '--format', '{{.Size}}', image]));
}
