import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readEvents, readResults } from '../helpers/cli.js';
import { queueCounts, readyWorker, spawnTasker, useTestNamespace, waitFor, watchOutput, withChannel, type Proc } from '../helpers/distributed.js';

/**
 * A work queue deleted while a run goes (`rabbitmqctl delete_queue`, here through a channel of
 * the test's own): commands are published `mandatory`, so one that no queue takes comes back to
 * the tasker instead of being dropped while the broker confirms it; the tasker declares its
 * queues again, warns naming the queue, and publishes it again. A worker whose queue was deleted
 * declares it again and consumes it. Commands that waited in a deleted work queue are published again (lost-queue-recovery.ts), by
 * the run's tasker or by a resumed one. Without all that, the run waits for ever (the tests time out).
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-deleted-queue-');

function jobs(lines: string[]): string {
  const path = join(ctx.dir, 'jobs.sh');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function tasker(runId: string, args: string[]): { proc: Proc; output: () => string } {
  ctx.runIds.push(runId);
  // Short enough that a run that hangs (the commands dropped) fails the test, not vitest's timeout.
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--progress-interval', '500ms', ...args], 45_000);
  ctx.procs.push(proc);
  return { proc, output: watchOutput(proc).text };
}

async function startWorker(args: string[]): Promise<{ proc: Proc; output: () => string }> {
  const worker = await readyWorker(ctx.env, ['--workdir', ctx.dir, ...args]);
  ctx.procs.push(worker.proc);
  return worker;
}

function deleteQueue(queue: string): Promise<unknown> {
  return withChannel(services.amqpUrl, (channel) => channel.deleteQueue(queue));
}

/** Every command of the run succeeded once, and ran once (ev.sh's start lines). */
function expectEachSucceededOnce(runId: string, count: number, counted: (record: { outcome: string }) => boolean = () => true): void {
  const records = readResults(ctx.dir, runId).filter(counted);
  const succeeded = records.filter((record) => record.outcome === 'succeeded').map((record) => record.id);
  expect(succeeded).toHaveLength(count);
  expect(new Set(succeeded).size).toBe(count);
  expect(records).toHaveLength(count);
  const starts = readEvents(join(ctx.dir, 'events.txt')).filter((event) => event.event === 'start' && event.runId === runId);
  expect(starts).toHaveLength(count);
  expect(new Set(starts.map((event) => event.id)).size).toBe(count);
}

describe('a work queue deleted while the run goes', () => {
  it("publishes a returned command again once it has declared the pool's queue again, and says so", async () => {
    ctx.pools.push('late');
    await startWorker(['--concurrency', '2']);
    const lines = ['# phase: early'];
    for (let i = 0; i < 4; i++) lines.push('bash ev.sh 0.5');
    lines.push('# phase: late (pool: late)');
    for (let i = 0; i < 6; i++) lines.push('bash ev.sh 0.1');
    const lateQueue = `${ctx.ns}.pool.late.commands`;
    const run = tasker('deleted-pool-queue', [jobs(lines)]);

    // The tasker declares the queue of every pool of its run before its first command; an
    // operator deletes it while the first phase runs (the README's "delete an unused pool's queue").
    await waitFor('the tasker to declare the late pool queue', async () => (await queueCounts(services.amqpUrl, lateQueue)) !== undefined, 20_000);
    await deleteQueue(lateQueue);
    expect(await queueCounts(services.amqpUrl, lateQueue)).toBeUndefined();
    // The late phase publishes into no queue; its worker starts only after that (starting, it
    // would declare the queue itself).
    await waitFor('the late phase to start', () => /"phase":"late"[^\n]*phase started/.test(run.output()), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await startWorker(['--pool', 'late', '--concurrency', '2']);

    const result = await run.proc;
    expect(result.exitCode, result.all?.slice(-3000)).toBe(0);
    expectEachSucceededOnce('deleted-pool-queue', 10);
    expect(result.all).toContain(`the work queue ${lateQueue} does not exist (was it deleted while the run goes?)`);
    // Each attempt counted once as published, the returned one included.
    expect(result.all).toMatch(/published 10 attempts in \d+ messages/);
  });

  it('goes on when the work queue its workers consume is deleted under them', async () => {
    const worker = await startWorker(['--concurrency', '2']);
    const lines = ['# phase: sims'];
    for (let i = 0; i < 16; i++) lines.push('bash ev.sh 0.3');
    const workQueue = `${ctx.ns}.commands`;
    // Two in flight on a worker of two slots: nothing waits in the queue, so deleting it loses
    // no message (a message ready in a deleted queue is deleted with it; see README).
    const run = tasker('deleted-work-queue', ['--max-in-flight', '2', '--bundle-size', '1', jobs(lines)]);
    await waitFor('a few commands to finish', () => readEvents(join(ctx.dir, 'events.txt')).filter((event) => event.event === 'end').length >= 4, 30_000);
    await deleteQueue(workQueue);

    const result = await run.proc;
    expect(result.exitCode, `${result.all?.slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`).toBe(0);
    expectEachSucceededOnce('deleted-work-queue', 16);
    expect(worker.output()).toContain(`RabbitMQ cancelled the consumer of ${workQueue}: the queue was deleted`);
    expect(worker.output()).toContain(`consuming ${workQueue} again`);
    expect(result.all).toMatch(/published 16 attempts in 16 messages/);
  });

  it('publishes again the commands that waited in a deleted work queue, and runs each once', async () => {
    const worker = await startWorker(['--concurrency', '1']);
    const lines = ['# phase: sims'];
    for (let i = 0; i < 8; i++) lines.push('bash ev.sh 0.4');
    const workQueue = `${ctx.ns}.commands`;
    // One at a time on one slot: the others wait in the queue, and go with it.
    const run = tasker('deleted-with-waiting', ['--bundle-size', '1', jobs(lines)]);
    await waitFor('the first command to start', () => readEvents(join(ctx.dir, 'events.txt')).some((event) => event.event === 'start' && event.runId === 'deleted-with-waiting'), 30_000);
    // As many as the run's fair-share window holds beyond its one slot (one, here).
    await waitFor('commands to wait in the queue', async () => ((await queueCounts(services.amqpUrl, workQueue))?.messageCount ?? 0) >= 1, 10_000);
    await deleteQueue(workQueue);

    const result = await run.proc;
    expect(result.exitCode, `${result.all?.slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`).toBe(0);
    expectEachSucceededOnce('deleted-with-waiting', 8);
    expect(result.all).toContain(`the work queue ${workQueue} was deleted, and the commands waiting in it with it: publishing command`);
  });

  it('a resumed run publishes again what its interrupted tasker had published into a queue deleted since', async () => {
    const workQueue = `${ctx.ns}.commands`;
    const first = tasker('deleted-then-resumed', [jobs(['bash ev.sh 0', 'bash ev.sh 0', 'bash ev.sh 0'])]);
    await waitFor('the commands to be queued', async () => (await queueCounts(services.amqpUrl, workQueue))?.messageCount === 3, 20_000);
    first.proc.kill('SIGINT');
    expect((await first.proc).exitCode).toBe(130);
    await deleteQueue(workQueue);

    const resumed = spawnTasker(ctx.env, ['run', '--resume', 'deleted-then-resumed', '--workdir', ctx.dir, '--progress-interval', '500ms'], 45_000);
    ctx.procs.push(resumed);
    const output = watchOutput(resumed).text;
    await waitFor('the resumed run to reach its phase', () => output().includes('phase started'), 20_000);
    await startWorker(['--concurrency', '2']);
    const result = await resumed;
    expect(result.exitCode, result.all?.slice(-3000)).toBe(0);
    // The first tasker recorded each as interrupted; each then ran once and succeeded.
    expectEachSucceededOnce('deleted-then-resumed', 3, (record) => record.outcome !== 'interrupted');
    expect(result.all).toContain(`the work queue ${workQueue} was deleted, and the commands waiting in it with it: publishing commands f1-L1, f1-L2, f1-L3 again`);
  });

  it("goes on when the run's result queue is deleted: the tasker declares it again, results sent meanwhile are found in Redis", async () => {
    const worker = await startWorker(['--concurrency', '2']);
    const lines = ['# phase: sims'];
    for (let i = 0; i < 12; i++) lines.push('bash ev.sh 0.3');
    const runQueue = `${ctx.ns}.run.deleted-run-queue.done`;
    // A short stall warning: the tasker looks in Redis for results it has not heard of every 2 s.
    const run = tasker('deleted-run-queue', ['--max-in-flight', '2', '--bundle-size', '1', '--stall-warning', '2s', jobs(lines)]);
    await waitFor('a few commands to finish', () => readEvents(join(ctx.dir, 'events.txt')).filter((event) => event.event === 'end').length >= 4, 30_000);
    await deleteQueue(runQueue);

    const result = await run.proc;
    expect(result.exitCode, `${result.all?.slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`).toBe(0);
    expectEachSucceededOnce('deleted-run-queue', 12);
    expect(result.all).toContain(`RabbitMQ cancelled the consumer of ${runQueue}: the queue was deleted`);
  });
});
