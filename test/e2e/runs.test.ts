import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { readResults, runTasker, startTasker, tempDir } from '../helpers/cli.js';

/**
 * `tasker runs` and `tasker status --workdir`: what happened to the runs of a workdir, read from
 * its files, with no broker (a local run has none; a distributed one leaves the same files).
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A workdir with a succeeded run "ok" and a failed run "bad" (2 of 3 done). */
async function workdirWithRuns(): Promise<string> {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  const dir = temp.path;
  writeFileSync(join(dir, 'good.sh'), 'true\ntrue\n');
  writeFileSync(join(dir, 'bad.sh'), 'true\nexit 7\ntrue\n');
  const env = { AMQP_URL: '' };
  expect((await runTasker(['run', '--run-id', 'ok', '--workdir', dir, join(dir, 'good.sh')], { env })).exitCode).toBe(0);
  expect((await runTasker(['run', '-j', '1', '--run-id', 'bad', '--workdir', dir, join(dir, 'bad.sh')], { env })).exitCode).toBe(1);
  return dir;
}

describe('tasker runs', () => {
  it('lists the runs of a workdir, newest first, with state and counts, without AMQP_URL', async () => {
    const dir = await workdirWithRuns();
    const result = await runTasker(['runs', '--workdir', dir], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`Runs in ${dir}, newest first:`);
    expect(lines[2]).toMatch(/^ {2}bad +failed +3 +2 +1 +0 /);
    expect(lines[3]).toMatch(/^ {2}ok +succeeded +2 +2 +0 +0 /);
    const json = JSON.parse((await runTasker(['runs', '--json'], { cwd: dir, env: { AMQP_URL: '' } })).stdout) as { runId: string; state: string }[];
    expect(json.map((run) => [run.runId, run.state])).toEqual([['bad', 'failed'], ['ok', 'succeeded']]);
  });

  it('says so when a workdir has no runs', async () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    const result = await runTasker(['runs', '--workdir', temp.path]);
    expect(result).toMatchObject({ exitCode: 0, stdout: `No runs in ${temp.path} (nothing under .tasker/runs/).` });
  });
});

describe('tasker status of a local run', () => {
  it('reads the workdir with --workdir, even when AMQP_URL is set, and without it in the workdir', async () => {
    const dir = await workdirWithRuns();
    // A broker nobody listens at: status must not try it.
    const named = await runTasker(['status', 'bad', '--workdir', dir], { env: { AMQP_URL: 'amqp://127.0.0.1:1' } });
    expect(named.exitCode, named.stderr).toBe(0);
    expect(named.stdout).toMatch(/^Run bad: failed \(exit 1\); created \S+; last result /);
    expect(named.stdout).toContain('3 commands: 2 done, 1 failed, 0 interrupted, 0 dead-lettered, 0 not run (3 attempts)');
    expect(named.stdout).toMatch(/f1-L2 +phase bad\.sh, \S*bad\.sh:2: exit 7/);
    const latest = await runTasker(['status'], { cwd: dir, env: { AMQP_URL: '' } });
    expect(latest.exitCode, latest.stderr).toBe(0);
    expect(latest.stdout).toMatch(/^Run bad: failed/);
  });

  it('lists the dead-lettered commands of a run, as a distributed run records them', async () => {
    const dir = await workdirWithRuns();
    const [first] = readResults(dir, 'bad');
    // A later attempt of f1-L2 was given up on by a worker (poison), as in a distributed run: its
    // record is in the run's results.jsonl like any other.
    const dead = { ...first!, id: 'f1-L2', line: 2, attempt: 2, outcome: 'dead-lettered', exitCode: null, reason: 'started 10 time(s) without a result on worker w-7; dead-lettered, not run again', log: '.tasker/runs/bad/logs/01-bad.sh/f1-L2.2.log' };
    appendFileSync(join(dir, '.tasker', 'runs', 'bad', 'results.jsonl'), `${JSON.stringify(dead)}\n`);
    const result = await runTasker(['status', 'bad', '--workdir', dir], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('2 done, 0 failed, 0 interrupted, 1 dead-lettered');
    expect(result.stdout).toContain('Dead-lettered (1):');
    expect(result.stdout).toContain('  f1-L2  phase bad.sh, ');
    expect(result.stdout).toContain('started 10 time(s) without a result on worker w-7');
    expect(result.stdout).toContain('    log:     .tasker/runs/bad/logs/01-bad.sh/f1-L2.2.log');
    const json = JSON.parse((await runTasker(['status', 'bad', '--workdir', dir, '--json'], { env: { AMQP_URL: '' } })).stdout) as { results: { deadLettered: { id: string }[] } };
    expect(json.results.deadLettered.map((record) => record.id)).toEqual(['f1-L2']);
  });

  it('shows a run whose tasker was killed as unfinished, not by its older summary', async () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    const dir = temp.path;
    writeFileSync(join(dir, 'jobs.sh'), 'true\nsleep 60\n');
    const tasker = startTasker(['run', '-j', '1', '--run-id', 'killed', '--workdir', dir, join(dir, 'jobs.sh')], { env: { AMQP_URL: '' } });
    const results = join(dir, '.tasker', 'runs', 'killed', 'results.jsonl');
    while (!existsSync(results) || readFileSync(results, 'utf8') === '') await sleep(50);
    tasker.kill('SIGKILL');
    await tasker;
    const result = await runTasker(['status', '--workdir', dir], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Run killed: unfinished \(running, or its tasker was stopped\)/);
    expect(result.stdout).toContain('2 commands: 1 done, 0 failed, 0 interrupted, 0 dead-lettered, 1 not run');
    expect((await runTasker(['runs', '--workdir', dir])).stdout).toMatch(/killed +unfinished +2 +1 +0 +0 +1 /);
  });
});
