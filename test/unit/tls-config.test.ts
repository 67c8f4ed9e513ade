import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConnectError, isPermanentConnectError } from '../../shared/broker/amqp-session.js';
import { describeTlsFailure } from '../../shared/config/tls-config.js';
import { isLoopbackHost, lowercaseScheme, plainTextWarning } from '../../shared/config/urls.js';
import { createRedisClient } from '../../shared/redis/redis-connection.js';
import { loadOpsConfig, loadRunConfig } from '../../tasker/config.js';
import { loadWorkerConfig } from '../../worker/config.js';
import { makeCertificates, type Certificates } from '../helpers/tls-servers.js';
import { problemsOf } from '../helpers/config-problems.js';

/**
 * TLS settings as loadConfig reads them: the files of AMQP_TLS_*, REDIS_TLS_* and AWS_CA_BUNDLE
 * (real PEM files made with openssl, read through a reader the test counts), every problem at
 * once, schemes in any case, and the warnings for plain-text connections to other hosts.
 */

let dir: string;
let certs: Certificates;
let encryptedKey: string;
let notPem: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tasker-tls-unit-'));
  certs = makeCertificates(dir);
  encryptedKey = join(dir, 'encrypted.key');
  execFileSync('openssl', ['pkcs8', '-topk8', '-in', certs.client.key, '-out', encryptedKey, '-passout', 'pass:secret'], { stdio: 'ignore' });
  notPem = join(dir, 'not-pem.txt');
  writeFileSync(notPem, 'hello\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** readFileSync, counting what it was asked for. */
function countingReader(): { read: (path: string) => Buffer; reads: string[] } {
  const reads: string[] = [];
  return { reads, read: (path) => (reads.push(path), readFileSync(path)) };
}

const worker = (env: Record<string, string>, read = countingReader().read) => loadWorkerConfig({}, { TASKER_SIGNING_KEY: 'k'.repeat(32), AMQP_URL: 'amqps://u:p@rabbit:5671', REDIS_URL: 'rediss://redis:6379', ...env }, '/', read);

describe('TLS files', () => {
  it('are read once each, at load, into what the clients take', () => {
    const reader = countingReader();
    const config = worker(
      {
        AMQP_TLS_CA_FILE: certs.ca,
        AMQP_TLS_CERT_FILE: certs.client.cert,
        AMQP_TLS_KEY_FILE: certs.client.key,
        REDIS_TLS_CA_FILE: certs.ca,
      },
      reader.read,
    );
    expect(config.amqpTls).toEqual({ ca: readFileSync(certs.ca), cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) });
    expect(config.redisTls).toEqual({ ca: readFileSync(certs.ca) });
    expect(reader.reads.sort()).toEqual([certs.ca, certs.ca, certs.client.cert, certs.client.key].sort());
  });

  it('are neither required nor read when unset, nor for a service that is not used', () => {
    expect(worker({})).toMatchObject({ amqpTls: undefined, redisTls: undefined });
    // A local run uses neither RabbitMQ nor Redis: their files are not its business.
    const reader = countingReader();
    const run = loadRunConfig(['jobs.sh'], {}, { AMQP_TLS_CA_FILE: '/nowhere/ca.crt', REDIS_TLS_CA_FILE: '/nowhere/ca.crt' }, '/cwd', reader.read);
    expect(run).toMatchObject({ amqpTls: undefined, redisTls: undefined });
    expect(reader.reads).toEqual([]);
  });

  it('report every problem at once, each naming its variable', () => {
    const problems = problemsOf(() =>
      worker({
        AMQP_TLS_CA_FILE: join(dir, 'missing-ca.crt'),
        AMQP_TLS_CERT_FILE: certs.client.cert,
        AMQP_TLS_KEY_FILE: certs.stranger.key,
        REDIS_TLS_CA_FILE: notPem,
        REDIS_TLS_KEY_FILE: encryptedKey,
        LOG_LEVEL: 'loud',
      }),
    );
    expect(problems).toEqual([
      `AMQP_TLS_CA_FILE: cannot read ${join(dir, 'missing-ca.crt')} (ENOENT: no such file or directory)`,
      'AMQP_TLS_KEY_FILE is not the key of the certificate in AMQP_TLS_CERT_FILE',
      'REDIS_TLS_KEY_FILE is set but REDIS_TLS_CERT_FILE is not: a client certificate needs its private key, and the other way round',
      `REDIS_TLS_CA_FILE: ${notPem} holds no PEM certificate (a line "-----BEGIN CERTIFICATE-----")`,
      `REDIS_TLS_KEY_FILE: ${encryptedKey} is an encrypted key, and no passphrase can be given; give it unencrypted (openssl pkey -in KEY -out PLAIN_KEY)`,
      expect.stringMatching(/^log level must be one of/),
    ]);
  });

  it('name a directory or a key given as a certificate', () => {
    expect(problemsOf(() => worker({ AMQP_TLS_CA_FILE: dir }))).toEqual([`AMQP_TLS_CA_FILE: cannot read ${dir} (EISDIR: illegal operation on a directory, read)`]);
    expect(problemsOf(() => worker({ AMQP_TLS_CERT_FILE: certs.client.key, AMQP_TLS_KEY_FILE: certs.client.key }))).toEqual([
      `AMQP_TLS_CERT_FILE: ${certs.client.key} holds no PEM certificate (a line "-----BEGIN CERTIFICATE-----")`,
    ]);
  });

  it('for a plain-text URL are a mistake: the user meant TLS and would get none', () => {
    const problems = problemsOf(() => worker({ AMQP_URL: 'amqp://u:p@rabbit:5672', AMQP_TLS_CA_FILE: certs.ca, REDIS_URL: 'redis://redis', REDIS_TLS_CERT_FILE: certs.client.cert, REDIS_TLS_KEY_FILE: certs.client.key }));
    expect(problems).toEqual([
      'AMQP_TLS_CA_FILE is set but AMQP_URL does not start with amqps://: TLS files apply to TLS connections only; use amqps://',
      'REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE are set but REDIS_URL does not start with rediss://: TLS files apply to TLS connections only; use rediss://',
    ]);
    // A flag names itself.
    expect(problemsOf(() => loadOpsConfig({ amqpUrl: 'amqp://rabbit' }, { AMQP_TLS_CA_FILE: certs.ca }, countingReader().read))).toEqual([
      expect.stringContaining('AMQP_TLS_CA_FILE is set but --amqp-url does not start with amqps://'),
    ]);
  });

  it('AWS_CA_BUNDLE is read for https:// endpoints and AWS itself, and left alone with http://', () => {
    expect(worker({ S3_ENDPOINT_URL: 'https://minio:9000', AWS_CA_BUNDLE: certs.ca }).s3.caBundle).toEqual(readFileSync(certs.ca));
    expect(worker({ AWS_CA_BUNDLE: certs.ca }).s3.caBundle).toEqual(readFileSync(certs.ca));
    const reader = countingReader();
    expect(worker({ S3_ENDPOINT_URL: 'http://127.0.0.1:9000', AWS_CA_BUNDLE: '/nowhere' }, reader.read).s3.caBundle).toBeUndefined();
    expect(reader.reads).toEqual([]);
    expect(problemsOf(() => worker({ AWS_CA_BUNDLE: join(dir, 'nope.pem') }))).toEqual([`AWS_CA_BUNDLE: cannot read ${join(dir, 'nope.pem')} (ENOENT: no such file or directory)`]);
  });
});

describe('URL schemes, in any case', () => {
  it('are handed on in lower case, so that every client sees what the check saw', () => {
    const config = worker({ AMQP_URL: 'AMQPS://u:p@rabbit:5671', REDIS_URL: 'REDISS://:pw@redis:6379', REDIS_TLS_CA_FILE: certs.ca, S3_ENDPOINT_URL: 'HTTPS://minio:9000' });
    expect(config.amqpUrl).toBe('amqps://u:p@rabbit:5671');
    expect(config.redisUrl).toBe('rediss://:pw@redis:6379');
    expect(config.redisTls?.ca).toBeDefined();
    expect(config.s3.endpoint).toBe('https://minio:9000');
    expect(lowercaseScheme('Redis://:PW@Host:6379/2')).toBe('redis://:PW@Host:6379/2');
  });

  it('an upper-case REDISS:// makes a TLS client: ioredis alone would connect in plain text and send AUTH in clear', () => {
    for (const url of ['REDISS://:pw@127.0.0.1:1', 'rediss://:pw@127.0.0.1:1', 'Rediss://127.0.0.1:1']) {
      const client = createRedisClient(url, 'test', { ca: readFileSync(certs.ca) });
      expect(client.options.tls, url).toMatchObject({ ca: readFileSync(certs.ca) });
      client.disconnect();
    }
    const plain = createRedisClient('redis://127.0.0.1:1', 'test', { ca: readFileSync(certs.ca) });
    expect(plain.options.tls).toBeUndefined();
    plain.disconnect();
  });
});

describe('plain-text connections to other hosts', () => {
  it('are warned of once per variable; loopback and TLS stay silent', () => {
    const config = loadWorkerConfig({}, { TASKER_SIGNING_KEY: 'k'.repeat(32), AMQP_URL: 'amqp://u:secret@rabbitmq:5672', REDIS_URL: 'redis://:secret@10.0.0.7:6379', S3_ENDPOINT_URL: 'http://minio:9000' }, '/');
    expect(config.warnings).toEqual([
      { variable: 'AMQP_URL', host: 'rabbitmq', message: 'AMQP_URL connects to rabbitmq in plain text: its password and data cross the network unencrypted; use amqps://' },
      { variable: 'REDIS_URL', host: '10.0.0.7', message: 'REDIS_URL connects to 10.0.0.7 in plain text: its password and data cross the network unencrypted; use rediss://' },
      { variable: 'S3_ENDPOINT_URL', host: 'minio', message: 'S3_ENDPOINT_URL connects to minio in plain text: its password and data cross the network unencrypted; use https://' },
    ]);
    expect(JSON.stringify(config.warnings)).not.toContain('secret');
    expect(loadWorkerConfig({}, { TASKER_SIGNING_KEY: 'k'.repeat(32), AMQP_URL: 'amqp://localhost', REDIS_URL: 'redis://127.0.0.1:6379', S3_ENDPOINT_URL: 'http://[::1]:9000' }, '/').warnings).toEqual([]);
    expect(loadWorkerConfig({}, { TASKER_SIGNING_KEY: 'k'.repeat(32), AMQP_URL: 'amqps://rabbitmq', REDIS_URL: 'rediss://redis', S3_ENDPOINT_URL: 'https://minio' }, '/').warnings).toEqual([]);
  });

  it('name the flag when a flag gave the URL, and say nothing of a service a local run does not use', () => {
    expect(loadOpsConfig({ amqpUrl: 'amqp://rabbit', redisUrl: 'redis://redis' }, {}).warnings.map((warning) => warning.variable)).toEqual(['--amqp-url', '--redis-url']);
    expect(loadRunConfig(['jobs.sh'], {}, { REDIS_URL: 'redis://redis' }, '/cwd').warnings).toEqual([]);
  });

  it.each([
    ['localhost', true],
    ['rabbit.localhost', true],
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['[::1]', true],
    ['[::ffff:7f00:1]', true],
    ['128.0.0.1', false],
    ['localhost.example.com', false],
    ['[::2]', false],
    ['rabbitmq', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('leaves URLs the checks reject to the checks', () => {
    expect(plainTextWarning('AMQP_URL', 'not a url')).toBeUndefined();
    expect(plainTextWarning('AMQP_URL', 'ftp://rabbit')).toBeUndefined();
  });
});

describe('failed handshakes, in words', () => {
  const where = 'amqps://u:***@rabbit:5671';
  it.each([
    ['self-signed certificate in certificate chain', /presented a certificate this client does not trust: self-signed certificate in certificate chain \(AMQP_TLS_CA_FILE must name the CA/],
    ['unable to verify the first certificate', /does not trust: unable to verify the first certificate/],
    ["Hostname/IP does not match certificate's altnames: Host: rabbit. is not in the cert's altnames: DNS:other", /does not trust: .*the host in AMQP_URL must be one the certificate names/],
    [
      '807CE106B07F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n',
      /^RabbitMQ at amqps:\/\/u:\*\*\*@rabbit:5671 refused this client's certificate: tlsv13 alert certificate required \(set AMQP_TLS_CERT_FILE and AMQP_TLS_KEY_FILE/,
    ],
    ['C0:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:ssl/record/rec_layer_s3.c:1605:SSL alert number 48', /refused this client's certificate: tlsv1 alert unknown ca/],
    ['C0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:ssl/record/ssl3_record.c:354:', /^TLS with RabbitMQ at .* failed: wrong version number \(is that RabbitMQ's TLS port\? amqps:\/\/ needs one\)/],
  ])('%s', (message, expected) => {
    expect(describeTlsFailure('AMQP', where, message)).toMatch(expected);
    expect(describeConnectError('amqps://u:secret@rabbit:5671', new Error(message))).toMatch(expected);
    // Another attempt cannot fix a certificate: the start fails on the first.
    expect(isPermanentConnectError(new Error(message))).toBe(true);
  });

  it('a reset right after the handshake, with no client certificate given, suggests one', () => {
    expect(describeTlsFailure('REDIS', 'rediss://:***@redis:6379', 'write ECONNRESET', { secure: true, clientCert: false })).toBe(
      "Redis at rediss://:***@redis:6379 reset the connection after the TLS handshake (write ECONNRESET): it may require a client certificate; set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE to one signed by a CA the server trusts",
    );
    expect(describeTlsFailure('REDIS', 'redis://redis:6379', 'write ECONNRESET', { secure: false, clientCert: false })).toBeUndefined();
    expect(describeTlsFailure('REDIS', 'rediss://redis:6379', 'write ECONNRESET', { secure: true, clientCert: true })).toBeUndefined();
    expect(describeTlsFailure('AMQP', where, 'connect ECONNREFUSED 10.0.0.1:5671')).toBeUndefined();
  });
});
