import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readyWorker, spawnTasker, useTestNamespace, waitFor, type Proc } from '../helpers/distributed.js';

/**
 * `tasker status` and `tasker runs` with two runs sharing one pool: per run its commands waiting,
 * running, done and failed, its priority and share; and a run whose tasker was killed told apart.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-views-');

function tasker(runId: string, count: number, args: string[] = []): Proc {
  ctx.runIds.push(runId);
  const file = join(ctx.dir, `${runId}.sh`);
  writeFileSync(file, `${Array.from({ length: count }, () => 'sleep 0.3').join('\n')}\n`);
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--progress-interval', '500ms', ...args, file]);
  ctx.procs.push(proc);
  return proc;
}

async function cli(args: string[]): Promise<string> {
  const result = await spawnTasker(ctx.env, args);
  expect(result.exitCode, result.all).toBe(0);
  return result.stdout;
}

describe('tasker status and tasker runs of two live runs', () => {
  it('show each run with its counts, priority and share; a killed tasker as gone', async () => {
    const worker = await readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '4']);
    ctx.procs.push(worker.proc);
    const first = tasker('first', 200);
    // Registered first: `tasker status` details the newest run, which must be the second.
    await waitFor('the first run registered', async () => /first +normal/.test(await cli(['runs'])), 20_000);
    const second = tasker('second', 100, ['--priority', 'high']);
    const shared = (text: string): boolean => /first +normal .* of 4 slots of pool default +running/.test(text) && /second +high .* of 4 slots of pool default +running/.test(text);
    let runs = '';
    await waitFor('both runs with a share', async () => shared((runs = await cli(['runs']))), 30_000);
    expect(runs).toMatch(/^Runs in Redis \(namespace \S+\), newest first; counts are commands:/);
    expect(runs).toMatch(/run id +priority +waiting +running +done +failed +share +state/);
    // High before normal: the high run takes the slots, the other waits behind it.
    expect(runs).toMatch(/first +normal +\d+ +\d+ +\d+ +0 +0 of 4 slots of pool default +running; waits behind second \(high, 4 of 4 slots\)/);
    const status = await cli(['status']);
    expect(status).toMatch(/^Runs \(2, newest first; counts are commands\):/);
    expect(status).toMatch(/Run second: running; started .*\n {2}commands: \d+\/100 done, 0 failed, \d+ running, \d+ waiting; now in phase 1\/1 second\.sh\n {2}priority high; share: 4 of 4 slots of pool default/);
    // Commands beside commands; the pool's queue, in messages, on its own line.
    expect(status).toMatch(/default +1 worker \(\S+\), 4 slots, \d+ running; \d+ commands of their current phases waiting, of 2 live runs\n +queue \S+\.commands: \d+ messages? ready \(a bundle message carries several commands\), \d+ consumers?/);
    const one = await cli(['status', 'first']);
    expect(one).toContain('waits behind: second (high, 4 of 4 slots)');

    second.kill('SIGKILL');
    await second;
    await waitFor('the killed tasker gone', async () => /second +high .* tasker gone since \d\d:\d\d \(not heard for \d+ s\)/.test((runs = await cli(['runs']))), 20_000);
    expect(await cli(['status', 'second'])).toMatch(/Run second: running, but its tasker gone since \d\d:\d\d \(not heard for \d+ s\)/);
    expect((await first).exitCode).toBe(0);
  });
});
