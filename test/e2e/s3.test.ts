import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, runTasker, tempDir } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, readyWorker, serviceEnv, spawnTasker, stopAll, type Proc } from '../helpers/distributed.js';
import { listKeys, newBucket, objectSha256, s3Client, s3Env, startFlakyProxy } from '../helpers/s3.js';

/**
 * Outputs to S3, end to end: the built tasker and workers upload to a real S3-compatible HTTP
 * server (s3rver here, MinIO with Docker, or S3_ENDPOINT_URL), and every object is read back and
 * compared with the local file byte for byte.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const s3 = inject('s3');
let client: S3Client;

beforeAll(() => {
  client = s3Client(s3);
});
afterAll(() => client.destroy());

interface Ctx {
  ns: string;
  dir: string;
  jobsDir: string;
  procs: Proc[];
  runIds: string[];
  cleanups: (() => void)[];
}
let ctx: Ctx;

beforeEach(() => {
  const work = tempDir('tasker-s3-work-');
  const jobs = tempDir('tasker-s3-jobs-');
  ctx = { ns: newNamespace(), dir: work.path, jobsDir: jobs.path, procs: [], runIds: [], cleanups: [work.cleanup, jobs.cleanup] };
});

afterEach(async () => {
  await stopAll(ctx.procs);
  await cleanupNamespace(services, ctx.ns, ctx.runIds);
  for (const cleanup of ctx.cleanups) cleanup();
});

function jobsFile(lines: string[]): string {
  const path = join(ctx.jobsDir, 'jobs.sh');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every file under the run's directory, as keys under `prefix`. */
function runRecordKeys(prefix: string, runId: string): string[] {
  const runDir = join(ctx.dir, '.tasker', 'runs', runId);
  return readdirSync(runDir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => `${prefix}/${relative(ctx.dir, join(entry.parentPath, entry.name))}`);
}

async function expectObjectsEqualFiles(bucket: string, prefix: string, keys: string[]): Promise<void> {
  for (const key of keys) {
    const path = join(ctx.dir, key.slice(prefix.length + 1));
    expect(await objectSha256(client, bucket, key), key).toBe(await sha256File(path));
  }
}

const outputJobs = [
  '# phase: setup (tasker)',
  'mkdir -p output/sim output/figures output/other',
  '# phase: simulate',
  'echo \'{"recall": 0.91}\' > output/sim/metrics_a.json',
  'echo \'{"recall": 0.87}\' > output/sim/metrics_b.json',
  'echo not-matched > output/other/notes.txt',
  'head -c 3000 /dev/urandom > output/figures/plot.png',
  // 105 MiB: a multipart upload of 14 parts.
  'head -c 110100480 /dev/urandom > output/sim/metrics_big.json',
  '# phase: aggregate',
  'cat output/sim/metrics_a.json output/sim/metrics_b.json > output/sim/metrics_all.json',
];

describe('S3 uploads', () => {
  it('a distributed run leaves exactly the matching outputs and the run record in the bucket, byte for byte', async () => {
    const bucket = await newBucket(client);
    // Present before the run and matching: not created or changed by any command, so not uploaded.
    mkdirSync(join(ctx.dir, 'output', 'sim'), { recursive: true });
    writeFileSync(join(ctx.dir, 'output', 'sim', 'metrics_old.json'), '{}');
    // A link to outside the workdir that matches a pattern: never uploaded.
    symlinkSync('/etc/hostname', join(ctx.dir, 'output', 'sim', 'metrics_link.json'));
    const env = { ...serviceEnv(services, ctx.ns), ...s3Env(s3) };
    for (let i = 0; i < 2; i++) {
      const worker = await readyWorker(env, ['--workdir', ctx.dir]);
      ctx.procs.push(worker.proc);
    }
    const runId = 's3-dist';
    ctx.runIds.push(runId);
    const tasker = spawnTasker({ ...env, S3_BUCKET: bucket, S3_UPLOAD: 'output/sim/metrics_*.json, output/figures/*.png' }, ['run', '--workdir', ctx.dir, '--run-id', runId, jobsFile(outputJobs)]);
    const done = await tasker;
    expect(done.exitCode, done.all).toBe(0);
    expect(done.all).toContain(`s3://${bucket}/${runId}/.tasker/runs/${runId}/`);

    const outputs = ['output/figures/plot.png', 'output/sim/metrics_a.json', 'output/sim/metrics_all.json', 'output/sim/metrics_b.json', 'output/sim/metrics_big.json'].map((path) => `${runId}/${path}`);
    const record = runRecordKeys(runId, runId);
    expect(record).toEqual(expect.arrayContaining([`${runId}/.tasker/runs/${runId}/plan.json`, `${runId}/.tasker/runs/${runId}/results.jsonl`, `${runId}/.tasker/runs/${runId}/summary.json`, `${runId}/.tasker/runs/${runId}/report.html`]));
    expect(await listKeys(client, bucket)).toEqual([...outputs, ...record].sort());
    await expectObjectsEqualFiles(bucket, runId, [...outputs, ...record]);

    // Each result names what its command uploaded; the workers did the uploading.
    const results = readResults(ctx.dir, runId);
    // (Commands running at the same time may each upload the other's new files too: README.)
    const big = results.find((r) => r.command.includes('metrics_big'));
    expect(big).toMatchObject({ outcome: 'succeeded' });
    expect(big?.uploaded).toContain(`${runId}/output/sim/metrics_big.json`);
    expect(big?.worker).not.toMatch(/^tasker@/);
    expect(results.flatMap((r) => r.uploaded ?? [])).not.toContain(`${runId}/output/other/notes.txt`);
  });

  it('runs locally too, under S3_PREFIX', async () => {
    const bucket = await newBucket(client);
    const result = await runTasker(['run', '--workdir', ctx.dir, '--run-id', 'local-1', jobsFile(['# phase: setup', 'mkdir -p out', '# phase: outputs', 'echo one > out/a.txt', 'echo two > out/b.log'])], {
      env: { ...s3Env(s3), S3_BUCKET: bucket, S3_UPLOAD: 'out/*.txt', S3_PREFIX: '/projects//sim-3/' },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const keys = await listKeys(client, bucket);
    expect(keys).toContain('projects/sim-3/out/a.txt');
    expect(keys).not.toContain('projects/sim-3/out/b.log');
    expect(keys.filter((key) => !key.startsWith('projects/sim-3/.tasker/runs/local-1/'))).toEqual(['projects/sim-3/out/a.txt']);
    await expectObjectsEqualFiles(bucket, 'projects/sim-3', keys);
  });

  it('a bucket that does not exist: one clear error before any command runs, exit 2', async () => {
    const result = await runTasker(['run', '--workdir', ctx.dir, jobsFile(['touch ran.txt'])], {
      env: { ...s3Env(s3), S3_BUCKET: 'no-such-bucket-tasker', S3_UPLOAD: 'out/*' },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('S3 bucket "no-such-bucket-tasker" does not exist');
    expect(result.stderr).toContain('S3_BUCKET');
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(join(ctx.dir, 'ran.txt'))).toBe(false);
    expect(existsSync(join(ctx.dir, '.tasker'))).toBe(false);
  });

  it('wrong credentials: one clear error, exit 2, and the secret is not printed', async () => {
    // An unknown key id: s3rver checks key ids, not SigV4 signatures.
    const secret = 'wrong-secret-7c1e55d0a9';
    const result = await runTasker(['run', '--workdir', ctx.dir, jobsFile(['touch ran.txt'])], {
      env: { ...s3Env(s3), AWS_ACCESS_KEY_ID: 'nobody-we-know', AWS_SECRET_ACCESS_KEY: secret, S3_BUCKET: await newBucket(client), LOG_LEVEL: 'debug' },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/denied|credentials/);
    expect(result.stderr + result.stdout).not.toContain(secret);
    expect(existsSync(join(ctx.dir, 'ran.txt'))).toBe(false);
  });

  it('retries requests a server fails, and the objects still equal the files', async () => {
    const bucket = await newBucket(client);
    const proxy = await startFlakyProxy(s3.endpoint, 3);
    try {
      const lines = ['# phase: setup', 'mkdir -p out', '# phase: outputs', ...Array.from({ length: 12 }, (_, i) => `head -c ${(i + 1) * 1000} /dev/urandom > out/f${i}.bin`)];
      const result = await runTasker(['run', '--workdir', ctx.dir, '--run-id', 'flaky', '--concurrency', '4', jobsFile(lines)], {
        env: { ...s3Env(s3), S3_ENDPOINT_URL: proxy.endpoint, S3_BUCKET: bucket, S3_UPLOAD: 'out/*.bin' },
      });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(proxy.failed()).toBeGreaterThan(3);
      const outputs = (await listKeys(client, bucket)).filter((key) => key.startsWith('flaky/out/'));
      expect(outputs).toHaveLength(12);
      await expectObjectsEqualFiles(bucket, 'flaky', outputs);
    } finally {
      await proxy.close();
    }
  });

  it('an upload that keeps failing fails its command, with the reason in the summary', async () => {
    const bucket = await newBucket(client);
    // Only the command's output fails: the run record still goes up at the end.
    const proxy = await startFlakyProxy(s3.endpoint, 1, { status: 500, path: /\/out\/a\.txt/ });
    try {
      const result = await runTasker(['run', '--workdir', ctx.dir, '--run-id', 'down', jobsFile(['mkdir -p out && echo x > out/a.txt'])], {
        env: { ...s3Env(s3), S3_ENDPOINT_URL: proxy.endpoint, S3_BUCKET: bucket, S3_UPLOAD: 'out/*.txt' },
        timeoutMs: 120_000,
      });
      expect(result.exitCode).toBe(1);
      const [record] = readResults(ctx.dir, 'down');
      expect(record).toMatchObject({ outcome: 'upload-failed', exitCode: 0 });
      expect(record?.reason).toMatch(/could not be uploaded: .*out\/a\.txt/);
      expect(readSummary(ctx.dir, 'down').status).toBe('failed');
      expect(result.stdout).toContain('could not be uploaded');
      expect(await listKeys(client, bucket)).toContain('down/.tasker/runs/down/summary.json');
    } finally {
      await proxy.close();
    }
  });

  it('rejects patterns that leave the workdir, before anything runs', async () => {
    for (const pattern of ['../elsewhere/*', '/etc/*', '.tasker/**']) {
      const result = await runTasker(['run', '--workdir', ctx.dir, jobsFile(['touch ran.txt'])], { env: { ...s3Env(s3), S3_BUCKET: 'any-bucket', S3_UPLOAD: pattern } });
      expect(result.exitCode, pattern).toBe(2);
      expect(result.stderr).toContain(`S3_UPLOAD pattern "${pattern}"`);
    }
    expect(existsSync(join(ctx.dir, 'ran.txt'))).toBe(false);
  });

  it('keeps credentials out of logs, results and the run record', async () => {
    const bucket = await newBucket(client);
    const result = await runTasker(['run', '--workdir', ctx.dir, '--run-id', 'quiet', jobsFile(['mkdir -p out && echo x > out/a.txt'])], {
      env: { ...s3Env(s3), S3_BUCKET: bucket, S3_UPLOAD: 'out/*.txt', LOG_LEVEL: 'trace' },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const runDir = join(ctx.dir, '.tasker', 'runs', 'quiet');
    const files = readdirSync(runDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    const written = files.map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8')).join('\n');
    for (const text of [result.stdout, result.stderr, written]) expect(text).not.toContain(s3.secretAccessKey);
  });
});
