import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readResults, readSummary, runTasker, tempDir } from '../helpers/cli.js';

/** `--halt soon|now`: stop a run at its first command that fails for good (GNU parallel's --halt soon,fail=1 / now,fail=1). */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function workspace(jobs: string): { dir: string; jobs: string } {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  writeFileSync(join(temp.path, 'jobs.sh'), jobs);
  return { dir: temp.path, jobs: join(temp.path, 'jobs.sh') };
}

const sequential = 'true\nexit 3\ntouch a1\ntouch a2\n# phase: next\ntouch n1\n';

describe('--halt', () => {
  it('without it, a phase runs every command after a failure', async () => {
    const ws = workspace(sequential);
    const result = await runTasker(['run', '-j', '1', '--run-id', 'all', '--workdir', ws.dir, ws.jobs], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(1);
    expect([existsSync(join(ws.dir, 'a1')), existsSync(join(ws.dir, 'a2'))]).toEqual([true, true]);
  });

  it('soon: after the first failure nothing more starts; the run fails with exit 1', async () => {
    const ws = workspace(sequential);
    const result = await runTasker(['run', '-j', '1', '--halt', 'soon', '--run-id', 'soon', '--workdir', ws.dir, ws.jobs], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(result.stderr).toContain('halting: starting no more commands');
    expect(['a1', 'a2', 'n1'].filter((name) => existsSync(join(ws.dir, name)))).toEqual([]);
    expect(readResults(ws.dir, 'soon').map((r) => [r.id, r.outcome])).toEqual([['f1-L1', 'succeeded'], ['f1-L2', 'failed']]);
    const summary = readSummary(ws.dir, 'soon');
    expect(summary.status).toBe('failed');
    expect(summary.phases.map((p) => [p.name, p.status, p.succeeded, p.failed, p.skipped])).toEqual([
      ['jobs.sh', 'failed', 1, 1, 2],
      ['next', 'skipped', 0, 0, 1],
    ]);
  });

  it('now: the first failure also stops the running commands, recorded as interrupted (they run again on resume)', async () => {
    const ws = workspace('sleep 30; touch slow\nsleep 0.3; exit 3\ntouch a1\n');
    const result = await runTasker(['run', '-j', '2', '--halt', 'now', '--kill-grace', '1s', '--run-id', 'now', '--workdir', ws.dir, ws.jobs], { env: { AMQP_URL: '' } });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(existsSync(join(ws.dir, 'slow'))).toBe(false);
    expect(existsSync(join(ws.dir, 'a1'))).toBe(false);
    expect(readResults(ws.dir, 'now').map((r) => [r.id, r.outcome]).sort()).toEqual([['f1-L1', 'interrupted'], ['f1-L2', 'failed']]);
    const summary = readSummary(ws.dir, 'now');
    expect(summary.status).toBe('failed');
    expect(summary.failed.map((f) => f.id)).toEqual(['f1-L2']);
  });

  it('refuses a mode it does not know, and --halt with --keep-going, before anything runs', async () => {
    const ws = workspace('touch ran\n');
    const unknown = await runTasker(['run', '--halt', 'later', '--workdir', ws.dir, ws.jobs], { env: { AMQP_URL: '' } });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('--halt must be one of: never, soon, now; got "later"');
    const both = await runTasker(['run', '--halt', 'now', '--keep-going', '--workdir', ws.dir, ws.jobs], { env: { AMQP_URL: '' } });
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('--halt now stops the run at the first failure and --keep-going runs on after failures');
    expect(existsSync(join(ws.dir, 'ran'))).toBe(false);
  });
});
