import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, fstatSync, mkdirSync, open, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseSimpleCommand } from './simple-command.js';

/**
 * Runs one command attempt: `bash -c COMMAND` (sh when bash is absent) in its own process
 * group, stdout and stderr to one log file. A non-zero exit is a result, never an exception.
 * This is the only module that starts command processes; tasker and worker both use it.
 *
 * Commands go straight to child_process.spawn rather than through execa: measured here, execa's
 * option handling costs about 0.7 ms per call (640 spawns/s against 1050/s), which alone misses the
 * throughput targets for short commands. Plain commands (no shell syntax, see simple-command.ts)
 * skip bash too, which halves the cost again.
 */

/** `upload-failed`: the command succeeded, its outputs could not be uploaded (outputs.ts). */
export type Outcome = 'succeeded' | 'failed' | 'timed-out' | 'killed' | 'spawn-error' | 'upload-failed';

export interface ExecuteRequest {
  command: string;
  /** The command's working directory. */
  cwd: string;
  /** Log file for this attempt; created or truncated, with its directory. */
  logPath: string;
  /** Added to the process environment (TASKER_RUN_ID and friends). */
  env: Record<string, string>;
  /** Kill the process group after this long. Default: no limit. */
  timeoutMs?: number | undefined;
  /** Between SIGTERM and SIGKILL of the process group. Default: 10 s. */
  killGraceMs?: number | undefined;
  /** How much of the end of the log to return. Default: 4 KiB. */
  tailBytes?: number | undefined;
}

export interface ExecutionResult {
  outcome: Outcome;
  /** null when the command was ended by a signal or never started. */
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Last bytes of the combined output. */
  tail: string;
  /** Why it did not succeed, in words. */
  reason?: string;
  /** Object keys of the outputs uploaded after it succeeded. */
  uploaded?: string[];
}

export interface RunningCommand {
  result: Promise<ExecutionResult>;
  /** False while it waits for a free slot (executor-slots.ts): killing it then ends it unrun. */
  started(): boolean;
  /** Ends the command's process group: SIGTERM, then SIGKILL after the grace. Idempotent. */
  kill(reason: string): void;
}

export interface Executor {
  start(request: ExecuteRequest): RunningCommand;
  /** SIGKILLs every running command's process group at once (a second Ctrl-C). */
  killAllNow(): void;
}

export interface ExecutorOptions {
  /** Shell for commands. Default: bash from PATH, else sh. */
  shell?: string;
  /** Run plain commands without a shell. Default: true. */
  directExec?: boolean;
  /** Base environment of every command. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
}

/** Commands longer than this go through a script file: Linux limits one argument to 128 KiB. */
const maxArgumentBytes = 64 * 1024;
export const defaultKillGraceMs = 10_000;
export const defaultTailBytes = 4096;

/** How an attempt that ran ended, in the terms of a result (both executors decide it here). */
export interface Ending {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Why it was killed on purpose (timeout, interrupt, shutdown); undefined when it was not. */
  killedFor: string | undefined;
  /** The raw status as a shell reports it (128+n for signal n), when that is all that is known. */
  shellStatus?: number;
}

export function outcomeOf(ending: Ending): Pick<ExecutionResult, 'outcome' | 'reason'> {
  const { exitCode, signal, killedFor } = ending;
  if (ending.timedOut) return { outcome: 'timed-out', reason: killedFor ?? 'timed out' };
  if (killedFor !== undefined && exitCode !== 0) return { outcome: 'killed', reason: killedFor };
  if (exitCode === 0) return { outcome: 'succeeded' };
  if (signal !== null) {
    // A shell reports signal n as 128+n, which a program may also exit with itself: say both.
    return { outcome: 'failed', reason: `killed by ${signal}${ending.shellStatus === undefined ? '' : ` (exit status ${ending.shellStatus})`}` };
  }
  return { outcome: 'failed', reason: `exit code ${exitCode}` };
}

/** Creates a log's directory the first time it is seen. */
export function logDirMaker(): (logPath: string) => void {
  const made = new Set<string>();
  return (logPath) => {
    const dir = dirname(logPath);
    if (made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    made.add(dir);
  };
}

/** A command too long for one argument goes into a script file beside its log; returns its path. */
export function writeCommandScript(request: ExecuteRequest): string {
  const scriptPath = `${request.logPath}.command.sh`;
  writeFileSync(scriptPath, request.command);
  return scriptPath;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false; // absent or not executable: the caller tries the next candidate
  }
}

/** bash from PATH (or /bin/bash), else sh. */
export function findShell(pathVariable: string | undefined): string {
  const dirs = (pathVariable ?? '').split(':').filter((dir) => dir !== '');
  for (const name of ['bash', 'sh']) {
    for (const dir of [...dirs, '/bin', '/usr/bin']) {
      const candidate = `${dir}/${name}`;
      if (isExecutable(candidate)) return candidate;
    }
  }
  return '/bin/sh';
}

/** A raw descriptor (not a FileHandle, which would close itself on garbage collection). */
function openAsync(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'w+', (error, fd) => (error === null ? resolve(fd) : reject(error))));
}

/** Signals a command's whole process group; a group already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted
  }
}

/** The last `tailBytes` of an open log, as text. */
export function readTail(fd: number, tailBytes: number): string {
  const size = fstatSync(fd).size;
  if (size === 0 || tailBytes <= 0) return '';
  const length = Math.min(size, tailBytes);
  const buffer = Buffer.alloc(length);
  const read = readSync(fd, buffer, 0, length, size - length);
  const text = buffer.subarray(0, read).toString('utf8');
  // A multi-byte character cut at the start decodes as U+FFFD: drop it.
  return size > length ? text.replace(/^\uFFFD+/, '') : text;
}

export function createExecutor(options: ExecutorOptions = {}): Executor {
  const baseEnv: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const shell = options.shell ?? findShell(baseEnv['PATH']);
  // bash reads BASH_ENV before every `bash -c`; running without bash would skip it.
  const directExec = (options.directExec ?? true) && baseEnv['BASH_ENV'] === undefined;

  const runningGroups = new Set<number>();
  const makeLogDir = logDirMaker();

  function start(request: ExecuteRequest): RunningCommand {
    const env = { ...baseEnv, ...request.env };
    makeLogDir(request.logPath);

    let argv: string[];
    const simple = directExec ? parseSimpleCommand(request.command) : undefined;
    if (simple !== undefined) {
      argv = simple;
    } else if (Buffer.byteLength(request.command) > maxArgumentBytes) {
      argv = [shell, writeCommandScript(request)];
    } else {
      argv = [shell, '-c', request.command];
    }

    let pid: number | undefined;
    let killedFor: string | undefined;
    let timedOut = false;
    let timeoutTimer: NodeJS.Timeout | undefined;

    const terminate = (reason: string): void => {
      if (killedFor !== undefined) return;
      killedFor = reason;
      if (pid === undefined) return;
      killGroup(pid, 'SIGTERM');
      // The group may outlive its leader (background children): KILL it after the grace either way.
      setTimeout(() => killGroup(pid!, 'SIGKILL'), request.killGraceMs ?? defaultKillGraceMs).unref();
    };

    // Creating a file costs ~0.5 ms on some disks: open it off the main thread, which is then free
    // to start another command meanwhile.
    const result = openAsync(request.logPath).then((logFd) => new Promise<ExecutionResult>((resolve) => {
      const startedAtMs = Date.now();
      const finish = (exitCode: number | null, signal: string | null, spawnError?: Error): void => {
        if (timeoutTimer !== undefined) clearTimeout(timeoutTimer);
        if (pid !== undefined) runningGroups.delete(pid);
        const finishedAtMs = Date.now();
        let tail: string;
        try {
          tail = readTail(logFd, request.tailBytes ?? defaultTailBytes);
        } finally {
          // Closed synchronously: the descriptor must not outlive the result.
          closeSync(logFd);
        }
        const base = {
          exitCode,
          signal,
          startedAt: new Date(startedAtMs).toISOString(),
          finishedAt: new Date(finishedAtMs).toISOString(),
          durationMs: finishedAtMs - startedAtMs,
          tail,
        };
        if (spawnError !== undefined) {
          const why = existsSync(request.cwd) ? spawnError.message : `working directory ${request.cwd} does not exist`;
          resolve({ ...base, outcome: 'spawn-error', reason: `could not start the command: ${why}` });
        } else {
          resolve({ ...base, ...outcomeOf({ exitCode, signal, timedOut, killedFor }) });
        }
      };

      const launch = (args: string[], fallbackToShell: boolean): void => {
        const child = spawn(args[0]!, args.slice(1), {
          cwd: request.cwd,
          env,
          stdio: ['ignore', logFd, logFd],
          detached: true, // own process group, so a timeout can end everything the command started
        });
        pid = child.pid;
        if (pid !== undefined) runningGroups.add(pid);
        child.once('error', (error: NodeJS.ErrnoException) => {
          if (child.pid !== undefined) return; // errors after start (kill failures) are not the command's result
          if (fallbackToShell && error.code === 'ENOENT') {
            // Let the shell report "command not found" (exit 127) in the log, exactly as without the shortcut.
            launch([shell, '-c', request.command], false);
            return;
          }
          finish(null, null, error);
        });
        // Finish on the next turn of the event loop: settling right inside the exit callback lets the
        // next spawn run in the same callback chain, which keeps every ChildProcess alive (memory grows
        // per command) and starves signal handling (Ctrl-C is not seen until the phase ends).
        child.once('exit', (code, signal) => setImmediate(() => finish(code, signal)));
        if (pid !== undefined && killedFor !== undefined) {
          const reason = killedFor;
          killedFor = undefined;
          terminate(reason);
        }
      };

      if (request.timeoutMs !== undefined) {
        timeoutTimer = setTimeout(() => {
          timedOut = true;
          terminate(`timed out after ${request.timeoutMs} ms`);
        }, request.timeoutMs);
      }
      launch(argv, simple !== undefined);
    }));

    return { result, started: () => true, kill: terminate };
  }

  return {
    start,
    killAllNow() {
      for (const pid of runningGroups) killGroup(pid, 'SIGKILL');
    },
  };
}
