import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { writeFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { readResults, readSummary } from '../helpers/cli.js';
import { maxMessageBytes } from '../../shared/broker/messages.js';
import { names } from '../../shared/config/names.js';
import { readyWorker, spawnTasker, useTestNamespace, withChannel, type Proc } from '../helpers/distributed.js';

/**
 * Bundled dispatch end to end: the built tasker and workers, the real RabbitMQ and Redis. Short
 * commands travel several per message; every command still has its own result, log and exit code;
 * Redis keeps one bit per finished command, not its record.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-bundles-');

async function startWorkers(count: number, concurrency: number): Promise<void> {
  const started = await Promise.all(Array.from({ length: count }, () => readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', String(concurrency)])));
  ctx.procs.push(...started.map((w) => w.proc));
}

function run(runId: string, jobs: string, args: string[] = []): Proc {
  ctx.runIds.push(runId);
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, ...args, jobs]);
  ctx.procs.push(proc);
  return proc;
}

/** attempts and messages from the tasker's "published N attempts in M messages" line. */
function published(log: string): { attempts: number; messages: number } {
  const match = /published (\d+) attempts in (\d+) messages/.exec(log);
  expect(match, log.slice(-2000)).not.toBeNull();
  return { attempts: Number(match![1]), messages: Number(match![2]) };
}

describe('bundles', () => {
  it('short commands go several per message; each keeps its result, exit code and log; Redis keeps a bit per command', async () => {
    await startWorkers(2, 2);
    const lines = ['# phase: sims'];
    for (let i = 1; i <= 400; i++) lines.push(i % 100 === 0 ? `echo out $TASKER_COMMAND_ID; exit 3` : `echo out $TASKER_COMMAND_ID`);
    lines.push('# phase: after', 'echo done');
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, `${lines.join('\n')}\n`);
    const result = await run('b1', jobs, ['--keep-going']);
    expect(result.exitCode, result.all?.slice(-2000)).toBe(1);
    const sent = published(result.all ?? '');
    expect(sent.attempts).toBe(401);
    expect(sent.messages, 'several commands per message').toBeLessThan(sent.attempts / 4);

    const results = readResults(ctx.dir, 'b1');
    expect(results).toHaveLength(401);
    expect(new Set(results.map((r) => r.id)).size).toBe(401);
    expect(results.filter((r) => r.outcome === 'failed').map((r) => r.exitCode)).toEqual([3, 3, 3, 3]);
    const logs = readdirSync(join(ctx.dir, '.tasker/runs/b1/logs'), { recursive: true }).filter((name) => String(name).endsWith('.log'));
    expect(logs).toHaveLength(401);
    expect(readSummary(ctx.dir, 'b1').totals).toMatchObject({ commands: 401, succeeded: 397, failed: 4 });

    // Redis: no records left (results.jsonl has them), nothing in flight, one bit per command.
    const redis = new Redis(services.redisUrl);
    try {
      const key = (part: string) => `${ctx.ns}:run:b1:${part}`;
      expect(await redis.hlen(key('results'))).toBe(0);
      expect(await redis.hlen(key('published'))).toBe(0);
      expect(await redis.hlen(key('starts'))).toBe(0);
      expect(await redis.bitcount(key('ok:f1'))).toBe(397);
      expect(await redis.bitcount(key('failed:1:f1'))).toBe(4);
      const keys = await redis.keys(`${ctx.ns}:run:b1:*`);
      let bytes = 0;
      for (const one of keys) bytes += (await redis.memory('USAGE', one)) ?? 0;
      expect(bytes / 401, `the run's keys take ${bytes} bytes`).toBeLessThan(64);
    } finally {
      redis.disconnect();
    }
  });

  it('--bundle-size 1 sends one command per message; a fixed size bundles from the start', async () => {
    await startWorkers(1, 1);
    const jobs = join(ctx.dir, 'ten.sh');
    writeFileSync(jobs, `${Array.from({ length: 10 }, (_, i) => `echo ${i}`).join('\n')}\n`);
    const one = await run('single', jobs, ['--bundle-size', '1']);
    expect(one.exitCode, one.all?.slice(-2000)).toBe(0);
    expect(published(one.all ?? '')).toEqual({ attempts: 10, messages: 10 });
    const four = await run('four', jobs, ['--bundle-size', '4']);
    expect(four.exitCode, four.all?.slice(-2000)).toBe(0);
    expect(published(four.all ?? '')).toEqual({ attempts: 10, messages: 3 });
    expect(readResults(ctx.dir, 'four').filter((r) => r.outcome === 'succeeded')).toHaveLength(10);
  });

  it('bundles are cut by bytes: short commands of 900 KiB each (in their message) go in messages of at most 4 MiB', async () => {
    await startWorkers(1, 1);
    // A copy of every command message the tasker publishes, in a queue of the test's own.
    const spy = `${ctx.ns}.spy`;
    await withChannel(services.amqpUrl, async (channel) => {
      await channel.assertQueue(spy, { durable: false });
      await channel.bindQueue(spy, names(ctx.ns).exchange, 'run.#');
    });
    try {
      const jobs = join(ctx.dir, 'large.sh');
      // 150 KiB of control characters each: quick for bash to read, 900 KiB as JSON in a message.
      writeFileSync(jobs, `${Array.from({ length: 40 }, (_, i) => `: ${i} '${'\u0001'.repeat(150 * 1024)}'`).join('\n')}\n`);
      // Adaptive: the commands are short, so once the first results are in, the ones held meanwhile
      // go in bundles; by count alone (up to 100, a share of what is left) they would pass 4 MiB.
      const result = await run('large', jobs);
      expect(result.exitCode, result.all?.slice(-2000)).toBe(0);
      expect(readResults(ctx.dir, 'large').filter((r) => r.outcome === 'succeeded')).toHaveLength(40);
      const messages = await withChannel(services.amqpUrl, async (channel) => {
        const sizes: { bytes: number; attempts: number }[] = [];
        for (let message = await channel.get(spy, { noAck: true }); message !== false; message = await channel.get(spy, { noAck: true })) {
          const body = JSON.parse(message.content.toString()) as { commands?: unknown[] };
          sizes.push({ bytes: message.content.length, attempts: body.commands?.length ?? 1 });
        }
        return sizes;
      });
      expect(messages.reduce((sum, one) => sum + one.attempts, 0)).toBe(40);
      expect(Math.max(...messages.map((one) => one.attempts)), 'some commands were bundled').toBeGreaterThan(1);
      expect(Math.max(...messages.map((one) => one.bytes))).toBeLessThanOrEqual(maxMessageBytes);
    } finally {
      await withChannel(services.amqpUrl, (channel) => channel.deleteQueue(spy));
    }
  });

  it('a bad --bundle-size is an input error: exit 2, nothing runs', async () => {
    const jobs = join(ctx.dir, 'x.sh');
    writeFileSync(jobs, 'touch ran\n');
    for (const size of ['0', 'many', '5000']) {
      const result = await run(`bad-${size}`, jobs, ['--bundle-size', size]);
      expect(result.exitCode).toBe(2);
      expect(result.all).toContain('--bundle-size');
    }
  });

  it('a local run says once that --bundle-size means nothing there, and runs every command', async () => {
    const jobs = join(ctx.dir, 'local.sh');
    writeFileSync(jobs, 'true\ntrue\ntrue\n');
    const result = await spawnTasker({ ...ctx.env, AMQP_URL: '' }, ['run', '-j', '2', '--bundle-size', '5', '--run-id', 'local-bundles', '--workdir', join(ctx.dir, 'local'), jobs]);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all.match(/--bundle-size \(TASKER_BUNDLE_SIZE\) is ignored/g)).toHaveLength(1);
    expect(readResults(join(ctx.dir, 'local'), 'local-bundles').filter((record) => record.outcome === 'succeeded')).toHaveLength(3);
  });
});
