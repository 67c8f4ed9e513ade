import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { logLevels } from '../../shared/config/config-values.js';
import { repoRoot, runTasker, workerBin } from '../helpers/cli.js';

/** What a new user reads first: --help of each command, and the version. */

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

async function runWorker(args: string[]) {
  const result = await execa(process.execPath, [workerBin, ...args], { cwd: repoRoot, reject: false, timeout: 30_000, stdin: 'ignore', env: { AMQP_URL: undefined } });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The example lines of a help text (after each "# what it does" line). */
function examplesOf(help: string): string[] {
  const section = help.split('Examples:\n')[1]?.split('\n\n')[0] ?? '';
  return section.split('\n').filter((line) => !line.trimStart().startsWith('#')).map((line) => line.trim());
}

describe('help', () => {
  it.each([['run'], ['plan'], ['status'], ['cancel'], ['purge'], ['runs'], ['report']])('tasker %s --help shows examples, as the user started us, and the exit codes', async (command) => {
    const result = await runTasker([command, '--help']);
    expect(result.exitCode).toBe(0);
    const examples = examplesOf(result.stdout);
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) expect(example).toMatch(new RegExp(`^(\\w+=\\S+ )*node bin/tasker\\.js ${command}\\b`));
    expect(result.stdout).toMatch(/\nExit codes:\n {2}0 {4}\S/);
    expect(result.stdout).toMatch(/\n {2}2 {4}\S/);
  });

  it('worker --help shows examples and the exit codes', async () => {
    const result = await runWorker(['--help']);
    expect(result.exitCode).toBe(0);
    const examples = examplesOf(result.stdout);
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) expect(example).toMatch(/^(\w+=\S+ )*node bin\/worker\.js /);
    expect(result.stdout).toMatch(/\nExit codes:\n {2}0 {4}\S/);
  });

  it('worker -V and --version print the version, like tasker -V', async () => {
    for (const flag of ['-V', '--version']) {
      const result = await runWorker([flag]);
      expect({ exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr }).toEqual({ exitCode: 0, stdout: version, stderr: '' });
    }
    const tasker = await runTasker(['-V']);
    expect(tasker.stdout).toBe(version);
  });

  it('--log-level lists every level, for tasker run and worker', async () => {
    for (const help of [(await runTasker(['run', '--help'])).stdout, (await runWorker(['--help'])).stdout]) {
      const text = help.split('--log-level <level>')[1]!.split(/\n {2}-/)[0]!.replace(/\s+/g, ' ');
      for (const level of logLevels) expect(text).toContain(level);
    }
  });

  it('shows no "(default: [])" for the repeatable --stage', async () => {
    const help = (await runTasker(['run', '--help'])).stdout;
    expect(help).toContain('--stage <path>');
    expect(help).not.toContain('(default: [])');
  });
});
