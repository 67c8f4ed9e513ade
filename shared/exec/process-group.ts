import { formatDuration } from '../config/duration.js';
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
  /** The grace ran out before the attempt ended: its group got SIGKILL. */
  private graceExpired = false;
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
      this.kill(`timed out after ${formatDuration(timeoutMs)}`);
    }, timeoutMs);
  }

  stopTimeout(): void {
    if (this.timeoutTimer !== undefined) clearTimeout(this.timeoutTimer);
  }

  /** How the attempt ended, with what this termination knows (for outcomeOf). */
  ending(exitCode: number | null, signal: string | null): Ending {
    // One reason says it all: the user reads why it was stopped and that SIGTERM was not enough.
    const killedFor =
      this.killReason !== undefined && this.graceExpired && signal === 'SIGKILL'
        ? `${this.killReason}; did not stop within the ${formatDuration(this.killGraceMs)} kill grace after SIGTERM`
        : this.killReason;
    return { exitCode, signal, timedOut: this.timedOut, killedFor };
  }

  private signalGroup(pid: number): void {
    killGroup(pid, 'SIGTERM');
    // The group may outlive its leader (background children): KILL it after the grace either way.
    setTimeout(() => {
      this.graceExpired = true;
      killGroup(pid, 'SIGKILL');
    }, this.killGraceMs).unref();
  }
}
