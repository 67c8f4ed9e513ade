import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readEvents, readResults, readSummary } from '../helpers/cli.js';
import { spawnTasker, spawnWorker, useTestNamespace, waitFor, watchOutput, workerFor, type Proc } from '../helpers/distributed.js';

/**
 * What the records say after a stop: Ctrl-C (local and distributed) records the commands never
 * started as not run, those that ended meanwhile as what they did, and only those stopped
 * while running as interrupted; a resume then runs the rest once. A command killed at a worker's
 * drain deadline and run again elsewhere says so in its record.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-stop-records-');

const startsOf = (): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const e of readEvents(join(ctx.dir, 'events.txt')).filter((e) => e.event === 'start')) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  return counts;
};

function jobs(lines: string[]): string {
  const path = join(ctx.dir, 'jobs.sh');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function tasker(args: string[], env: Record<string, string> = ctx.env): Proc {
  const proc = spawnTasker(env, ['run', '--workdir', ctx.dir, '--progress-interval', '1s', ...args]);
  ctx.procs.push(proc);
  return proc;
}

const blocking = 'bash ev.sh 0; while [ ! -e go ]; do sleep 0.05; done';
const quick = Array.from({ length: 8 }, () => 'bash ev.sh 0');

/** The records of the stopped run, as results.jsonl, summary.json and `tasker runs` have them. */
async function expectStopRecords(runId: string, finished: string): Promise<void> {
  expect(readResults(ctx.dir, runId).map((r) => [r.id, r.outcome]).sort()).toEqual([['f1-L1', 'interrupted'], ['f1-L2', finished]]);
  const summary = readSummary(ctx.dir, runId);
  expect(summary['totals']).toMatchObject({ commands: 10, succeeded: finished === 'succeeded' ? 1 : 0, failed: finished === 'failed' ? 1 : 0, interrupted: 1, skipped: 8 });
  const runs = await spawnTasker({ ...ctx.env, AMQP_URL: '' }, ['runs', '--workdir', ctx.dir]);
  expect(runs.stdout).toMatch(/done +failed +interrupted +not run/);
  expect(runs.stdout).toMatch(new RegExp(` {2}${runId} +interrupted +10 +${finished === 'succeeded' ? 1 : 0} +${finished === 'failed' ? 1 : 0} +1 +8 `));
}

describe('records after a stop', () => {
  it('local run: Ctrl-C records the killed one interrupted, the one that ended meanwhile as what it did, the never-started not at all', async () => {
    const env = { ...ctx.env, AMQP_URL: '' };
    // f1-L2 ends by itself (exit 0) when it gets the interrupt's SIGTERM.
    const ending = "trap 'exit 0' TERM; bash ev.sh 0; while true; do sleep 0.05; done";
    const run = tasker(['--run-id', 'local', '-j', '2', jobs([blocking, ending, ...quick])], env);
    await waitFor('both slots to run', () => startsOf().size === 2);
    run.kill('SIGINT');
    const result = await run;
    expect(result.exitCode, result.all).toBe(130);
    expect(result.stdout).toMatch(/^Run local interrupted after \S+: 1 interrupted while running, 8 not run; tasker exit code 130$/m);
    await expectStopRecords('local', 'succeeded');

    writeFileSync(join(ctx.dir, 'go'), '');
    const resumed = await tasker(['--resume', 'local'], env);
    expect(resumed.exitCode, resumed.all).toBe(0);
    // The interrupted one runs again; the one that succeeded does not; the never-started run once.
    expect([...startsOf().entries()].sort()).toEqual([['f1-L1', 2], ...Array.from({ length: 9 }, (_, i) => [`f1-L${i + 2}`, 1])].sort());
  });

  it('distributed run: Ctrl-C records the still-running one interrupted, the one finished in the window as what it did, the queued ones not at all', async () => {
    await workerFor(ctx, ['--concurrency', '2']);
    ctx.runIds.push('dist');
    // f1-L2 fails by itself half a second after the Ctrl-C (the test creates "soon").
    const soon = 'bash ev.sh 0; while [ ! -e soon ]; do sleep 0.05; done; sleep 0.5; exit 3';
    const run = tasker(['--run-id', 'dist', jobs([blocking, soon, ...quick])]);
    await waitFor('both commands to run', () => startsOf().size === 2);
    run.kill('SIGINT');
    writeFileSync(join(ctx.dir, 'soon'), '');
    const result = await run;
    expect(result.exitCode, result.all).toBe(130);
    expect(result.stdout).toMatch(/^Run dist interrupted after \S+: 1 failed, 1 interrupted while running, 8 not run; tasker exit code 130$/m);
    await expectStopRecords('dist', 'failed');
    const interrupted = readResults(ctx.dir, 'dist').find((r) => r.id === 'f1-L1');
    expect(interrupted?.reason).toBe('tasker interrupted; still running on a worker');

    writeFileSync(join(ctx.dir, 'go'), '');
    const resumed = await tasker(['--resume', 'dist']);
    expect(resumed.exitCode, resumed.all).toBe(1); // f1-L2 failed for good (no retries)
    // f1-L1 finished on its worker and counts; the failed one runs again; every other runs once.
    const starts = startsOf();
    expect(starts.get('f1-L1')).toBe(1);
    expect(starts.get('f1-L2')).toBe(2);
    for (let line = 3; line <= 10; line++) expect(starts.get(`f1-L${line}`)).toBe(1);
    expect(readResults(ctx.dir, 'dist').filter((r) => r.outcome === 'succeeded').length).toBe(9);
  });

  it("a command killed at a worker's drain deadline and run again elsewhere leaves its trace: starts 2 in its record and the summary", async () => {
    const first = spawnWorker(ctx.env, ['--workdir', ctx.dir, '--drain-timeout', '1s']);
    ctx.procs.push(first);
    const firstOutput = watchOutput(first);
    await waitFor('the first worker to be ready', () => firstOutput.text().includes('waiting for commands'));
    ctx.runIds.push('drained');
    const run = tasker(['--run-id', 'drained', jobs([blocking])]);
    await waitFor('the command to start', () => startsOf().size === 1);
    first.kill('SIGTERM');
    expect((await first).exitCode).toBe(0);
    expect(firstOutput.text()).toContain('back to the queue for another worker');

    writeFileSync(join(ctx.dir, 'go'), '');
    await workerFor(ctx);
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    expect(startsOf().get('f1-L1')).toBe(2);
    expect(readResults(ctx.dir, 'drained').map((r) => [r.id, r.outcome, r.starts])).toEqual([['f1-L1', 'succeeded', 2]]);
    expect(readSummary(ctx.dir, 'drained')['ranAgain']).toEqual({ count: 1, commands: [{ id: 'f1-L1', phase: 'jobs.sh', starts: 2 }] });
    expect(result.stdout).toContain('Started more than once (a worker was lost, frozen or drained mid-run; each counted once): 1 command: f1-L1 (2x)');
  });
});
