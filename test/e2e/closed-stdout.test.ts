import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSummary, repoRoot, taskerBin, tempDir, workerBin } from '../helpers/cli.js';

/**
 * `tasker plan --json FILE | head`: the reader of stdout goes away before we are done writing.
 * Like other Unix tools we stop quietly; a run still finishes and exits with its own code.
 * The pipe's reading end is closed before the program writes anything, so every write fails.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function withClosedStdout(bin: string, args: string[], cwd: string): Promise<{ exitCode: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (exitCode) => resolve({ exitCode, stderr })));
}

function workspace(): string {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  return temp.path;
}

describe('a closed stdout', () => {
  it('ends tasker plan --json quietly with exit 0, however long the plan', async () => {
    const dir = workspace();
    writeFileSync(join(dir, 'jobs.txt'), Array.from({ length: 5000 }, (_, i) => `echo ${i}\n`).join(''));
    const result = await withClosedStdout(taskerBin, ['plan', '--json', 'jobs.txt'], dir);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it('ends help and version quietly, for tasker and worker', async () => {
    for (const [bin, args] of [[taskerBin, ['run', '--help']], [taskerBin, ['--version']], [workerBin, ['--help']]] as const) {
      const result = await withClosedStdout(bin, [...args], repoRoot);
      expect(result.stderr, `${args.join(' ')}`).toBe('');
      expect(result.exitCode, `${args.join(' ')}`).toBe(0);
    }
  });

  it('does not stop a run: it finishes, records everything and exits with its own code', async () => {
    const dir = workspace();
    writeFileSync(join(dir, 'jobs.txt'), 'true\nexit 4\ntrue\n');
    const result = await withClosedStdout(taskerBin, ['run', '-j', '2', '--run-id', 'piped', '--workdir', dir, join(dir, 'jobs.txt')], dir);
    expect(result.stderr).not.toMatch(/EPIPE|Error:/);
    expect(result.exitCode).toBe(1);
    expect(readSummary(dir, 'piped')).toMatchObject({ status: 'failed', totals: { succeeded: 2, failed: 1 } });
    expect(existsSync(join(dir, '.tasker', 'runs', 'piped', 'results.jsonl'))).toBe(true);
  });
});
