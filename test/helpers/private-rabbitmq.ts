import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import amqp from 'amqplib';
import type { Broker } from './broker.js';
import { freePort } from './distributed.js';
import { killGroup, type PrivateServer } from './private-servers.js';
import type { Certificates } from './tls-servers.js';

/**
 * A RabbitMQ node of the tests' own, beside the machine's shared one and never it: its own node
 * name, config file, listener, dist port, epmd, data and log directories, on 127.0.0.1 and free
 * ports, as the `rabbitmq` user when the tests run as root. It is up in a few seconds. The tests
 * that stop, restart or reconfigure a broker (the fault suite, TLS, a user of their own) use one,
 * unless the test setup itself started the broker under test (a container).
 */

export interface PrivateRabbitmq extends PrivateServer {
  amqpUrl: string;
  /** Its own rabbitmqctl, for restartBroker and withConsumerTimeout. */
  broker: Broker;
}

/** The directory of the rabbitmq-server script itself, not Debian's wrapper (which switches user and resets the environment). */
function rabbitmqScripts(): string {
  const candidates = ['/usr/lib/rabbitmq/bin'];
  try {
    const onPath = execFileSync('sh', ['-c', 'command -v rabbitmq-server'], { encoding: 'utf8' }).trim();
    if (onPath !== '') candidates.push(dirname(realpathSync(onPath)));
  } catch {
    // not on the PATH: only the Debian location is tried
  }
  const found = candidates.find((path) => existsSync(join(path, 'rabbitmq-server')));
  if (found === undefined) throw new Error('these tests start a RabbitMQ node of their own: install rabbitmq-server (apt-get install rabbitmq-server)');
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

async function waitForAmqp(url: string, socketOptions: object, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await (await amqp.connect(url, socketOptions)).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the private RabbitMQ node did not accept AMQP at ${url.replace(/\/\/[^@]*@/, '//')} within ${timeoutMs} ms: ${(error as Error).message}\n${log().slice(-3000)}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The listener lines of rabbitmq.conf: plain, or TLS only with a client certificate of the CA required. */
function listenerConfig(port: number, tls: Certificates | undefined): string[] {
  if (tls === undefined) return [`listeners.tcp.default = 127.0.0.1:${port}`];
  return [
    'listeners.tcp = none',
    `listeners.ssl.default = 127.0.0.1:${port}`,
    `ssl_options.cacertfile = ${tls.ca}`,
    `ssl_options.certfile = ${tls.server.cert}`,
    `ssl_options.keyfile = ${tls.server.key}`,
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = true',
  ];
}

/** Stops its epmd, which daemonized out of the group; epmd refuses -kill while it still lists the node. */
async function killEpmd(epmdPort: number): Promise<void> {
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
}

/**
 * Starts the node in `dir` (which, like `tls.dir`, the rabbitmq user must reach; made when
 * missing). No plugins; user guest (loopback). With `tls`, only a TLS listener that requires a
 * client certificate of the CA.
 */
export async function startPrivateRabbitmq(dir: string, tls?: Certificates): Promise<PrivateRabbitmq> {
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  if (port === 5672) throw new Error('refusing to use port 5672, the shared RabbitMQ’s');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rabbitmq.conf'), `${listenerConfig(port, tls).join('\n')}\n`);
  writeFileSync(join(dir, 'rabbitmq-env.conf'), ''); // not /etc/rabbitmq's, which names the shared node
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const user = nodeUser();
  for (const path of tls === undefined ? [dir] : [tls.dir, dir]) {
    chownTree(path, user.uid, user.gid);
    chmodSync(path, 0o755);
  }
  const nodeName = `tasker-test-${port}@localhost`;
  // HOME holds the node's Erlang cookie, which its rabbitmqctl reads from there too.
  const common = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'), ERL_EPMD_PORT: String(epmdPort) };
  const env = {
    ...common,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_LOGS: '-',
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  const asNode = (vars: Record<string, string>, script: string): string[] => [...user.runAs, 'env', '-i', ...Object.entries(vars).map(([key, value]) => `${key}=${value}`), join(rabbitmqScripts(), script)];
  const command = asNode(env, 'rabbitmq-server');
  const child = spawn(command[0]!, command.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.on('error', (error) => (log += `${error.message}\n`));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= killGroup(child).then(() => killEpmd(epmdPort)));
  const amqpUrl = `${tls === undefined ? 'amqp' : 'amqps'}://guest:guest@127.0.0.1:${port}`;
  const socketOptions = tls === undefined ? {} : { ca: readFileSync(tls.ca), cert: readFileSync(tls.client.cert), key: readFileSync(tls.client.key) };
  try {
    await waitForAmqp(amqpUrl, socketOptions, 30_000, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  const broker: Broker = { name: `the tests' own RabbitMQ node ${nodeName}`, rabbitmqctl: [...asNode(common, 'rabbitmqctl'), '-n', nodeName], env: {}, startedByTests: true };
  return { port, amqpUrl, broker, stop };
}

/**
 * A broker a test may stop, restart or reconfigure: the provided one when the test setup started
 * it itself (a container of its own), else a private node in a fresh temporary directory, which
 * stop() ends and removes. Never the machine's shared RabbitMQ.
 */
export async function breakableBroker(provided: { amqpUrl: string; broker: Broker }): Promise<{ amqpUrl: string; broker: Broker; stop(): Promise<void> }> {
  if (provided.broker.startedByTests) return { ...provided, stop: async () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'tasker-rabbitmq-'));
  chmodSync(dir, 0o755);
  const node = await startPrivateRabbitmq(join(dir, 'node')).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    amqpUrl: node.amqpUrl,
    broker: node.broker,
    stop: async () => {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
