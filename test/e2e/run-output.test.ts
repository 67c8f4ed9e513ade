import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readEvents, readSummary, runTasker, startTasker, taskerBin, useWorkspaces } from '../helpers/cli.js';

/**
 * End-to-end: what a new user reads after `tasker run` (the printed summary, the log lines on
 * stderr), from the built `tasker` in a temp workdir.
 */

const workspace = useWorkspaces();

/** The JSON log lines on stderr. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('what tasker run prints', () => {
  it('a command killed after the kill grace: one warning saying so, nothing of the runner', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'trap "" TERM; sleep 30\ntrue\n');
    const result = await runTasker(['run', '--run-id', 'grace', '--workdir', ws.dir, '--timeout', '500ms', '--kill-grace', '500ms', jobs]);
    expect(result.exitCode, result.stderr).toBe(1);
    const reason = 'timed out after 500ms; did not stop within the 500ms kill grace after SIGTERM';
    expect(result.stderr).not.toContain('command runner reported a problem');
    expect(result.stderr).not.toContain('tasker-runner');
    const warnings = logLines(result.stderr).filter((line) => line['level'] === 40);
    expect(warnings.map((line) => [line['msg'], line['commandId'], line['signal'], line['reason']])).toEqual([['command failed', 'f1-L1', 'SIGKILL', reason]]);
    expect(result.stdout).toContain(`  f1-L1  phase jobs.sh, ${jobs}:1: killed by SIGKILL (${reason}), 1 attempt\n`);
  });

  it('a failed local run: the tasker exit code apart, local slots, where results and logs are', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', '# phase: setup (tasker)\ntrue\n# phase: sims\ntrue\nexit 3\n');
    const result = await runTasker(['run', '--run-id', 'wording', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(1);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^Run wording finished in \S+: 1 of 3 commands failed; tasker exit code 1$/);
    expect(lines[1]).toMatch(/^ {2}phase\s+runs on\s+status\s+done\s+failed\s+not run\s+duration$/);
    expect(lines[2]).toMatch(/^ {2}setup\s+tasker\s+succeeded\s+1\s+0\s+0\s/);
    expect(lines[3]).toMatch(/^ {2}sims\s+local slots\s+failed\s+1\s+1\s+0\s/);
    expect(result.stdout).toContain(`  f1-L5  phase sims, ${jobs}:5: exit 3, 1 attempt\n`);
    const runDir = join(ws.dir, '.tasker', 'runs', 'wording');
    expect(result.stdout).toContain(`\nResults: ${join(runDir, 'results.jsonl')}\nLogs:    ${join(runDir, 'logs')}\nResume with: `);
    expect(result.stdout.split('\n').at(-1)).toMatch(new RegExp(` run --resume wording --workdir ${ws.dir}$`));
    expect(readSummary(ws.dir, 'wording')).toMatchObject({ mode: 'local', totals: { commands: 3, succeeded: 2, failed: 1, interrupted: 0, skipped: 0 } });
  });

  it('a successful run says where its results and logs are', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'true\ntrue\n');
    const result = await runTasker(['run', '--run-id', 'fine', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(0);
    const runDir = join(ws.dir, '.tasker', 'runs', 'fine');
    expect(result.stdout).toMatch(/^Run fine finished in \S+: all 2 commands succeeded; tasker exit code 0\n/);
    // execa drops the last newline
    expect(result.stdout.endsWith(`\nResults: ${join(runDir, 'results.jsonl')}\nLogs:    ${join(runDir, 'logs')}`)).toBe(true);
    expect(existsSync(join(runDir, 'logs'))).toBe(true);
  });

  it('reads jobs from standard input given as -, and names a <(...) file\'s phase "jobs", not "63"', async () => {
    const ws = workspace();
    const piped = await execa(process.execPath, [taskerBin, 'run', '--run-id', 'piped', '--workdir', ws.dir, '-'], { input: 'true\ntrue\n', reject: false, env: { LOG_LEVEL: 'warn' } });
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/\n {2}stdin\s+local slots\s+succeeded\s+2\s/);
    const substituted = await execa('bash', ['-c', `"$0" "$1" run --run-id subst --workdir "$2" <(printf 'true\\n')`, process.execPath, taskerBin, ws.dir], {
      reject: false,
      env: { LOG_LEVEL: 'warn' },
    });
    expect(substituted.exitCode, substituted.stderr).toBe(0);
    expect(substituted.stdout).toMatch(/\n {2}jobs\s+local slots\s+succeeded\s+1\s/);
    expect(readSummary(ws.dir, 'subst').phases.map((phase) => phase.name)).toEqual(['jobs']);
  });

  it('on SIGINT, commands stopped while running are counted as interrupted, apart from those never started', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'bash ev.sh 30\nbash ev.sh 30\nbash ev.sh 30\nbash ev.sh 30\nbash ev.sh 30\n');
    const child = startTasker(['run', '-j', '2', '--run-id', 'stopped', '--workdir', ws.dir, '--kill-grace', '1s', jobs]);
    for (let i = 0; i < 200 && !(existsSync(ws.events) && readEvents(ws.events).filter((e) => e.event === 'start').length >= 2); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(130);
    const summary = readSummary(ws.dir, 'stopped') as ReturnType<typeof readSummary> & { totals: Record<string, number> };
    expect(summary.totals).toEqual({ commands: 5, succeeded: 0, alreadyDone: 0, failed: 0, interrupted: 2, skipped: 3 });
    expect(summary.phases[0]).toMatchObject({ status: 'interrupted', interrupted: 2, skipped: 3 });
    const lines = String(result.stdout).split('\n');
    expect(lines[0]).toMatch(/^Run stopped interrupted after \S+: 2 interrupted while running, 3 not run; tasker exit code 130$/);
    expect(lines[1]).toMatch(/^ {2}phase\s+runs on\s+status\s+done\s+failed\s+interrupted\s+not run\s+duration$/);
    expect(lines[2]).toMatch(/^ {2}jobs\.sh\s+local slots\s+interrupted\s+0\s+0\s+2\s+3\s/);
  });
});
