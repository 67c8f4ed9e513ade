import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { freePort, queueCounts, readyWorker, spawnTasker, useTestNamespace, waitFor, type Proc } from '../helpers/distributed.js';
import type { demandAnswer } from '../../shared/state/pool-demand.js';

/**
 * What the autoscaler reads (`GET /demand?pool=POOL`): with fair share each run keeps only about
 * two bundles per slot of its share in the work queue, so the queue no longer shows the backlog.
 * The endpoint, on a tasker and on a worker alike, sums what every live run of the pool could run
 * now: two runs count as one run of the same total would.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-demand-');

/** The `/demand` answer, as shared/state/pool-demand.ts shapes it. */
type Demand = ReturnType<typeof demandAnswer>;

async function demandAt(port: number): Promise<Demand> {
  const response = await fetch(`http://127.0.0.1:${port}/demand?pool=default`);
  expect(response.status).toBe(200);
  return (await response.json()) as Demand;
}

function jobs(name: string, count: number): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, `${Array.from({ length: count }, () => 'sleep 0.2').join('\n')}\n`);
  return path;
}

function tasker(runId: string, file: string, port: number): Proc {
  ctx.runIds.push(runId);
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--metrics-port', String(port), file]);
  ctx.procs.push(proc);
  return proc;
}

/** Commands of these runs without a result yet, from their results files. */
function remaining(runs: Record<string, number>): number {
  let left = 0;
  for (const [runId, total] of Object.entries(runs)) {
    const path = join(ctx.dir, '.tasker', 'runs', runId, 'results.jsonl');
    const done = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((line) => line !== '').length : 0;
    left += total - done;
  }
  return left;
}

/** 2 workers x 2 slots run 20 `sleep 0.2` a second: what may finish between two reads. */
const slack = 20;

describe('the demand endpoint', () => {
  it('answers, on a tasker and on a worker, the remaining commands of both runs of the pool, as one run of the same total', async () => {
    const workerPort = await freePort();
    const started = await Promise.all([readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '2', '--metrics-port', String(workerPort)]), readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '2'])]);
    ctx.procs.push(...started.map((worker) => worker.proc));
    // Between runs the worker answers too: nothing to run.
    expect(await demandAt(workerPort)).toEqual({ pool: 'default', slots: 4, commands: 0, waiting: 0, running: 0, runs: 0 });

    const taskerPort = await freePort();
    const sizes = { big: 160, small: 100 };
    const big = tasker('big', jobs('big.sh', sizes.big), taskerPort);
    const small = tasker('small', jobs('small.sh', sizes.small), await freePort());
    await waitFor('both runs in the demand table', async () => (await demandAt(workerPort)).runs === 2 && remaining(sizes) < sizes.big + sizes.small, 30_000);

    const fromWorker = await demandAt(workerPort);
    const left = remaining(sizes);
    const fromTasker = await demandAt(taskerPort);
    expect(fromWorker).toMatchObject({ pool: 'default', slots: 4, runs: 2 });
    expect(Math.abs(fromWorker.commands - left)).toBeLessThanOrEqual(slack);
    expect(Math.abs(fromTasker.commands - fromWorker.commands)).toBeLessThanOrEqual(slack);
    expect(fromWorker.waiting + fromWorker.running).toBe(fromWorker.commands);
    // The queue holds only the runs' windows: far fewer messages than commands to run.
    const queued = (await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount ?? 0;
    expect(queued).toBeLessThan(fromWorker.commands / 2);

    expect((await big).exitCode).toBe(0);
    expect((await small).exitCode).toBe(0);
    await waitFor('the runs gone from the demand table', async () => (await demandAt(workerPort)).runs === 0, 15_000);

    // One run of the same total: the same number.
    const one = { one: sizes.big + sizes.small };
    const single = tasker('one', jobs('one.sh', one.one), await freePort());
    await waitFor('the run in the demand table', async () => (await demandAt(workerPort)).runs === 1 && remaining(one) < one.one, 30_000);
    const alone = await demandAt(workerPort);
    expect(Math.abs(alone.commands - remaining(one))).toBeLessThanOrEqual(slack);
    expect(alone.commands).toBeGreaterThan(one.one - 3 * slack);
    single.kill('SIGTERM');
    await single;
  });
});
