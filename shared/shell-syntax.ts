import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobsFileError } from './errors.js';
import { findShell } from './executor.js';
import { parseSimpleCommand } from './simple-command.js';

/**
 * Checks that the shell can parse every command of a jobs file before anything runs: an
 * unterminated quote on line 50 000 must not be found after 49 999 commands ran. One `bash -n`
 * (the shell the executor uses; `-n` reads, never executes) gets all commands at once, each as
 * the body of a function of its own, so one command's syntax cannot leak into the next one's.
 *
 * Cheap: plain commands (no quotes, no shell syntax, see simple-command.ts) cannot be wrong and
 * are not sent; a makita file sends almost nothing. Skipped when BASH_ENV is set (it may turn on
 * extglob or aliases, which change what parses) and for commands with a here-document, which
 * would swallow the lines after it.
 *
 * On a failure, a binary search over prefixes finds the first command that fails, and that
 * command alone (`bash -n -c COMMAND`, exactly how it would run) gives the message; a command
 * that parses alone is never refused. That pass holds the checked commands of one file in memory.
 */

export interface CommandLine {
  line: number;
  text: string;
}

export interface SyntaxCheckOptions {
  /** Shell to check with. Default: the executor's (bash from PATH, else sh). */
  shell?: string;
  env?: Record<string, string | undefined>;
}

function needsCheck(text: string): boolean {
  return !text.includes('<<') && parseSimpleCommand(text) === undefined;
}

function wrapped(index: number, text: string): string {
  return `__tasker_syntax_${index}() {\n${text}\n}\n`;
}

/** Runs `shell -n ARGS`; resolves with the shell's complaint, or undefined when everything parses. */
async function parseOnly(shell: string, args: string[]): Promise<string | undefined> {
  // Only PATH: nothing in the environment should change how the shell parses.
  const child = spawn(shell, ['-n', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
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
async function parseScript(shell: string, directory: string, pieces: Iterable<string> | AsyncIterable<string>): Promise<string | undefined> {
  const path = join(directory, 'commands.sh');
  const out = createWriteStream(path);
  const failed = once(out, 'error').then(([error]) => Promise.reject(error as Error));
  failed.catch(() => undefined); // raced below; a write error surfaces there
  for await (const piece of pieces) {
    if (!out.write(piece)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return parseOnly(shell, [path]);
}

/** The shell's message without its "FILE: line 1: " prefixes, on one line. */
function cleanMessage(message: string): string {
  return message
    .split('\n')
    .map((line) => line.replace(/^[^:]*: (line \d+: )?/, '').trim())
    .filter((line) => line !== '')
    .join('; ');
}

/**
 * Throws a JobsFileError naming the file, the line and bash's complaint for the first command the
 * shell cannot parse. `commands` is called once, or again when there is an error to locate.
 */
export async function checkShellSyntax(file: string, commands: () => AsyncIterable<CommandLine>, options: SyntaxCheckOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  if (env['BASH_ENV'] !== undefined && env['BASH_ENV'] !== '') return;
  const shell = options.shell ?? findShell(env['PATH']);

  async function* pieces(): AsyncGenerator<string> {
    let index = 0;
    for await (const command of commands()) if (needsCheck(command.text)) yield wrapped(index++, command.text);
  }
  const directory = await mkdtemp(join(tmpdir(), 'tasker-syntax-'));
  try {
    if ((await parseScript(shell, directory, pieces())) === undefined) return;
    const checked: CommandLine[] = [];
    for await (const command of commands()) if (needsCheck(command.text)) checked.push(command);
    // The first n commands fail together, the first n-1 do not: command n cannot parse on its own.
    let good = 0;
    let bad = checked.length;
    while (bad - good > 1) {
      const middle = Math.floor((good + bad) / 2);
      const failed = (await parseScript(shell, directory, checked.slice(0, middle).map((command, index) => wrapped(index, command.text)))) !== undefined;
      if (failed) bad = middle;
      else good = middle;
    }
    const culprit = checked[bad - 1];
    if (culprit === undefined) return; // the shell failed without a command to blame (cannot happen: the full set failed)
    // The command alone, as the executor would run it (a file, not -c: a command may exceed ARG_MAX).
    const alone = await parseScript(shell, directory, [`${culprit.text}\n`]);
    // It parses alone, only not inside a function: the run would work, so let it.
    if (alone === undefined) return;
    throw new JobsFileError(file, culprit.line, `the shell cannot parse this command (${cleanMessage(alone)}); fix its quoting or brackets. Nothing has run`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
