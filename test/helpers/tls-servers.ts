import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { freePort } from './distributed.js';
import { exited, killGroup, type PrivateServer } from './private-servers.js';

/**
 * TLS servers of the tests' own, never the machine's shared RabbitMQ (5672) or Redis (6379): a
 * CA and certificates made with `openssl` in a temporary directory, and private `redis-server`s
 * with only a `tls-port` (the TLS RabbitMQ node is startPrivateRabbitmq's, given certificates).
 * Everything listens on 127.0.0.1, on free ports, and stop() leaves no process behind.
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
