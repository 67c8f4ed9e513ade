import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { logDirMaker } from './attempt-files.js';
import type { CommandIdentity, ExecuteRequest, ExecutionResult, Executor, RunningCommand } from './executor-contract.js';
import { createResourceMeter, type ResourceMeter } from './resource-meter.js';
import { RunnerJob } from './shell-runner-job.js';
import { ShellRunner } from './shell-runner-process.js';
import { encodeRequest } from './shell-runner-protocol.js';

/**
 * The executor on long-lived bash "runners": one bash process per slot reads command requests
 * from a pipe and forks each command itself, in its own process group, stdout and stderr to the
 * attempt's log. Node never forks per command. The runner's script and its protocol are in
 * shell-runner-protocol.ts, one runner process in shell-runner-process.ts, one request's life on
 * a runner in shell-runner-job.ts.
 *
 * Why: fork() costs in proportion to the size of the process that forks. Measured on a 2-CPU
 * machine, Node's spawn() managed 713 `true`/s over 4 slots and ran 400 x `sleep 0.05` in 5.40 s
 * (ideal 5.00 s); bash runners driven the same way managed 1216/s and 5.30 s, the same as a bare
 * bash for-loop (5.28 s). The runner needs bash >= 4.1; without it the executor of
 * spawn-executor.ts (spawn() in a small helper process) is used.
 *
 * A runner is started whenever none is idle: callers bound how many commands run at once
 * (executor-slots.ts).
 */

export interface RunnerExecutorOptions {
  /** bash: the runners, and `-c` for commands with shell syntax. */
  shell: string;
  /** Run plain commands without a shell. Default: true. */
  directExec?: boolean;
  /** Base environment of every command. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Where the runners' own complaints go (never command output, which goes to the logs). */
  onRunnerError?: (message: string) => void;
  /** The runners, and so their commands, run as this user. Default: this process's. */
  user?: CommandIdentity;
  /** Measures what each command used (resource-meter.ts). Default: one of its own. */
  meter?: ResourceMeter;
}

export function createRunnerExecutor(options: RunnerExecutorOptions): Executor {
  const pool = new RunnerPool(options);
  return {
    start: (request) => pool.start(request),
    killAllNow: () => pool.killAllNow(),
  };
}

/** Hands each request to an idle runner (starting one when none is) and each reply to its job. */
class RunnerPool {
  private readonly env: NodeJS.ProcessEnv;
  private readonly directExec: boolean;
  private readonly runners: ShellRunner[] = [];
  /** The requests handed to a runner and not yet settled, by key. */
  private readonly jobs = new Map<number, RunnerJob>();
  private readonly makeLogDir: (logPath: string) => void;
  private readonly meter: ResourceMeter;
  private nextKey = 1;

  constructor(private readonly options: RunnerExecutorOptions) {
    // The runner creates the log as the commands' user: its directory must let it.
    this.makeLogDir = logDirMaker(options.user?.gid);
    this.env = { ...(options.env ?? process.env) };
    this.meter = options.meter ?? createResourceMeter();
    // bash reads BASH_ENV before every `bash -c`; running without bash -c would skip it.
    this.directExec = (options.directExec ?? true) && this.env['BASH_ENV'] === undefined;
  }

  start(request: ExecuteRequest): RunningCommand {
    this.makeLogDir(request.logPath);
    const key = this.nextKey++;
    const message = encodeRequest(key, request, this.options.shell, this.directExec);
    const result = new Promise<ExecutionResult>((resolve) => {
      const runner = this.runners.find((candidate) => candidate.idle) ?? this.startRunner();
      const job = new RunnerJob(request, (settled) => {
        this.jobs.delete(key);
        runner.release(key);
        resolve(settled);
      }, this.meter);
      this.jobs.set(key, job);
      job.sent();
      runner.send(key, message);
    });
    return {
      result,
      started: () => true,
      whenStarted: Promise.resolve(true),
      kill: (reason) => this.jobs.get(key)?.kill(reason),
    };
  }

  killAllNow(): void {
    // Every job in the map is on a runner: a runner that ends settles its job at once.
    for (const job of this.jobs.values()) job.killNow();
  }

  private startRunner(): ShellRunner {
    const runner: ShellRunner = new ShellRunner(
      { shell: this.options.shell, env: this.env, ...(this.options.user === undefined ? {} : { user: this.options.user }) },
      {
        onReply: (reply) => this.jobs.get(reply.key)?.onReply(reply),
        onComplaint: (line) => this.options.onRunnerError?.(line),
        onExit: (key, description) => {
          const index = this.runners.indexOf(runner);
          if (index >= 0) this.runners.splice(index, 1);
          if (key !== undefined) this.jobs.get(key)?.runnerEnded(description);
        },
      },
    );
    this.runners.push(runner);
    return runner;
  }
}

/**
 * Whether `shell` is a bash that can drive runners (the executor then uses them): bash 4.1 or
 * later, for `read -N` (macOS still ships bash 3.2 as /bin/bash; the spawn() executor runs there).
 * Asked once per path: one `bash -c` at start-up.
 */
export function isBash(shell: string): boolean {
  if (!/(^|\/)bash$/.test(shell) || !existsSync(shell)) return false;
  let capable = runnerCapable.get(shell);
  if (capable === undefined) {
    const asked = spawnSync(shell, ['-c', 'echo "${BASH_VERSINFO[0]} ${BASH_VERSINFO[1]}"'], { encoding: 'utf8', timeout: 10_000 });
    const [major = 0, minor = 0] = (asked.stdout ?? '').trim().split(' ').map(Number);
    capable = major > 4 || (major === 4 && minor >= 1);
    runnerCapable.set(shell, capable);
  }
  return capable;
}

const runnerCapable = new Map<string, boolean>();
