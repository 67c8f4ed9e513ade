import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { names } from '../../shared/config/names.js';
import { readResults } from '../helpers/cli.js';
import { publishWork, queueCounts, readyWorker, spawnTasker, useTestNamespace, waitFor, watchOutput, type Proc } from '../helpers/distributed.js';

/**
 * No replay: a genuine signed command, captured from the work queue as the tasker published it,
 * runs nothing when published again after its run was purged or expired, or once its run is
 * finished (dead-lettered, the worker saying why), and counts for nothing when re-published onto
 * the run's result queue. Against the real RabbitMQ and Redis, with the built programs.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-replay-');

interface Captured {
  content: Buffer;
  headers: Record<string, unknown>;
  exchange: string;
  routingKey: string;
}

/** Takes a copy of the first message the tasker published to the work queue, and leaves it there. */
async function captureWork(): Promise<Captured> {
  await waitFor('a command in the work queue', async () => ((await queueCounts(services.amqpUrl, names(ctx.ns).workQueue))?.messageCount ?? 0) > 0);
  const connection = await amqp.connect(services.amqpUrl);
  try {
    const channel = await connection.createChannel();
    const message = await channel.get(names(ctx.ns).workQueue, { noAck: false });
    if (message === false) throw new Error('the work queue was empty');
    channel.nack(message, false, true);
    const { content, properties, fields } = message;
    return { content, headers: properties.headers as Record<string, unknown>, exchange: fields.exchange, routingKey: fields.routingKey };
  } finally {
    await connection.close();
  }
}

/** Publishes the captured message again: to `where` (default: where the tasker published it). */
async function replay(captured: Captured, where: { exchange: string; routingKey: string } = captured): Promise<void> {
  const connection = await amqp.connect(services.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(where.exchange, where.routingKey, captured.content, { persistent: true, headers: captured.headers });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

async function worker(): Promise<{ proc: Proc; output: () => string }> {
  const started = await readyWorker(ctx.env, ['--workdir', ctx.dir]);
  ctx.procs.push(started.proc);
  return started;
}

function tasker(runId: string, lines: string[]): Proc {
  ctx.runIds.push(runId);
  const jobs = join(ctx.dir, `${runId}.sh`);
  writeFileSync(jobs, `${lines.join('\n')}\n`);
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, jobs]);
  ctx.procs.push(proc);
  return proc;
}

const deadLetters = async (): Promise<number> => (await queueCounts(services.amqpUrl, names(ctx.ns).deadQueue))?.messageCount ?? 0;
const runs = (): number => (existsSync(join(ctx.dir, 'count.txt')) ? readFileSync(join(ctx.dir, 'count.txt'), 'utf8').split('\n').filter(Boolean).length : 0);

describe('replayed commands', () => {
  it('after tasker purge, and once the run expired: not run, dead-lettered, the worker says why', async () => {
    const run = tasker('victim', ['echo ran >> count.txt']);
    const captured = await captureWork();
    const { output } = await worker();
    expect((await run).exitCode).toBe(0);
    expect(runs()).toBe(1);

    const purged = await spawnTasker(ctx.env, ['purge', 'victim']);
    expect(purged.exitCode, purged.all).toBe(0);
    await replay(captured);
    await waitFor('the replay dead-lettered', async () => (await deadLetters()) === 1);
    expect(output()).toMatch(/"commandId":"f1-L1"[^\n]*run cancelled \(tasker cancel, or purged\): a replayed or leftover message, dead-lettered, not run/);

    // Seven days later the purged mark is gone too: Redis knows nothing of the run.
    const redis = new Redis(services.redisUrl);
    await redis.del(names(ctx.ns).cancelledKey('victim'));
    redis.disconnect();
    await replay(captured);
    await waitFor('the second replay dead-lettered', async () => (await deadLetters()) === 2);
    expect(output()).toMatch(/run is unknown to Redis: a replayed or leftover message, dead-lettered, not run/);
    expect(runs()).toBe(1);
  });

  it('of a finished run: a command with a result is a duplicate (not run), one without is dead-lettered (not run)', async () => {
    const run = tasker('over', ['echo ran >> count.txt']);
    const captured = await captureWork();
    const { output } = await worker();
    expect((await run).exitCode).toBe(0);

    await replay(captured);
    await waitFor('the copy handled', () => /"commandId":"f1-L1"[^\n]*duplicate delivery of a finished command/.test(output()));
    // A genuine message of the run that never got a result (signed with the key, as the tasker does).
    const body = JSON.parse(captured.content.toString()) as Record<string, unknown>;
    await publishWork(services.amqpUrl, ctx.ns, captured.routingKey, Buffer.from(JSON.stringify({ ...body, id: 'f1-L9', command: 'echo ran >> count.txt' })));
    await waitFor('the leftover dead-lettered', async () => (await deadLetters()) === 1);
    expect(output()).toMatch(/"commandId":"f1-L9"[^\n]*run is finished: a replayed or leftover message, dead-lettered, not run/);
    expect(runs()).toBe(1);
  });

  it('re-published onto the run’s result queue: not taken for a dead letter, the run goes on', async () => {
    const run = tasker('results', ['echo ran >> count.txt']);
    const output = watchOutput(run);
    const captured = await captureWork();
    // Straight into the run's queue, signature and all, while the tasker waits for the command.
    await replay(captured, { exchange: '', routingKey: names(ctx.ns).runQueue('results') });
    await waitFor('the tasker to ignore it', () => output.text().includes('ignoring a command on the run queue that was not dead-lettered'));
    await worker();
    const done = await run;
    expect(done.exitCode, done.all).toBe(0);
    expect(readResults(ctx.dir, 'results').map((r) => [r.id, r.outcome])).toEqual([['f1-L1', 'succeeded']]);
    expect(runs()).toBe(1);
  });
});
