import { symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { readSummary, repoRoot, taskerBin, tempDir } from '../helpers/cli.js';

/**
 * The summary of a failed run ends with "Resume with: ...". A new user copies that line: it must
 * work as they started us (npx tasker from a clone, node bin/tasker.js, tasker on the PATH).
 * Each test runs the printed line itself, through bash, after fixing the failing command.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Runs a line as a user's shell would: without the npm_* variables of the test runner's own npx. */
async function bash(script: string, cwd: string, env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_')));
  const result = await execa('bash', ['-c', script], { cwd, env: { ...base, LOG_LEVEL: 'warn', ...env }, extendEnv: false, reject: false, timeout: 90_000, stdin: 'ignore' });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

async function failThenResume(start: string, cwd: string, env: Record<string, string> = {}): Promise<string> {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  const workdir = join(temp.path, 'work dir');
  const jobs = join(temp.path, 'jobs.sh');
  writeFileSync(jobs, 'true\ntest -e fixed\n');
  const first = await bash(`${start} run --run-id hint --workdir '${workdir}' '${jobs}'`, cwd, env);
  expect(first.exitCode, first.stderr).toBe(1);
  const hint = /^Resume with: (.*)$/m.exec(first.stdout)?.[1];
  expect(hint, first.stdout).toMatch(/ run --resume hint /);
  writeFileSync(join(workdir, 'fixed'), '');
  const resumed = await bash(hint!, cwd, env);
  expect(resumed.exitCode, `${hint}\n${resumed.stderr}`).toBe(0);
  expect(readSummary(workdir, 'hint')).toMatchObject({ status: 'succeeded', totals: { alreadyDone: 1, succeeded: 1 } });
  return hint!;
}

describe('the resume hint', () => {
  it('works when started as node bin/tasker.js', async () => {
    const hint = await failThenResume('node bin/tasker.js', repoRoot);
    expect(hint).toMatch(/^node bin\/tasker\.js run --resume hint --workdir '.*\/work dir'$/);
  });

  it('works when tasker is on the PATH (npm link, a global install)', async () => {
    const bin = tempDir();
    cleanups.push(bin.cleanup);
    symlinkSync(taskerBin, join(bin.path, 'tasker'));
    const hint = await failThenResume('tasker', bin.path, { PATH: `${bin.path}${delimiter}${process.env['PATH']!}` });
    expect(hint).toMatch(/^tasker run --resume hint --workdir /);
  });

  it('works when started with npx from the clone', async () => {
    // --offline: npx must find the clone's own tasker, never ask the registry.
    const hint = await failThenResume('npx tasker', repoRoot, { npm_config_offline: 'true' });
    expect(hint).toMatch(/^npx tasker run --resume hint --workdir /);
  });
});
