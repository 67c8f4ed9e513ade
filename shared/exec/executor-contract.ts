/**
 * The contract every executor keeps (spawn-executor.ts, shell-runner.ts, and the wrappers of
 * executor-process.ts and executor-slots.ts): what a command attempt is asked to do and what it
 * reports. Types and defaults only; executor.ts is where the rest of the project imports them from.
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
  /** What it used (resource-meter.ts); absent when it never started. */
  usage?: ResourceUsage;
}

/** What one attempt used, as measured by resource-meter.ts (how, and its error: docs/resources.md). */
export interface ResourceUsage {
  /** CPU time, user + system, of the command and the descendants it waited for; null: not measured. */
  cpuMs: number | null;
  /** Largest sampled sum of the resident memory of its process group; null: it ended before the first sample. */
  peakRssBytes: number | null;
  /** The kernel's OOM killer ended it (`memory.events` / `memory.oom_control` of its cgroup, else the signal and the last sample). */
  oomKilled?: boolean;
  /** The memory limit of the cgroup it ran in (the container's, the pod's); absent when none is set. */
  memoryLimitBytes?: number;
}

export interface RunningCommand {
  result: Promise<ExecutionResult>;
  /** False while it waits for a free slot (executor-slots.ts): killing it then ends it unrun. */
  started(): boolean;
  /** Resolves true once it starts, false when it ends without having started (killed while waiting). */
  whenStarted: Promise<boolean>;
  /** Ends the command's process group: SIGTERM, then SIGKILL after the grace. Idempotent. */
  kill(reason: string): void;
}

export interface StartOptions {
  /**
   * Asked when a slot is free, just before the command starts (executor-slots.ts): false ends it
   * unstarted, as `killed` (e.g. a worker that lost the command's lease while it waited or was
   * frozen). Return a boolean when the answer is known at once, so the start is not delayed.
   */
  beforeStart?: () => boolean | Promise<boolean>;
}

export interface Executor {
  start(request: ExecuteRequest, options?: StartOptions): RunningCommand;
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
  /**
   * Run commands as this user and group (command-user.ts): the processes that start them (bash
   * runners, the spawn() helper) are started so, and the logs' directories are given to the group.
   * Default: this process's own user.
   */
  user?: CommandIdentity;
}

/** Who commands run as, when not this process's own user. */
export interface CommandIdentity {
  uid: number;
  gid: number;
}

export const defaultKillGraceMs = 10_000;
export const defaultTailBytes = 4096;
