import { spawn } from 'node:child_process';
import { closeSync, existsSync } from 'node:fs';
import { logDirMaker, openLogAsync, readTail, writeCommandScript } from './attempt-files.js';
import { outcomeOf } from './attempt-outcome.js';
import { defaultKillGraceMs, defaultTailBytes, type ExecuteRequest, type ExecutionResult, type Executor, type ExecutorOptions } from './executor-contract.js';
import { GroupTermination, killGroup } from './process-group.js';
import { createResourceMeter, type AttemptMeter, type ResourceMeter } from './resource-meter.js';
import { findShell } from './shell-lookup.js';
import { parseSimpleCommand } from './simple-command.js';

/**
 * Runs one command attempt: `bash -c COMMAND` (sh when bash is absent) in its own process
 * group, stdout and stderr to one log file. A non-zero exit is a result, never an exception.
 * This executor and the bash runners of shell-runner.ts are the only code that starts command
 * processes; tasker and worker both use them through command-executor.ts.
 *
 * Commands go straight to child_process.spawn rather than through execa: measured here, execa's
 * option handling costs about 0.7 ms per call (640 spawns/s against 1050/s), which alone misses the
 * throughput targets for short commands. Plain commands (no shell syntax, see simple-command.ts)
 * skip bash too, which halves the cost again.
 */

/** Commands longer than this go through a script file: Linux limits one argument to 128 KiB. */
const maxArgumentBytes = 64 * 1024;

/** The argv that runs a request; `direct` when it skips the shell (a missing program then falls back to it). */
function commandArgv(request: ExecuteRequest, shell: string, directExec: boolean): { argv: string[]; direct: boolean } {
  const simple = directExec ? parseSimpleCommand(request.command) : undefined;
  if (simple !== undefined) return { argv: simple, direct: true };
  if (Buffer.byteLength(request.command) > maxArgumentBytes) return { argv: [shell, writeCommandScript(request)], direct: false };
  return { argv: [shell, '-c', request.command], direct: false };
}

export function createExecutor(options: ExecutorOptions = {}): Executor {
  const baseEnv: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const shell = options.shell ?? findShell(baseEnv['PATH']);
  // bash reads BASH_ENV before every `bash -c`; running without bash would skip it.
  const directExec = (options.directExec ?? true) && baseEnv['BASH_ENV'] === undefined;

  const runningGroups = new Set<number>();
  const makeLogDir = logDirMaker();
  // No CPU time here: Node reports no child's rusage. Memory is sampled as with the runners.
  const meter = createResourceMeter();

  return {
    start(request) {
      const env = { ...baseEnv, ...request.env };
      makeLogDir(request.logPath);
      const { argv, direct } = commandArgv(request, shell, directExec);
      const termination = new GroupTermination(request.killGraceMs ?? defaultKillGraceMs);
      // Creating a file costs ~0.5 ms on some disks: open it off the main thread, which is then free
      // to start another command meanwhile.
      const result = openLogAsync(request.logPath).then(
        (logFd) =>
          new Promise<ExecutionResult>((resolve) => {
            new SpawnedAttempt({ request, env, shell, logFd, termination, runningGroups, meter, resolve }).begin(argv, direct);
          }),
      );
      return { result, started: () => true, whenStarted: Promise.resolve(true), kill: (reason) => termination.kill(reason) };
    },
    killAllNow() {
      for (const pid of runningGroups) killGroup(pid, 'SIGKILL');
    },
  };
}

interface AttemptContext {
  request: ExecuteRequest;
  /** The command's whole environment. */
  env: NodeJS.ProcessEnv;
  shell: string;
  /** The attempt's open log; closed when it finishes. */
  logFd: number;
  termination: GroupTermination;
  /** The executor's running process groups, for killAllNow: the attempt adds and removes its own. */
  runningGroups: Set<number>;
  meter: ResourceMeter;
  resolve: (result: ExecutionResult) => void;
}

/** One attempt once its log is open: spawn (with the shell fallback), then the result. */
class SpawnedAttempt {
  private readonly startedAtMs = Date.now();
  private metered: AttemptMeter | undefined;

  constructor(private readonly context: AttemptContext) {}

  begin(argv: string[], fallbackToShell: boolean): void {
    this.context.termination.startTimeout(this.context.request.timeoutMs);
    this.launch(argv, fallbackToShell);
  }

  private launch(args: string[], fallbackToShell: boolean): void {
    const { request, env, shell, logFd, termination, runningGroups } = this.context;
    const child = spawn(args[0]!, args.slice(1), {
      cwd: request.cwd,
      env,
      stdio: ['ignore', logFd, logFd],
      detached: true, // own process group, so a timeout can end everything the command started
    });
    if (child.pid !== undefined) {
      runningGroups.add(child.pid);
      this.metered = this.context.meter.begin(child.pid, request);
    }
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // errors after start (kill failures) are not the command's result
      if (fallbackToShell && error.code === 'ENOENT') {
        // Let the shell report "command not found" (exit 127) in the log, exactly as without the shortcut.
        this.launch([shell, '-c', request.command], false);
        return;
      }
      this.finish(null, null, error);
    });
    // Finish on the next turn of the event loop: settling right inside the exit callback lets the
    // next spawn run in the same callback chain, which keeps every ChildProcess alive (memory grows
    // per command) and starves signal handling (Ctrl-C is not seen until the phase ends).
    child.once('exit', (code, signal) => setImmediate(() => this.finish(code, signal)));
    // A kill that came while the log was opening is carried out now.
    if (child.pid !== undefined) termination.attach(child.pid);
  }

  private finish(exitCode: number | null, signal: string | null, spawnError?: Error): void {
    const { request, logFd, termination, runningGroups, resolve } = this.context;
    termination.stopTimeout();
    if (termination.pid !== undefined) runningGroups.delete(termination.pid);
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
      startedAt: new Date(this.startedAtMs).toISOString(),
      finishedAt: new Date(finishedAtMs).toISOString(),
      durationMs: finishedAtMs - this.startedAtMs,
      tail,
    };
    if (spawnError !== undefined) {
      const why = existsSync(request.cwd) ? spawnError.message : `working directory ${request.cwd} does not exist`;
      resolve({ ...base, outcome: 'spawn-error', reason: `could not start the command: ${why}` });
    } else {
      const measured = this.metered?.end({ signal, killedOnPurpose: termination.killedFor !== undefined, cpuMs: null });
      const usage = measured === undefined ? {} : { usage: measured.usage, ...(measured.reason === undefined ? {} : { reason: measured.reason }) };
      resolve({ ...base, ...outcomeOf(termination.ending(exitCode, signal)), ...usage });
    }
  }
}
