import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readResults, readSummary, repoRoot, runTasker, taskerBin, tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/distributed.js';
import { hangUpWhen } from '../helpers/terminal.js';

/**
 * Closing the terminal a run was started in (SIGHUP) ends it as Ctrl-C does: its commands stopped
 * and recorded, the summary and report written, the run interrupted and resumable, exit 130; the
 * resume runs what was stopped, once.
 */

let temp: ReturnType<typeof tempDir>;
beforeEach(() => {
  temp = tempDir('tasker-hangup-');
});
afterEach(() => temp.cleanup());

describe('a closed terminal', () => {
  it('ends a local run like Ctrl-C: records, summary, report, interrupted, resumable', async () => {
    const dir = temp.path;
    const jobs = join(dir, 'jobs.sh');
    // Two long commands hold both slots (each marks that it started); the rest wait.
    const long = (n: number): string => `touch started-${n}; test -e resumed || sleep 60`;
    writeFileSync(jobs, `${[long(1), long(2), ...Array.from({ length: 6 }, (_, i) => `echo quick ${i}`)].join('\n')}\n`);
    const env = { AMQP_URL: '', REDIS_URL: '' };
    const closed = await hangUpWhen([process.execPath, taskerBin, 'run', '--run-id', 'hup', '--workdir', dir, '-j', '2', '--progress-interval', '1s', jobs], [join(dir, 'started-1'), join(dir, 'started-2')], env);
    expect(closed.waited, closed.output).toBe(true);
    expect(closed.exitCode, closed.output).toBe(130);
    const summary = readSummary(dir, 'hup');
    expect(summary.status).toBe('interrupted');
    expect(summary.exitCode).toBe(130);
    expect(readResults(dir, 'hup').map((r) => r.outcome)).toEqual(['interrupted', 'interrupted']);
    expect(existsSync(join(dir, '.tasker', 'runs', 'hup', 'report.html'))).toBe(true);

    writeFileSync(join(dir, 'resumed'), '');
    const resumed = await runTasker(['run', '--resume', 'hup', '--workdir', dir, jobs], { env, cwd: dir });
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(readSummary(dir, 'hup').status).toBe('succeeded');
  }, 120_000);

  it('sent to the whole process group (as a shell that loses its terminal does), with the spawn() executor: commands stopped and recorded interrupted, none left running', async () => {
    const dir = temp.path;
    const jobs = join(dir, 'jobs.sh');
    const marker = `hup-group-${process.pid}-${Date.now()}`;
    writeFileSync(jobs, `touch started-1; sleep 40 # ${marker}\ntouch started-2; sleep 41 # ${marker}\n`);
    // SHELLOPTS set: the bash runners cannot be used, commands go through the executor helper, in the tasker's process group.
    const child = spawn(process.execPath, [taskerBin, 'run', '--run-id', 'group', '--workdir', dir, '-j', '2', jobs], { cwd: repoRoot, detached: true, stdio: 'ignore', env: { ...process.env, AMQP_URL: '', REDIS_URL: '', SHELLOPTS: 'braceexpand' } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('both commands to start', () => existsSync(join(dir, 'started-1')) && existsSync(join(dir, 'started-2')), 30_000);
    process.kill(-child.pid!, 'SIGHUP');
    expect(await exited).toBe(130);
    expect(readResults(dir, 'group').map((r) => r.outcome)).toEqual(['interrupted', 'interrupted']);
    const left = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
    expect(left, 'commands still running after the run ended').toEqual([]);
  }, 60_000);
});
