import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { readTail } from './attempt-files.js';
import { outcomeOf } from './attempt-outcome.js';
import { defaultKillGraceMs, defaultTailBytes, type ExecuteRequest, type ExecutionResult } from './executor-contract.js';
import { GroupTermination, killGroup } from './process-group.js';
import type { AttemptMeter, ResourceMeter } from './resource-meter.js';
import { exitOfStatus, type RunnerReply } from './shell-runner-protocol.js';

/**
 * The log's tail, read by this process from a file the command could replace (its directory is the
 * commands' when they run as another user): never through a link, a FIFO or a second name of
 * another file, which would hand this process's own files (/proc/1/environ) to the result.
 */
function readLogTail(path: string, tailBytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return ''; // the runner could not create the log (its complaint went to onRunnerError), or a link
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.nlink !== 1) return '';
    return readTail(fd, tailBytes);
  } finally {
    closeSync(fd);
  }
}

/**
 * One request's life on a bash runner: handed over, started (the runner reports its pid), ended;
 * kills and the timeout in between. `settle` receives its one result.
 */
export class RunnerJob {
  private readonly termination: GroupTermination;
  /** killAllNow came before the runner reported the pid: SIGKILL it as soon as it does. */
  private killOnStart = false;
  /** When it was handed to a runner (fallback start time when bash has no EPOCHREALTIME). */
  private sentAtMs: number | undefined;
  private metered: AttemptMeter | undefined;

  constructor(
    private readonly request: ExecuteRequest,
    private readonly settle: (result: ExecutionResult) => void,
    private readonly meter?: ResourceMeter,
  ) {
    this.termination = new GroupTermination(request.killGraceMs ?? defaultKillGraceMs);
  }

  sent(): void {
    this.sentAtMs = Date.now();
  }

  onReply(reply: RunnerReply): void {
    if (reply.kind === 'started') this.started(reply.pid);
    else if (reply.kind === 'no-cwd') this.notStarted('spawn-error', `could not start the command: working directory ${this.request.cwd} does not exist`);
    else this.ended(reply);
  }

  kill(reason: string): void {
    this.termination.kill(reason); // before the pid is known: as soon as the runner reports it
  }

  /** SIGKILL at once, or as soon as the runner reports the pid. */
  killNow(): void {
    const pid = this.termination.pid;
    if (pid === undefined) this.killOnStart = true;
    else killGroup(pid, 'SIGKILL');
  }

  /** Its runner ended before the result arrived. */
  runnerEnded(description: string): void {
    // Its command may still run in its own group: stop it, it cannot be reported any more.
    const pid = this.termination.pid;
    if (pid !== undefined) killGroup(pid, 'SIGKILL');
    this.notStarted('spawn-error', `the command runner (bash) ended (${description}) before the command's result arrived`);
  }

  private started(pid: number): void {
    if (this.killOnStart) killGroup(pid, 'SIGKILL');
    this.termination.attach(pid);
    this.metered = this.meter?.begin(pid, this.request);
    this.termination.startTimeout(this.request.timeoutMs);
  }

  private ended(reply: Extract<RunnerReply, { kind: 'ended' }>): void {
    const { status, startedAtMs, finishedAtMs, cpuMs } = reply;
    const finishedAt = finishedAtMs ?? Date.now();
    const startedAt = startedAtMs ?? this.sentAtMs ?? finishedAt;
    const { exitCode, signal } = exitOfStatus(status);
    const measured = this.metered?.end({ signal, killedOnPurpose: this.termination.killedFor !== undefined, cpuMs });
    this.metered = undefined;
    const outcome = outcomeOf({ ...this.termination.ending(exitCode, signal), shellStatus: status });
    this.complete({
      exitCode,
      signal,
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date(finishedAt).toISOString(),
      durationMs: Math.max(0, finishedAt - startedAt),
      tail: reply.logged ? readLogTail(this.request.logPath, this.request.tailBytes ?? defaultTailBytes) : '',
      ...outcome,
      ...(measured?.reason === undefined ? {} : { reason: measured.reason }),
      ...(measured === undefined ? {} : { usage: measured.usage }),
    });
  }

  private notStarted(outcome: 'killed' | 'spawn-error', reason: string): void {
    const now = new Date().toISOString();
    this.complete({ outcome, exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason });
  }

  private complete(result: ExecutionResult): void {
    this.metered?.end({ signal: null, killedOnPurpose: true, cpuMs: null }); // ended unreported: stop watching
    this.metered = undefined;
    this.termination.stopTimeout();
    this.settle(result);
  }
}
