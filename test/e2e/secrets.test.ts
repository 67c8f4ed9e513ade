import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rabbitmqctl as brokerCtl } from '../helpers/broker.js';
import { breakableBroker } from '../helpers/private-rabbitmq.js';
import { taskerBin, tempDir, workerBin } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, readyWorker, spawnTasker, stopAll, type Proc } from '../helpers/distributed.js';
import { newBucket, s3Client } from '../helpers/s3.js';

/**
 * Secrets stay secret: the RabbitMQ password (of a user made for this test), a password in
 * REDIS_URL (Redis here needs none; it is sent and ignored), the S3 secret key and the signing
 * key never appear in what tasker and workers print (at LOG_LEVEL=trace), in anything a run
 * leaves in the workdir, in Redis, in `tasker status`, nor in the messages of starts that fail.
 *
 * What commands see is a decision, not an accident: commands never get AMQP_URL, REDIS_URL or
 * TASKER_SIGNING_KEY; they do get the S3 keys (a command may need them for its own data), so a
 * command that prints its environment prints AWS_SECRET_ACCESS_KEY into its own log. The test
 * checks both sides of that line.
 */

/** The broker: a node of the test's own (it adds a user), unless the setup started the broker itself. */
let own: Awaited<ReturnType<typeof breakableBroker>>;
const services = { amqpUrl: '', redisUrl: inject('redisUrl') };
const s3 = inject('s3');
const tag = randomBytes(4).toString('hex');
const amqpUser = `tasker-secrets-${tag}`;
const amqpPassword = `amqpPw${tag}${randomBytes(6).toString('hex')}`;
const redisPassword = `redisPw${tag}${randomBytes(6).toString('hex')}`;
const signingKey = `signingKey${tag}${randomBytes(16).toString('hex')}`;
const wrongPassword = `wrongPw${tag}${randomBytes(6).toString('hex')}`;
const wrongS3Secret = `wrongS3${tag}${randomBytes(6).toString('hex')}`;
const secrets: Record<string, string> = { amqpPassword, redisPassword, signingKey, s3Secret: s3.secretAccessKey, wrongPassword, wrongS3Secret };

let broker: URL;
let amqpUrl: string;
const redis = new URL(services.redisUrl);
const redisUrl = `redis://:${redisPassword}@${redis.host}${redis.pathname}`;

/** Through the test's broker's own rabbitmqctl. */
function rabbitmqctl(args: string[]): void {
  void brokerCtl(own.broker, args);
}

/** Each secret found in `text`, by name. */
function leaks(text: string): string[] {
  return Object.entries(secrets)
    .filter(([, secret]) => text.includes(secret))
    .map(([name]) => name);
}

function expectNoSecrets(where: string, text: string, except: string[] = []): void {
  expect(
    leaks(text).filter((name) => !except.includes(name)),
    `${where} holds a secret`,
  ).toEqual([]);
}

/** Every file under `dir`, path and text. */
function filesUnder(dir: string): { path: string; text: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .map((path) => ({ path, text: readFileSync(path, 'latin1') }));
}

async function redisDump(ns: string): Promise<string> {
  const client = new Redis(services.redisUrl);
  try {
    const parts: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await client.type(key);
        if (type === 'hash') parts.push(key, JSON.stringify(await client.hgetall(key)));
        else if (type === 'string') parts.push(key, (await client.get(key)) ?? '');
        else if (type === 'zset') parts.push(key, JSON.stringify(await client.zrange(key, '0', '-1')));
        else parts.push(key, type);
      }
    } while (cursor !== '0');
    return parts.join('\n');
  } finally {
    client.disconnect();
  }
}

let client: S3Client;
beforeAll(async () => {
  own = await breakableBroker({ amqpUrl: inject('amqpUrl'), broker: inject('broker') });
  services.amqpUrl = own.amqpUrl;
  broker = new URL(own.amqpUrl);
  amqpUrl = `amqp://${amqpUser}:${amqpPassword}@${broker.host}${broker.pathname === '' ? '' : broker.pathname}`;
  client = s3Client(s3);
  rabbitmqctl(['add_user', amqpUser, amqpPassword]);
  rabbitmqctl(['set_permissions', '-p', broker.pathname.length > 1 ? decodeURIComponent(broker.pathname.slice(1)) : '/', amqpUser, '.*', '.*', '.*']);
}, 60_000);

afterAll(async () => {
  client?.destroy();
  if (own === undefined) return;
  rabbitmqctl(['delete_user', amqpUser]);
  await own.stop();
});

describe('secrets never show', () => {
  it('a distributed run with S3 uploads and signing, at trace level: output, run records, Redis and status', async () => {
    const temp = tempDir('tasker-secrets-');
    const ns = newNamespace();
    const procs: Proc[] = [];
    const runId = `secrets-${tag}`;
    try {
      const dir = temp.path;
      const bucket = await newBucket(client);
      const env: Record<string, string> = {
        AMQP_URL: amqpUrl,
        REDIS_URL: redisUrl,
        TASKER_NAMESPACE: ns,
        TASKER_SIGNING_KEY: signingKey,
        S3_ENDPOINT_URL: s3.endpoint,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
        TASKER_LEASE_TTL: '2s',
        LOG_LEVEL: 'trace',
      };
      const workers = await Promise.all([readyWorker(env, ['--workdir', dir]), readyWorker({ ...env, LOG_LEVEL: 'debug' }, ['--workdir', dir, '--concurrency', '2'])]);
      procs.push(...workers.map((w) => w.proc));

      const jobs = join(temp.path, 'jobs.sh');
      writeFileSync(
        jobs,
        [
          '# phase: setup (tasker)',
          'mkdir -p out envdump',
          'env > envdump/tasker-phase.txt',
          '# phase: sims',
          'echo one > out/a.txt',
          'env > "envdump/worker-$TASKER_COMMAND_ID.txt"',
          'echo "failing on purpose" >&2; exit 3',
          '# phase: report (tasker)',
          'ls out',
          '',
        ].join('\n'),
      );
      const tasker = spawnTasker({ ...env, S3_BUCKET: bucket, S3_UPLOAD: 'out/*.txt' }, ['run', '--run-id', runId, '--workdir', dir, '--keep-going', '--retries', '1', '--retry-delay', '10ms', '--progress-interval', '200ms', jobs]);
      procs.push(tasker);
      const result = await tasker;
      expect(result.exitCode, result.all).toBe(1);
      expect(result.stdout).toContain('S3: run record uploaded');

      const status = await execa(process.execPath, [taskerBin, 'status', runId], { env, reject: false, all: true });
      expect(status.exitCode, status.all).toBe(0);
      expect(String(status.stdout)).toContain(runId);
      const statusJson = await execa(process.execPath, [taskerBin, 'status', '--json'], { env, reject: false, all: true });
      expect(statusJson.exitCode, statusJson.all).toBe(0);

      await stopAll(procs);
      const outputs: [string, string][] = [
        ['tasker output', result.all ?? ''],
        ...workers.map((w, i): [string, string] => [`worker ${i + 1} output`, w.output()]),
        ['tasker status', String(status.all)],
        ['tasker status --json', String(statusJson.all)],
        ['Redis', await redisDump(ns)],
      ];
      // Debug lines were written (not an empty haystack): LOG_LEVEL reached both programs.
      expect(workers[0]!.output()).toMatch(/"level":20/);
      expect(result.all).toMatch(/"level":20/);
      for (const [where, text] of outputs) expectNoSecrets(where, text);

      // Everything the run left in the workdir: run.json, plan.json, results.jsonl, summary.json,
      // every attempt's log, the jobs copy.
      const records = filesUnder(join(dir, '.tasker'));
      expect(records.map((f) => f.path.slice(dir.length + 1))).toEqual(
        expect.arrayContaining([`.tasker/runs/${runId}/run.json`, `.tasker/runs/${runId}/plan.json`, `.tasker/runs/${runId}/results.jsonl`, `.tasker/runs/${runId}/summary.json`]),
      );
      expect(records.filter((f) => f.path.endsWith('.log')).length).toBeGreaterThanOrEqual(6);
      for (const file of records) expectNoSecrets(file.path, file.text);

      // What commands see: never the broker's or Redis's credentials, nor the signing key; the S3
      // keys, yes (commands may need them for their own data).
      const dumps = filesUnder(join(dir, 'envdump'));
      expect(dumps.length).toBeGreaterThanOrEqual(2);
      for (const dump of dumps) {
        expectNoSecrets(dump.path, dump.text, ['s3Secret']);
        expect(dump.text).not.toMatch(/^(AMQP_URL|REDIS_URL|TASKER_SIGNING_KEY)=/m);
        expect(dump.text).toContain(`AWS_SECRET_ACCESS_KEY=${s3.secretAccessKey}`);
      }
    } finally {
      await stopAll(procs);
      await cleanupNamespace(services, ns, [runId]);
      temp.cleanup();
    }
  });

  describe('starts that fail do not repeat the secret', () => {
    const unreachableAmqp = `amqp://${amqpUser}:${amqpPassword}@127.0.0.1:1`;
    /** The test's broker is known once beforeAll ran: after the cases are listed. */
    const wrongAmqp = (): string => `amqp://${amqpUser}:${wrongPassword}@${broker.host}${broker.pathname}`;
    const cases: [string, 'tasker' | 'worker', Record<string, string> | (() => Record<string, string>), RegExp][] = [
      ['tasker, wrong RabbitMQ password', 'tasker', () => ({ AMQP_URL: wrongAmqp() }), /refused the user name or password/],
      ['worker, wrong RabbitMQ password', 'worker', () => ({ AMQP_URL: wrongAmqp() }), /refused the user name or password/],
      ['tasker, unreachable RabbitMQ', 'tasker', { AMQP_URL: unreachableAmqp }, /cannot reach RabbitMQ at amqp:\/\/tasker-secrets-[0-9a-f]+:\*\*\*@127\.0\.0\.1:1/],
      ['tasker, unreachable Redis', 'tasker', { REDIS_URL: `redis://:${redisPassword}@127.0.0.1:1` }, /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/],
      ['worker, unreachable Redis', 'worker', { REDIS_URL: `redis://:${redisPassword}@127.0.0.1:1` }, /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/],
      ['tasker, AMQP_URL that is not a URL', 'tasker', { AMQP_URL: `${amqpUser}:${amqpPassword}@rabbitmq host` }, /AMQP_URL/],
      ['worker, AMQP_URL without its "//"', 'worker', { AMQP_URL: `amqp:${amqpUser}:${amqpPassword}@rabbitmq` }, /AMQP_URL/],
      ['tasker, REDIS_URL that is not a URL', 'tasker', { REDIS_URL: `:${redisPassword}@redis host:6379` }, /REDIS_URL/],
      ['tasker, several problems, one of them a URL', 'tasker', { AMQP_URL: `amqp//${amqpUser}:${amqpPassword}@rabbitmq`, REDIS_URL: `redis//:${redisPassword}@redis`, TASKER_MAX_IN_FLIGHT: 'x' }, /problems:/],
      ['tasker, wrong S3 secret', 'tasker', { AMQP_URL: '', S3_BUCKET: 'any-bucket', S3_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: wrongS3Secret, AWS_REGION: s3.region }, /S3 bucket "any-bucket"/],
      ['tasker, a signing key that is too short', 'tasker', { TASKER_SIGNING_KEY: `sk${tag}` }, /TASKER_SIGNING_KEY is too short/],
    ];

    it.concurrent.for(cases)('%s', async ([, program, extra, message], { expect }) => {
      const temp = tempDir('tasker-secrets-fail-');
      const ns = newNamespace();
      try {
        const jobs = join(temp.path, 'jobs.sh');
        writeFileSync(jobs, `touch ${temp.path}/ran\n`);
        // With the signing key (required with AMQP_URL): each start fails for its own reason, and the key never shows either.
        const env = { AMQP_URL: amqpUrl, REDIS_URL: redisUrl, TASKER_NAMESPACE: ns, LOG_LEVEL: 'trace', TASKER_SIGNING_KEY: signingKey, ...(typeof extra === 'function' ? extra() : extra) };
        const args = program === 'tasker' ? [taskerBin, 'run', '--workdir', join(temp.path, 'work'), jobs] : [workerBin, '--workdir', temp.path];
        const result = await execa(process.execPath, args, { env, reject: false, all: true, timeout: 30_000, stdin: 'ignore' });
        expect(result.exitCode, result.all).toBe(2);
        expect(String(result.all)).toMatch(message);
        expect(leaks(String(result.all)), String(result.all)).toEqual([]);
        // Not even the short key it refused.
        expect(String(result.all)).not.toContain(`sk${tag}`);
        expect(existsSync(join(temp.path, 'ran'))).toBe(false);
      } finally {
        await cleanupNamespace(services, ns);
        temp.cleanup();
      }
    });
  });
});
