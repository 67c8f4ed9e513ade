import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAmqpSession } from '../../shared/broker/amqp-session.js';
import { names } from '../../shared/config/names.js';
import type { TlsFiles } from '../../shared/config/tls-config.js';
import { InputError } from '../../shared/errors.js';
import { createLogger } from '../../shared/observe/logger.js';
import { createRedisClient } from '../../shared/redis/redis-connection.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import { loadWorkerConfig } from '../../worker/config.js';
import { readSummary, runTasker } from '../helpers/cli.js';
import { readyWorker, spawnTasker, spawnWorker, stopAll, testSigningKey, type Proc } from '../helpers/distributed.js';
import { newBucket, s3Client } from '../helpers/s3.js';
import { startPrivateRabbitmq } from '../helpers/private-rabbitmq.js';
import { processesMentioning, type PrivateServer } from '../helpers/private-servers.js';
import { makeCertificates, startTlsRedis, type Certificates, type KeyPair } from '../helpers/tls-servers.js';

/**
 * TLS with your own CA, against real TLS listeners this file starts and stops itself: a RabbitMQ
 * node whose only listener is TLS and requires a client certificate, a Redis with only a
 * tls-port (one without, one with tls-auth-clients), and a TLS front to the tests' S3 service;
 * the CA and certificates are made with openssl. The right CA connects (adapters in process, and
 * the built worker and tasker), a wrong CA or a missing client certificate fails at once with a
 * message naming the variable to fix, and an upper-case REDISS:// really is TLS.
 */

const redisPassword = 'tls-test-redis-pw-51c3';
const logger = createLogger({ level: 'silent', pretty: false, name: 'tls-test' });
const s3 = inject('s3');

let root: string;
let certs: Certificates;
let rabbit: PrivateServer;
/** tls-auth-clients no: the CA alone is enough. */
let redis: PrivateServer;
/** tls-auth-clients yes. */
let mtlsRedis: PrivateServer;
let s3Front: TlsServer;
const procs: Proc[] = [];

const read = (path: string): Buffer => readFileSync(path);
const tlsOf = (ca: string, pair?: KeyPair): TlsFiles => ({ ca: read(ca), ...(pair === undefined ? {} : { cert: read(pair.cert), key: read(pair.key) }) });
const amqpsUrl = (): string => `amqps://guest:guest@127.0.0.1:${rabbit.port}`;
const redissUrl = (server: PrivateServer, scheme = 'rediss'): string => `${scheme}://:${redisPassword}@127.0.0.1:${server.port}`;

/** A TLS terminator in front of the tests' S3 service (plain HTTP), with the test CA's certificate. */
function startS3Front(): Promise<TlsServer> {
  const target = new URL(s3.endpoint);
  const server = createTlsServer({ cert: read(certs.server.cert), key: read(certs.server.key) }, (socket) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tasker-tls-'));
  chmodSync(root, 0o755);
  certs = makeCertificates(mkdtempSync(join(root, 'certs-')));
  [rabbit, redis, mtlsRedis, s3Front] = await Promise.all([
    startPrivateRabbitmq(join(root, 'rabbitmq'), certs),
    startTlsRedis(certs, { password: redisPassword }),
    startTlsRedis(certs, { password: redisPassword, requireClientCert: true }),
    startS3Front(),
  ]);
}, 60_000);

afterAll(async () => {
  await stopAll(procs);
  await Promise.all([rabbit?.stop(), redis?.stop(), mtlsRedis?.stop(), new Promise((resolve) => (s3Front === undefined ? resolve(undefined) : s3Front.close(resolve)))]);
  // Every private server was started with paths under `root`: none may outlive the file.
  expect(processesMentioning(root)).toEqual([]);
  rmSync(root, { recursive: true, force: true });
});

async function connectAmqp(tls: TlsFiles, url = amqpsUrl()): Promise<void> {
  const session = await createAmqpSession({ url, tls, logger, connectionName: 'tls-test', initialRetries: 0, setup: async () => undefined });
  expect(session.isConnected()).toBe(true);
  await session.close();
}

async function connectRedis(url: string, tls: TlsFiles | undefined): Promise<void> {
  const store = await createRunStore(url, names('tlstest'), logger, tls);
  await store.close();
}

/** The InputError a start-up failure must be, and how long it took to fail. */
async function failure(connect: () => Promise<void>): Promise<{ message: string; ms: number }> {
  const started = Date.now();
  const error = await connect().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InputError);
  return { message: (error as InputError).message, ms: Date.now() - started };
}

describe('RabbitMQ with a TLS listener that requires a client certificate', () => {
  it('connects with the CA, a client certificate and its key', async () => {
    await connectAmqp(tlsOf(certs.ca, certs.client));
  });

  it('refuses a wrong CA at once, naming AMQP_TLS_CA_FILE', async () => {
    const { message, ms } = await failure(() => connectAmqp(tlsOf(certs.otherCa, certs.client)));
    expect(message).toMatch(/^RabbitMQ at amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ presented a certificate this client does not trust: self[- ]signed certificate in certificate chain \(AMQP_TLS_CA_FILE must name the CA that signed it/);
    expect(message).not.toContain('guest:guest');
    expect(ms).toBeLessThan(3000);
  });

  it('without a client certificate, or with one of another CA, the server refuses; the message says which variables to set', async () => {
    for (const tls of [tlsOf(certs.ca), tlsOf(certs.ca, certs.stranger)]) {
      const { message } = await failure(() => connectAmqp(tls));
      // The alert, or (TLS 1.3: the server refuses after the client's handshake is over) the reset.
      expect(message).toMatch(/^RabbitMQ at amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ (refused this client's certificate|reset the connection after the TLS handshake).*set AMQP_TLS_CERT_FILE and AMQP_TLS_KEY_FILE/);
    }
  });

  it('accepts an upper-case AMQPS:// scheme as TLS', async () => {
    await connectAmqp(tlsOf(certs.ca, certs.client), amqpsUrl().replace('amqps', 'AMQPS'));
  });
});

describe('Redis with a tls-port', () => {
  it('connects with the CA alone when the server asks for no client certificate', async () => {
    await connectRedis(redissUrl(redis), tlsOf(certs.ca));
  });

  it('refuses a wrong CA at once, naming REDIS_TLS_CA_FILE', async () => {
    const { message, ms } = await failure(() => connectRedis(redissUrl(redis), tlsOf(certs.otherCa)));
    expect(message).toMatch(/^Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+ presented a certificate this client does not trust: self[- ]signed certificate in certificate chain \(REDIS_TLS_CA_FILE must name/);
    expect(message).not.toContain(redisPassword);
    expect(ms).toBeLessThan(3000);
  });

  it('with tls-auth-clients yes: connects with a client certificate, and says what to set without one', async () => {
    await connectRedis(redissUrl(mtlsRedis), tlsOf(certs.ca, certs.client));
    const { message } = await failure(() => connectRedis(redissUrl(mtlsRedis), tlsOf(certs.ca)));
    expect(message).toMatch(/^Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+ (refused this client's certificate: .*certificate required|reset the connection after the TLS handshake).*set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE/);
  });

  it('an upper-case REDISS:// is TLS: the client speaks TLS to a server that has no plain-text port', async () => {
    // ioredis alone takes only a lower-case "rediss://" as TLS: this used to reach the TLS port
    // in plain text (AUTH in clear) and be reset.
    const client = createRedisClient(redissUrl(redis, 'REDISS'), 'tls-test', tlsOf(certs.ca));
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
    // Through the configuration, as the programs do: the scheme is handed on in lower case.
    const config = loadWorkerConfig({}, { TASKER_SIGNING_KEY: testSigningKey, AMQP_URL: amqpsUrl(), REDIS_URL: redissUrl(redis, 'REDISS'), REDIS_TLS_CA_FILE: certs.ca }, '/');
    expect(config.redisUrl.startsWith('rediss://')).toBe(true);
    await connectRedis(config.redisUrl, config.redisTls);
  });
});

describe('the built programs over TLS', () => {
  const tlsEnv = (): Record<string, string> => ({
    AMQP_URL: amqpsUrl().replace('amqps', 'AMQPS'),
    AMQP_TLS_CA_FILE: certs.ca,
    AMQP_TLS_CERT_FILE: certs.client.cert,
    AMQP_TLS_KEY_FILE: certs.client.key,
    REDIS_URL: redissUrl(mtlsRedis, 'REDISS'),
    REDIS_TLS_CA_FILE: certs.ca,
    REDIS_TLS_CERT_FILE: certs.client.cert,
    REDIS_TLS_KEY_FILE: certs.client.key,
    TASKER_NAMESPACE: 'tlstest',
    TASKER_SIGNING_KEY: testSigningKey,
    LOG_LEVEL: 'info',
  });

  it('a worker and a tasker run a jobs file through RabbitMQ and Redis over TLS with client certificates', async () => {
    const work = mkdtempSync(join(root, 'work-'));
    const jobs = join(root, 'jobs.sh');
    writeFileSync(jobs, ['echo one > one.txt', 'echo two > two.txt', 'echo three > three.txt'].join('\n') + '\n');
    const worker = await readyWorker({ ...tlsEnv(), WORKDIR: work });
    procs.push(worker.proc);
    const tasker = await spawnTasker({ ...tlsEnv(), WORKDIR: work }, ['run', '--run-id', 'tls-run', jobs], 30_000);
    expect(tasker.exitCode, tasker.all).toBe(0);
    expect(readSummary(work, 'tls-run')).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(readFileSync(join(work, 'two.txt'), 'utf8')).toBe('two\n');
    // Loopback endpoints: no plain-text warning.
    expect(`${tasker.all}${worker.output()}`).not.toContain('in plain text');
    worker.proc.kill('SIGTERM');
    expect((await worker.proc).exitCode).toBe(0);
  });

  it('a worker given the wrong CA for RabbitMQ exits 2 at start-up, naming AMQP_TLS_CA_FILE', async () => {
    const started = Date.now();
    const proc = spawnWorker({ ...tlsEnv(), AMQP_TLS_CA_FILE: certs.otherCa });
    procs.push(proc);
    const result = await proc;
    expect(result.exitCode, result.all).toBe(2);
    expect(result.all).toMatch(/worker: RabbitMQ at amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ presented a certificate this client does not trust: .*AMQP_TLS_CA_FILE must name the CA/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a tasker uploads to an https:// S3 endpoint signed by the CA of AWS_CA_BUNDLE, and refuses it without', async () => {
    const client = s3Client(s3);
    const bucket = await newBucket(client).finally(() => client.destroy());
    const work = mkdtempSync(join(root, 's3-work-'));
    const jobs = join(root, 's3-jobs.sh');
    writeFileSync(jobs, 'mkdir -p out && echo hi > out/a.txt\n');
    const env = {
      S3_ENDPOINT_URL: `HTTPS://127.0.0.1:${(s3Front.address() as { port: number }).port}`,
      S3_BUCKET: bucket,
      S3_UPLOAD: 'out/*.txt',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
      AMQP_URL: '',
    };
    const ok = await runTasker(['run', '--workdir', work, '--run-id', 's3-tls', jobs], { env: { ...env, AWS_CA_BUNDLE: certs.ca } });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(readFileSync(join(work, '.tasker', 'runs', 's3-tls', 'results.jsonl'), 'utf8')).toContain('"uploaded":["s3-tls/out/a.txt"]');
    const refused = await runTasker(['run', '--workdir', work, jobs], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/S3 at https:\/\/127\.0\.0\.1:\d+ presented a certificate this client does not trust: .*AWS_CA_BUNDLE must name the CA/);
  });
});

describe('start-up configuration, at the entry point', () => {
  it('lists every unreadable TLS file and missing key at once, and exits 2 before connecting', async () => {
    const result = await spawnWorker({
      TASKER_SIGNING_KEY: testSigningKey,
      AMQP_URL: 'amqps://guest:guest@127.0.0.1:1',
      AMQP_TLS_CA_FILE: join(root, 'no-such-ca.crt'),
      REDIS_URL: 'rediss://127.0.0.1:1',
      REDIS_TLS_CERT_FILE: certs.client.cert,
      LOG_LEVEL: 'info',
    });
    expect(result.exitCode, result.all).toBe(2);
    expect(result.all).toContain('2 problems');
    expect(result.all).toContain(`AMQP_TLS_CA_FILE: cannot read ${join(root, 'no-such-ca.crt')} (ENOENT: no such file or directory)`);
    expect(result.all).toContain('REDIS_TLS_CERT_FILE is set but REDIS_TLS_KEY_FILE is not');
  });

  it('warns once per variable of a plain-text connection to another host', async () => {
    const result = await spawnWorker({ TASKER_SIGNING_KEY: testSigningKey, AMQP_URL: 'amqp://guest:guest@tasker-tls-test.invalid:5672', REDIS_URL: 'redis://tasker-tls-test.invalid:6379', LOG_LEVEL: 'info' });
    expect(result.exitCode).toBe(2); // the host does not exist
    const warnings = String(result.all).split('\n').filter((line) => line.includes('in plain text'));
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).toContain('AMQP_URL connects to tasker-tls-test.invalid in plain text');
    expect(warnings.join('\n')).toContain('REDIS_URL connects to tasker-tls-test.invalid in plain text');
    expect(result.all).not.toContain('guest:guest');
  });
});
