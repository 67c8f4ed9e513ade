import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { readEvents, readResults, readSummary } from '../helpers/cli.js';
import { queueCounts, spawnTasker, workerFor, useTestNamespace, waitFor, watchOutput, type Proc } from '../helpers/distributed.js';

/**
 * An operator's cancel of someone else's live distributed run, and what purge does before and
 * after it. The built tasker and workers against the real RabbitMQ and Redis, one namespace per test.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-cancel-');

const startedIds = (): string[] => readEvents(join(ctx.dir, 'events.txt')).filter((e) => e.event === 'start').map((e) => e.id);

function jobs(lines: string[]): string {
  const path = join(ctx.dir, 'jobs.sh');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function tasker(args: string[]): Proc {
  const proc = spawnTasker(ctx.env, args);
  ctx.procs.push(proc);
  return proc;
}

const worker = (args: string[] = []): Promise<() => string> => workerFor(ctx, args);

async function runKeys(runId: string): Promise<string[]> {
  const redis = new Redis(services.redisUrl);
  try {
    return await redis.keys(`${ctx.ns}:run:${runId}:*`);
  } finally {
    redis.disconnect();
  }
}

const blocking = 'bash ev.sh 0; while [ ! -e go ]; do sleep 0.05; done';

describe('tasker cancel', () => {
  it('ends a live run: its tasker exits 4 and records it cancelled, nothing of it runs afterwards, purge then removes it', async () => {
    const output = await worker(['--concurrency', '1']);
    ctx.runIds.push('victim');
    const run = tasker(['run', '--run-id', 'victim', '--workdir', ctx.dir, '--progress-interval', '1s', jobs([blocking, ...Array.from({ length: 6 }, () => 'bash ev.sh 0')])]);
    const runOutput = watchOutput(run);
    await waitFor('the first command to start', () => startedIds().includes('f1-L1'));

    // Purging a live run is refused, with or without --force: cancel first.
    for (const args of [['purge', 'victim'], ['purge', 'victim', '--force']]) {
      const refused = await spawnTasker(ctx.env, args);
      expect(refused.exitCode, refused.all).toBe(2);
      expect(refused.stderr).toContain('cancel it first: tasker cancel victim');
    }

    const cancelledAt = Date.now();
    const cancel = await spawnTasker(ctx.env, ['cancel', 'victim', '--by', 'ops', '--reason', 'wrong input']);
    expect(cancel.exitCode, cancel.all).toBe(0);
    expect(cancel.stdout).toContain('Cancelled run victim (by ops (wrong input)): its tasker stopped; workers start none of its commands.');
    const ended = await run;
    expect(ended.exitCode, ended.all).toBe(4);
    expect(Date.now() - cancelledAt).toBeLessThan(8000);
    expect(runOutput.text()).toMatch(/run cancelled by ops: stopping/);
    expect(ended.stdout).toMatch(/^Run victim cancelled by ops \(wrong input\) after \S+: 1 interrupted while running, 6 not run; tasker exit code 4$/m);
    expect(ended.stdout).not.toContain('Resume with');

    // The records: the running command interrupted, the never-started not recorded.
    expect(readResults(ctx.dir, 'victim').map((r) => [r.id, r.outcome])).toEqual([['f1-L1', 'interrupted']]);
    const summary = readSummary(ctx.dir, 'victim');
    expect([summary.status, summary.exitCode, summary['cancelled']]).toEqual(['cancelled', 4, expect.objectContaining({ by: 'ops', reason: 'wrong input' })]);
    expect(summary['totals']).toMatchObject({ succeeded: 0, failed: 0, interrupted: 1, skipped: 6 });
    const runs = await spawnTasker({ ...ctx.env, AMQP_URL: '' }, ['runs', '--workdir', ctx.dir]);
    expect(runs.stdout).toMatch(/ {2}victim +cancelled +7 +0 +0 +1 +6 /);
    const status = await spawnTasker(ctx.env, ['status', 'victim']);
    expect(status.stdout).toContain('Run victim: cancelled (cancelled by ops: wrong input)');

    // Nothing of it runs afterwards: its worker stops the running command (no "go" file is ever
    // made), records nothing of it, and refuses the queued ones.
    await waitFor('the worker to stop the running command', () => output().includes('run cancelled: stopping its running commands'));
    await waitFor('the stopped command to end', () => /"commandId":"f1-L1"[^\n]*"outcome":"killed"[^\n]*command finished/.test(output()));
    // Queued: what the run's fair-share window had published (two per slot of its one worker), not all 6.
    await waitFor('the worker to refuse the queued commands', () => (output().match(/run cancelled \(tasker cancel, or purged\): a replayed or leftover message, dead-lettered, not run/g) ?? []).length >= 1);
    expect(startedIds()).toEqual(['f1-L1']);
    // The tasker deleted its result queue and made no key of the run again.
    expect(await queueCounts(services.amqpUrl, `${ctx.ns}.run.victim.done`)).toBeUndefined();

    // A cancelled run cannot be resumed.
    const resumed = await spawnTasker(ctx.env, ['run', '--resume', 'victim', '--workdir', ctx.dir]);
    expect(resumed.exitCode, resumed.all).toBe(2);
    expect(resumed.stderr).toContain('run victim was cancelled by ops: wrong input');

    const purged = await spawnTasker(ctx.env, ['purge', 'victim']);
    expect(purged.exitCode, purged.all).toBe(0);
    expect(purged.stdout).toContain('Purged run victim');
    expect(await runKeys('victim')).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await runKeys('victim')).toEqual([]);
    expect(existsSync(join(ctx.dir, '.tasker', 'runs', 'victim', 'summary.json'))).toBe(true);
  });

  it('cancels a run no tasker runs (interrupted): recorded at once; cancelling again says who did', async () => {
    ctx.runIds.push('idle');
    const run = tasker(['run', '--run-id', 'idle', '--workdir', ctx.dir, jobs(['bash ev.sh 0'])]);
    await waitFor('the command to be queued', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount === 1);
    run.kill('SIGINT');
    expect((await run).exitCode).toBe(130);

    const cancel = await spawnTasker(ctx.env, ['cancel', 'idle', '--reason', 'not needed']);
    expect(cancel.exitCode, cancel.all).toBe(0);
    expect(cancel.stdout).toMatch(/Cancelled run idle \(by \S+@\S+ \(not needed\)\): no tasker runs it/);
    const again = await spawnTasker(ctx.env, ['cancel', 'idle', '--by', 'someone-else']);
    expect(again.stdout).toMatch(/Run idle was already cancelled by \S+@\S+ \(not needed\)/);
    expect((await spawnTasker(ctx.env, ['status', 'idle'])).stdout).toContain('Run idle: cancelled');

    const output = await worker();
    await waitFor('the worker to refuse its queued command', () => output().includes('run cancelled (tasker cancel, or purged)'));
    expect(startedIds()).toEqual([]);
    expect((await spawnTasker(ctx.env, ['purge', 'idle'])).exitCode).toBe(0);
  });
});
