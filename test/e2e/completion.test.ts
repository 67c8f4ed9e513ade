import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { taskerBin, tempDir, workerBin } from '../helpers/cli.js';

/**
 * Shell completion, as a shell uses it: the script printed by `tasker completion bash` (and
 * `worker --completion bash`) is sourced into a real bash, and its function is asked to complete
 * a command line. zsh loads the same function through bashcompinit.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** What bash offers for the last word of `line` (an empty last word: a space was typed). */
async function complete(program: 'tasker' | 'worker', line: string[], cwd: string): Promise<string[]> {
  const load = program === 'tasker' ? `"${process.execPath}" "${taskerBin}" completion bash` : `"${process.execPath}" "${workerBin}" --completion bash`;
  const words = line.map((word) => `'${word}'`).join(' ');
  const script = `source <(${load}) || exit 9; COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _${program}_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = await execa('bash', ['-c', script], { cwd, reject: false, stdin: 'ignore' });
  expect(result.exitCode, String(result.stderr)).toBe(0);
  return String(result.stdout).split('\n').filter((word) => word !== '');
}

function workdir(): string {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  return temp.path;
}

describe('tasker completion bash', () => {
  it('completes subcommands, their options and the values of those options', async () => {
    const dir = workdir();
    expect(await complete('tasker', ['tasker', 'ru'], dir)).toEqual(['run', 'runs']);
    expect(await complete('tasker', ['tasker', 'run', '--ha'], dir)).toEqual(['--halt']);
    expect(await complete('tasker', ['tasker', 'run', '-j', '4', '--halt', ''], dir)).toEqual(['never', 'soon', 'now']);
    expect(await complete('tasker', ['tasker', 'run', '--log-level', 'f'], dir)).toEqual(['fatal']);
    expect(await complete('tasker', ['tasker', 'plan', '--split', ''], dir)).toEqual(['makita']);
    expect(await complete('tasker', ['tasker', 'completion', ''], dir)).toEqual(['bash', 'zsh']);
    expect(await complete('tasker', ['tasker', 'rep'], dir)).toEqual(['report']);
    expect(await complete('tasker', ['tasker', 'report', '--o'], dir)).toEqual(['--out']);
  });

  it('completes jobs files, directories and the run ids of the workdir', async () => {
    const dir = workdir();
    writeFileSync(join(dir, 'jobs.sh'), 'true\n');
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, '.tasker', 'runs', 'sims-1'), { recursive: true });
    const other = workdir();
    mkdirSync(join(other, '.tasker', 'runs', 'elsewhere'), { recursive: true });
    expect(await complete('tasker', ['tasker', 'run', 'jo'], dir)).toEqual(['jobs.sh']);
    expect(await complete('tasker', ['tasker', 'run', '--workdir', 'd'], dir)).toEqual(['data']);
    expect(await complete('tasker', ['tasker', 'status', ''], dir)).toEqual(['sims-1']);
    expect(await complete('tasker', ['tasker', 'report', ''], dir)).toEqual(['sims-1']);
    expect(await complete('tasker', ['tasker', 'report', '--out', 'jo'], dir)).toEqual(['jobs.sh']);
    expect(await complete('tasker', ['tasker', 'run', '--resume', 's'], dir)).toEqual(['sims-1']);
    expect(await complete('tasker', ['tasker', 'status', '--workdir', other, ''], dir)).toEqual(['elsewhere']);
  });
});

describe('worker --completion bash', () => {
  it('completes the worker options and their values', async () => {
    const dir = workdir();
    expect(await complete('worker', ['worker', '--con'], dir)).toEqual(['--concurrency']);
    expect(await complete('worker', ['worker', '--log-level', 'w'], dir)).toEqual(['warn']);
  });
});

const hasZsh = (await execa('zsh', ['-fc', 'true'], { reject: false })).exitCode === 0;

describe('zsh', () => {
  it.skipIf(!hasZsh)(`loads both scripts through bashcompinit and registers the completion functions${hasZsh ? '' : ' (skipped: zsh is not installed)'}`, async () => {
    const script = [
      `source <("${process.execPath}" "${taskerBin}" completion zsh) || exit 9`,
      `source <("${process.execPath}" "${workerBin}" --completion zsh) || exit 9`,
      'print -r -- "${_comps[tasker]}|${_comps[worker]}"',
      // Outside a completion widget zsh's compgen does not filter by the word; zsh itself does.
      'setopt ksharrays; COMP_WORDS=(tasker run --halt ""); COMP_CWORD=3; _tasker_complete; print -r -- "${COMPREPLY[*]}"',
    ].join('\n');
    const result = await execa('zsh', ['-fc', script], { reject: false, stdin: 'ignore', env: { HOME: workdir() } });
    expect(result.exitCode, String(result.stderr)).toBe(0);
    expect(String(result.stdout).split('\n')).toEqual(['_bash_complete -o filenames -F _tasker_complete|_bash_complete -o filenames -F _worker_complete', 'never soon now']);
  });
});
