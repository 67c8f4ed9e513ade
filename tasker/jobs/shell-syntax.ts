import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JobsFileError } from '../../shared/errors.js';
import { createScratchDir, removeScratchDir } from './scratch-dirs.js';
import { findShell } from '../../shared/exec/executor.js';
import { parseSimpleCommand } from '../../shared/exec/simple-command.js';

/**
 * Checks that the shell can parse every command of a jobs file before anything runs: an
 * unterminated quote on line 50 000 must not be found after 49 999 commands ran.
 */

export interface CommandLine {
  line: number;
  text: string;
}

export interface SyntaxCheckOptions {
  /** Shell to check with. Default: the executor's (bash from PATH, else sh). */
  shell?: string;
  /** The environment commands run with: its PATH finds the shell, its BASH_ENV turns the check off. */
  env: Record<string, string | undefined>;
}

function needsCheck(text: string): boolean {
  return !text.includes('<<') && parseSimpleCommand(text) === undefined;
}

function wrapped(index: number, text: string): string {
  return `__tasker_syntax_${index}() {\n${text}\n}\n`;
}

/** Runs `shell -n ARGS`; resolves with the shell's complaint, or undefined when everything parses. */
async function parseOnly(shell: string, args: string[], searchPath: string): Promise<string | undefined> {
  // Only PATH: nothing in the environment should change how the shell parses.
  const child = spawn(shell, ['-n', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: searchPath } });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return code === 0 ? undefined : stderr.trim() || `${shell} -n exited ${code ?? 'on a signal'}`;
}

/**
 * Parses the pieces as one script. They go through a file, not a pipe: bash reads a pipe one
 * byte at a time (it must not read past its own input), ten times slower.
 */
async function parseScript(shell: string, path: string, pieces: string[], searchPath: string): Promise<string | undefined> {
  await writeFile(path, pieces.join(''));
  return parseOnly(shell, [path], searchPath);
}

/** The shell's message without its "FILE: line 1: " prefixes, on one line. */
function cleanMessage(message: string): string {
  return message
    .split('\n')
    .map((line) => line.replace(/^[^:]*: (line \d+: )?/, '').trim())
    .filter((line) => line !== '')
    .join('; ');
}

export interface ShellSyntaxCheck {
  /** Notes one command; synchronous, so that the scan of the file feeds it as it reads. */
  add(command: CommandLine): void;
  /**
   * Parses every command added. Throws a JobsFileError naming the file, the line and the shell's
   * complaint for the first command it cannot parse; `again` reads the commands once more to find
   * it (that search holds one file's checked commands in memory). Removes the temporary files
   * either way.
   */
  finish(again: () => AsyncIterable<CommandLine>): Promise<void>;
  /** Removes the temporary files without checking (the scan failed). */
  discard(): Promise<void>;
}

/**
 * Starts a check of one jobs file's commands. One `bash -n` (the executor's shell; `-n` reads,
 * never executes) gets them all at once, each as the body of a function of its own, so one
 * command's syntax cannot leak into the next one's. Plain commands (no quotes, no shell syntax,
 * see simple-command.ts) cannot be wrong and are not sent. Nothing is checked when BASH_ENV is set
 * (it may turn on extglob or aliases, which change what parses), nor a command with a
 * here-document (it would swallow the lines after it). On a failure, a binary search over
 * prefixes finds the first command that fails, and that command alone (`bash -n -c COMMAND`,
 * exactly how it would run) gives the message: a command that parses alone is never refused.
 */
export async function startShellSyntaxCheck(file: string, options: SyntaxCheckOptions): Promise<ShellSyntaxCheck> {
  const env = options.env;
  const searchPath = env['PATH'] ?? '/usr/bin:/bin';
  if (env['BASH_ENV'] !== undefined && env['BASH_ENV'] !== '') {
    return { add: () => undefined, finish: () => Promise.resolve(), discard: () => Promise.resolve() };
  }
  const shell = options.shell ?? findShell(env['PATH']);
  const directory = await createScratchDir('tasker-syntax-');
  const script = join(directory, 'commands.sh');
  let fd: number | undefined = openSync(script, 'w');
  let count = 0;
  // Written in 64 KiB pieces: one write per command would cost more than bash's parse.
  let pending = '';
  const flush = (): void => {
    if (fd !== undefined && pending !== '') writeSync(fd, pending);
    pending = '';
  };
  const close = (): void => {
    flush();
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  const discard = async (): Promise<void> => {
    close();
    await removeScratchDir(directory);
  };

  async function locate(again: () => AsyncIterable<CommandLine>): Promise<void> {
    const checked: CommandLine[] = [];
    for await (const command of again()) if (needsCheck(command.text)) checked.push(command);
    // The first n commands fail together, the first n-1 do not: command n cannot parse on its own.
    let good = 0;
    let bad = checked.length;
    while (bad - good > 1) {
      const middle = Math.floor((good + bad) / 2);
      const failed = (await parseScript(shell, script, checked.slice(0, middle).map((command, index) => wrapped(index, command.text)), searchPath)) !== undefined;
      if (failed) bad = middle;
      else good = middle;
    }
    const culprit = checked[bad - 1];
    if (culprit === undefined) return; // the shell failed without a command to blame (cannot happen: the full set failed)
    // The command alone, as the executor would run it (a file, not -c: a command may exceed ARG_MAX).
    const alone = await parseScript(shell, script, [`${culprit.text}\n`], searchPath);
    // It parses alone, only not inside a function: the run would work, so let it.
    if (alone === undefined) return;
    throw new JobsFileError(file, culprit.line, `the shell cannot parse this command (${cleanMessage(alone)}); fix its quoting or brackets. Nothing has run`);
  }

  return {
    add(command) {
      if (fd === undefined || !needsCheck(command.text)) return;
      pending += wrapped(count++, command.text);
      if (pending.length >= 64 * 1024) flush();
    },
    async finish(again) {
      try {
        close();
        if (count === 0 || (await parseOnly(shell, [script], searchPath)) === undefined) return;
        await locate(again);
      } finally {
        await discard();
      }
    },
    discard,
  };
}

/** Checks the commands in one go (see ShellSyntaxCheck.finish); `commands` is read once, or twice on an error. */
export async function checkShellSyntax(file: string, commands: () => AsyncIterable<CommandLine>, options: SyntaxCheckOptions): Promise<void> {
  const check = await startShellSyntaxCheck(file, options);
  try {
    for await (const command of commands()) check.add(command);
  } catch (error) {
    await check.discard();
    throw error;
  }
  await check.finish(commands);
}
