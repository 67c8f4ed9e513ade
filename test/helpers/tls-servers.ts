import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { dirname, join } from 'node:path';
import amqp from 'amqplib';
import { freePort } from './distributed.js';

/**
 * TLS servers of the tests' own, never the machine's shared RabbitMQ (5672) or Redis (6379): a
 * CA and certificates made with `openssl` in a temporary directory, a private RabbitMQ node with
 * only a TLS listener (its own node name, config file, ports, epmd, data and log directories; as
 * the `rabbitmq` user when the tests run as root), and private `redis-server`s with only a
 * `tls-port`. Everything listens on 127.0.0.1, on free ports, and stop() leaves no process behind.
 */

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Certificates {
  dir: string;
  /** The CA that signed `server` and `client`. */
  ca: string;
  /** Another CA, that signed nothing the servers use: "the wrong CA". */
  otherCa: string;
  /** For 127.0.0.1 and localhost; server and client auth (Redis's own tools use it as a client). */
  server: KeyPair;
  /** A client certificate of `ca`. */
  client: KeyPair;
  /** A client certificate of `otherCa`: one the servers must refuse. */
  stranger: KeyPair;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** EC P-256 keys: made in milliseconds, and accepted by Node, Erlang and Redis alike. */
function newCa(dir: string, name: string): KeyPair {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=tasker test ${name}`], dir);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

function issue(dir: string, name: string, ca: KeyPair, extensions: string): KeyPair {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

export function makeCertificates(dir: string): Certificates {
  const ca = newCa(dir, 'ca');
  const other = newCa(dir, 'other-ca');
  const server = issue(dir, 'server', ca, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const client = issue(dir, 'client', ca, 'extendedKeyUsage=clientAuth\n');
  const stranger = issue(dir, 'stranger', other, 'extendedKeyUsage=clientAuth\n');
  return { dir, ca: ca.cert, otherCa: other.cert, server, client, stranger };
}

export interface PrivateServer {
  port: number;
  /** Ends the server and everything it started; idempotent. */
  stop(): Promise<void>;
}

/** Resolves when the child has ended, or could not start (no such program). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/** Kills the process group the child leads (spawned detached), then waits for the child. */
async function killGroup(child: ChildProcess): Promise<void> {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  await exited(child);
}

/** Resolves once a TLS handshake with 127.0.0.1:port succeeds (the server is up). */
async function waitForTls(port: number, ca: string, client: KeyPair, what: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const options = { host: '127.0.0.1', port, ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key) };
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tlsConnect(options, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} did not accept TLS on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log().slice(-3000)}`);
}

export interface RedisOptions {
  password: string;
  /** tls-auth-clients yes: a client certificate of the CA is required. Default: no. */
  requireClientCert?: boolean;
}

/** redis-server with only a TLS port (`--port 0`), no persistence. */
export async function startTlsRedis(certs: Certificates, options: RedisOptions): Promise<PrivateServer> {
  const port = await freePort();
  const args = ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', options.password];
  args.push('--tls-cert-file', certs.server.cert, '--tls-key-file', certs.server.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', options.requireClientCert === true ? 'yes' : 'no');
  const child = spawn('redis-server', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.on('error', (error) => (log += `${error.message} (is redis-server installed?)\n`));
  const stop = () => killGroup(child);
  // Once the race is decided, the server's end is stop()'s doing, not a failed start.
  let decided = false;
  try {
    await Promise.race([
      waitForTls(port, certs.ca, certs.client, 'redis-server', 10_000, () => log),
      exited(child).then(() => {
        if (decided) return;
        // A redis-server built without TLS (BUILD_TLS=yes) does not know --tls-port.
        const hint = /tls-port|Bad directive/i.test(log) ? ' (was it built with TLS? `redis-server --tls-port 0` must be accepted)' : '';
        throw new Error(`redis-server exited at start${hint}:\n${log.slice(-2000)}`);
      }),
    ]).finally(() => {
      decided = true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, stop };
}

/** The rabbitmq-server script itself, not Debian's wrapper (which switches user and resets the environment). */
function rabbitmqServerScript(): string {
  const candidates = ['/usr/lib/rabbitmq/bin/rabbitmq-server'];
  try {
    const onPath = execFileSync('sh', ['-c', 'command -v rabbitmq-server'], { encoding: 'utf8' }).trim();
    if (onPath !== '') candidates.push(join(dirname(realpathSync(onPath)), 'rabbitmq-server'));
  } catch {
    // not on the PATH: only the Debian location is tried
  }
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) throw new Error('the TLS tests start a RabbitMQ node of their own: install rabbitmq-server (apt-get install rabbitmq-server)');
  return found;
}

/** Owner of the node's files and process: `rabbitmq` when we are root, else ourselves. */
function nodeUser(): { uid: number; gid: number; runAs: string[] } {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, runAs: [] };
  const uid = Number(execFileSync('id', ['-u', 'rabbitmq'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'rabbitmq'], { encoding: 'utf8' }));
  return { uid, gid, runAs: ['runuser', '-u', 'rabbitmq', '--'] };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

async function waitForAmqps(port: number, certs: Certificates, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const tls = { ca: readFileSync(certs.ca), cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) };
  for (;;) {
    try {
      await (await amqp.connect(`amqps://guest:guest@127.0.0.1:${port}`, tls)).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * A RabbitMQ node of its own in `dir` (which, like `certs.dir`, the rabbitmq user must reach): a TLS listener that requires a client certificate of the
 * CA (verify_peer, fail_if_no_peer_cert), no plain listener, no plugins; user guest (loopback).
 */
export async function startTlsRabbitmq(certs: Certificates, dir: string): Promise<PrivateServer> {
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  if (port === 5672) throw new Error('refusing to use port 5672, the shared RabbitMQ’s');
  mkdirSync(dir, { recursive: true });
  const conf = [
    'listeners.tcp = none',
    `listeners.ssl.default = 127.0.0.1:${port}`,
    `ssl_options.cacertfile = ${certs.ca}`,
    `ssl_options.certfile = ${certs.server.cert}`,
    `ssl_options.keyfile = ${certs.server.key}`,
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = true',
  ];
  writeFileSync(join(dir, 'rabbitmq.conf'), `${conf.join('\n')}\n`);
  writeFileSync(join(dir, 'rabbitmq-env.conf'), ''); // not /etc/rabbitmq's, which names the shared node
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const user = nodeUser();
  for (const path of [certs.dir, dir]) {
    chownTree(path, user.uid, user.gid);
    chmodSync(path, 0o755);
  }
  const nodeName = `tasker-tls-${port}@localhost`;
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: dir,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_LOGS: '-',
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  const command = [...user.runAs, 'env', '-i', ...Object.entries(env).map(([key, value]) => `${key}=${value}`), rabbitmqServerScript()];
  const child = spawn(command[0]!, command.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.on('error', (error) => (log += `${error.message}\n`));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await killGroup(child);
      // The node started an epmd of its own, on its own port; it daemonized, out of the group.
      // It refuses -kill while it still lists the node, which it drops a moment after the kill.
      for (let tries = 0; tries < 50; tries++) {
        let answer: string;
        try {
          answer = execFileSync('epmd', ['-kill'], { env: { ...process.env, ERL_EPMD_PORT: String(epmdPort) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        } catch (error) {
          answer = String((error as { stdout?: unknown }).stdout ?? '');
          if (/no epmd|cannot connect|Connection refused/i.test(`${answer}${String((error as { stderr?: unknown }).stderr ?? '')}`)) return; // none left
        }
        if (/Killed/.test(answer)) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`the RabbitMQ node's epmd on port ${epmdPort} would not stop`);
    })();
    return stopped;
  };
  try {
    await waitForTls(port, certs.ca, certs.client, `RabbitMQ node ${nodeName}`, 25_000, () => log);
    // The listener opens near the end of the boot: wait for a whole AMQP handshake too.
    await waitForAmqps(port, certs, 5000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, stop };
}

/** Live processes whose command line mentions `text` (a temporary directory): what stop() must leave none of. */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (args.includes(text)) found.push(`${entry}: ${args.slice(0, 200)}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
