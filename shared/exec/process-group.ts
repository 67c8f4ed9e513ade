import type { Ending } from './attempt-outcome.js';

/** Signals a command's whole process group; a group already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted
  }
}

/**
 * Ends one command's process group on purpose (a kill or its timeout): SIGTERM, then SIGKILL after
 * the grace. A kill that comes before the group's pid is known is carried out once it is (`attach`).
 * Both executors keep one per attempt; it also remembers why, for the attempt's outcome.
 */
export class GroupTermination {
  private groupPid: number | undefined;
  private killReason: string | undefined;
  private timedOut = false;
  private timeoutTimer: NodeJS.Timeout | undefined;

  constructor(private readonly killGraceMs: number) {}

  /** The process group, once known. */
  get pid(): number | undefined {
    return this.groupPid;
  }

  /** Why it was killed on purpose; undefined when it was not. */
  get killedFor(): string | undefined {
    return this.killReason;
  }

  /** Idempotent: the first reason stands. */
  kill(reason: string): void {
    if (this.killReason !== undefined) return;
    this.killReason = reason;
    if (this.groupPid !== undefined) this.signalGroup(this.groupPid);
  }

  /** The group exists now; a kill asked for before is carried out at once. */
  attach(pid: number): void {
    this.groupPid = pid;
    if (this.killReason !== undefined) this.signalGroup(pid);
  }

  /** Kills the group as timed out `timeoutMs` from now; undefined means no limit. */
  startTimeout(timeoutMs: number | undefined): void {
    if (timeoutMs === undefined) return;
    this.timeoutTimer = setTimeout(() => {
      this.timedOut = true;
      this.kill(`timed out after ${timeoutMs} ms`);
    }, timeoutMs);
  }

  stopTimeout(): void {
    if (this.timeoutTimer !== undefined) clearTimeout(this.timeoutTimer);
  }

  /** How the attempt ended, with what this termination knows (for outcomeOf). */
  ending(exitCode: number | null, signal: string | null): Ending {
    return { exitCode, signal, timedOut: this.timedOut, killedFor: this.killReason };
  }

  private signalGroup(pid: number): void {
    killGroup(pid, 'SIGTERM');
    // The group may outlive its leader (background children): KILL it after the grace either way.
    setTimeout(() => killGroup(pid, 'SIGKILL'), this.killGraceMs).unref();
  }
}
