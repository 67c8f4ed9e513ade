import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterEach } from 'vitest';

/** Runs the built entry points as processes, the way a user or a pod does. */

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const taskerBin = join(repoRoot, 'bin', 'tasker.js');
export const workerBin = join(repoRoot, 'bin', 'worker.js');

export interface CliResult {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Starts the tasker; await the result for exit code and output, or kill() it first. */
export function startTasker(args: string[], options: CliOptions = {}) {
  return execa(process.execPath, [taskerBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { LOG_LEVEL: 'info', ...options.env },
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    stdin: 'ignore',
  });
}

export async function runTasker(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await startTasker(args, options);
  return { exitCode: result.exitCode, signal: result.signal, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'tasker-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ResultLine {
  id: string;
  phase: string;
  attempt: number;
  outcome: string;
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  finishedAt: string;
  log: string;
  worker: string;
  command: string;
  tail?: string;
  reason?: string;
  uploaded?: string[];
  /** How often the attempt started, when more than once. */
  starts?: number;
}

export function readResults(workdir: string, runId: string): ResultLine[] {
  return readFileSync(join(workdir, '.tasker', 'runs', runId, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ResultLine);
}

export function readSummary(workdir: string, runId: string): Record<string, unknown> & {
  status: string;
  exitCode: number;
  phases: { name: string; status: string; succeeded: number; failed: number; skipped: number; alreadyDone: number }[];
  failed: { id: string; exitCode: number | null; log: string; tail?: string }[];
} {
  return JSON.parse(readFileSync(join(workdir, '.tasker', 'runs', runId, 'summary.json'), 'utf8'));
}

export interface Workspace {
  dir: string;
  /** Writes DIR/NAME with `text`; returns its path. */
  jobs: (name: string, text: string) => string;
  /** Where ev.sh appends its lines. */
  events: string;
}

/**
 * Call once at the top of a test file: returns a maker of fresh workdirs holding ev.sh, each
 * removed after its test.
 */
export function useWorkspaces(): () => Workspace {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  return () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    writeEventScript(temp.path);
    return {
      dir: temp.path,
      jobs: (name, text) => {
        const path = join(temp.path, name);
        writeFileSync(path, text);
        return path;
      },
      events: join(temp.path, 'events.txt'),
    };
  };
}

/**
 * Writes DIR/ev.sh, the command the end-to-end tests run: `bash ev.sh SECONDS [EXIT_CODE]`.
 * It appends "start|end ID NANOS PARENT_PID SHELL_PID RUN_ID" lines to WORKDIR/events.txt, so
 * tests see what really ran, when, and under which parent; and prints "output of ID".
 */
export function writeEventScript(dir: string): void {
  const path = join(dir, 'ev.sh');
  writeFileSync(
    path,
    [
      '#!/bin/bash',
      'echo "start $TASKER_COMMAND_ID $(date +%s%N) $PPID $$ $TASKER_RUN_ID" >> "$TASKER_WORKDIR/events.txt"',
      'sleep "$1"',
      'echo "end $TASKER_COMMAND_ID $(date +%s%N) $PPID $$ $TASKER_RUN_ID" >> "$TASKER_WORKDIR/events.txt"',
      'echo "output of $TASKER_COMMAND_ID"',
      'exit "${2:-0}"',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
}

export interface Event {
  event: string;
  id: string;
  at: bigint;
  parent: number;
  pid: number;
  runId: string;
}

/** The lines ev.sh appended; none when it never ran. */
export function readEvents(path: string): Event[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [event, id, at, parent, pid, runId] = line.trim().split(/\s+/);
      return { event: event!, id: id!, at: BigInt(at!), parent: Number(parent), pid: Number(pid), runId: runId ?? '' };
    });
}
