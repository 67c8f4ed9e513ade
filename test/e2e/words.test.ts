import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readSummary, runTasker, useWorkspaces } from '../helpers/cli.js';
import { spawnTasker, useTestNamespace, waitFor, watchOutput } from '../helpers/distributed.js';

/**
 * The words a user reads match (issue 27, point 5): a local run's workers phases run on "local
 * slots" in the plan, the logs, summary.json and the summary (a distributed run's on "workers");
 * commands never started are "not run", those done in an earlier session "already done", and a
 * phase done entirely earlier says so; `tasker status` of an interrupted run in a namespace other
 * than the default resumes it there.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const workspace = useWorkspaces();
const ctx = useTestNamespace(services, 'tasker-words-');

const local = { env: { AMQP_URL: '' } };
const jobsText = ['# phase: work', 'bash ev.sh 0 0', 'bash ev.sh 0 3', '# phase: after', 'bash ev.sh 0 0', 'bash ev.sh 0 0', '# phase: last', 'bash ev.sh 0 0', ''].join('\n');

/** The phases of `tasker plan --json`. */
function planPhases(stdout: string): { name: string; runsOn: string; pool: string | null }[] {
  return (JSON.parse(stdout) as { phases: { name: string; runsOn: string; pool: string | null }[] }).phases.map(({ name, runsOn, pool }) => ({ name, runsOn, pool }));
}

describe('words that match', () => {
  it('tasker plan says local slots without a broker, workers with one', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', '# phase: prep (tasker)\nmkdir out\n# phase: sims\necho a\n');
    const text = await runTasker(['plan', jobs], local);
    expect(text.stdout).toContain('Phase 2 "sims": 1 command, run on the local slots, in parallel\n');
    expect(text.stdout).not.toContain('workers');
    const json = await runTasker(['plan', '--json', jobs], local);
    expect(planPhases(json.stdout)).toEqual([{ name: 'prep', runsOn: 'tasker', pool: null }, { name: 'sims', runsOn: 'local slots', pool: 'default' }]);
    // With a broker (plan does not connect to it), the workers run them.
    const broker = { env: { AMQP_URL: 'amqp://broker.invalid' } };
    expect((await runTasker(['plan', jobs], broker)).stdout).toContain('Phase 2 "sims": 1 command, run by the workers of pool default, in parallel\n');
    expect(planPhases((await runTasker(['plan', '--json', jobs], broker)).stdout)[1]).toEqual({ name: 'sims', runsOn: 'workers', pool: 'default' });
  });

  it('a local run: local slots in its logs and summary; a resume says already done and not run, never skipped', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', jobsText);
    const first = await runTasker(['run', '--keep-going', '--run-id', 'w', '--workdir', ws.dir, jobs], local);
    expect(first.exitCode, first.stderr).toBe(1);
    expect(first.stderr).toMatch(/"phase":"work"[^\n]*"runsOn":"local slots"[^\n]*"msg":"phase started"/);
    expect(first.stderr).not.toContain('"runsOn":"workers"');
    expect(readSummary(ws.dir, 'w').phases.map((p) => (p as { runsOn?: string }).runsOn)).toEqual(['local slots', 'local slots', 'local slots']);
    expect(first.stdout).toMatch(/^ {2}work +local slots +failed /m);

    // Resumed without --keep-going: "work" fails again; "after" was done entirely in the first session.
    const resumed = await runTasker(['run', '--resume', 'w', '--workdir', ws.dir], local);
    expect(resumed.exitCode, resumed.stderr).toBe(1);
    expect(readSummary(ws.dir, 'w').phases.map((p) => [p.name, p.status, p.alreadyDone, p.skipped])).toEqual([
      ['work', 'failed', 1, 0],
      ['after', 'succeeded', 2, 0],
      ['last', 'succeeded', 1, 0],
    ]);
    expect(resumed.stdout).toMatch(/^ {2}phase +runs on +status +done +already done +failed +not run +duration$/m);
    expect(resumed.stdout).toMatch(/^ {2}after +local slots +already done +0 +2 +0 +0 /m);
    expect(resumed.stdout).toContain('(already done: 4 commands succeeded in an earlier session of this run, kept)');
    expect(resumed.stdout).not.toContain('skipped');

    // A run that stops after a failure: its later phase's commands are "not run" everywhere.
    const stops = ws.jobs('stops.sh', jobsText);
    const stopped = await runTasker(['run', '--run-id', 's', '--workdir', ws.dir, stops], local);
    expect(stopped.stdout).toMatch(/^ {2}after +local slots +not run +0 +0 +2 /m);
    expect(stopped.stdout).not.toContain('skipped');
    const runs = await runTasker(['runs', '--workdir', ws.dir], local);
    expect(runs.stdout).toMatch(/ {2}s +failed +5 +1 +1 +0 +3 /);
    const status = await runTasker(['status', 's', '--workdir', ws.dir], local);
    expect(status.stdout).toContain('5 commands: 1 done, 1 failed, 0 interrupted, 0 dead-lettered, 3 not run');
    expect(status.stdout).not.toContain('skipped');
  });

  it('a distributed run: workers in its logs and summary; tasker status of it interrupted resumes it in its namespace', async () => {
    ctx.runIds.push('ns-hint');
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, 'bash ev.sh 30\nbash ev.sh 30\n');
    // No worker: the commands wait in the queue until the interrupt.
    const run = spawnTasker(ctx.env, ['run', '--run-id', 'ns-hint', '--workdir', ctx.dir, jobs]);
    ctx.procs.push(run);
    const out = watchOutput(run);
    await waitFor('the phase to start', () => out.text().includes('phase started'), 30_000);
    run.kill('SIGINT');
    const ended = await run;
    expect(ended.exitCode, ended.all).toBe(130);
    expect(ended.all).toMatch(/"runsOn":"workers"[^\n]*"msg":"phase started"/);
    expect(readSummary(ctx.dir, 'ns-hint').phases.map((p) => (p as { runsOn?: string }).runsOn)).toEqual(['workers']);
    expect(ended.stdout).toMatch(/interrupted after \S+: 2 not run; tasker exit code 130/);
    const status = await spawnTasker(ctx.env, ['status', 'ns-hint']);
    expect(status.exitCode, status.all).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`until it is resumed: \\S+(?: \\S+)* run --resume ns-hint --workdir \\S+ --namespace ${ctx.ns}\\n`));
    // Interrupted: what did not run waits for a resume, said as the summary says it.
    expect(status.stdout).toMatch(/commands: 0\/2 done, 0 failed, 0 running, 2 not run; now in phase 1\/1 /);
  });
});
