import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import split2 from 'split2';
import { parseReply, runnerScript, type RunnerReply } from './shell-runner-protocol.js';

export interface ShellRunnerSettings {
  /** bash: runs the runner's script, and `-c` for commands with shell syntax. */
  shell: string;
  /** The commands' base environment; BASH_ENV in it goes to the commands only. */
  env: NodeJS.ProcessEnv;
}

export interface ShellRunnerEvents {
  /** A reply about a request the runner holds (running or queued); replies about any other are dropped. */
  onReply(reply: RunnerReply): void;
  /** A line the runner wrote to stderr (its own complaints; command output goes to the logs). */
  onComplaint(line: string): void;
  /** The runner ended: `keys` are the requests it held (running, then queued); `description` says how it ended. */
  onExit(keys: readonly number[], description: string): void;
}

/** One bash runner process (shell-runner-protocol.ts): runs one request at a time, and may hold one more queued behind it. */
export class ShellRunner {
  private readonly child: ChildProcess;
  /** Descriptor 5 of the runner: keys of requests to skip. */
  private readonly cancels: Writable;
  /** The requests it holds, in the order it runs them: the first runs (or is about to), the rest wait in its pipe. Empty while idle. */
  private readonly keys: number[] = [];

  constructor(settings: ShellRunnerSettings, events: ShellRunnerEvents) {
    // The runner must not read BASH_ENV itself (it could set options that break its loop); the
    // commands get it back.
    const { BASH_ENV: bashEnv, ...runnerEnv } = settings.env;
    const child = spawn(settings.shell, ['-c', runnerScript, 'tasker-runner', settings.shell, bashEnv === undefined ? '0' : '1', bashEnv ?? ''], {
      env: runnerEnv,
      // 3: the watchdog pipe; 4: the runner's own (its stderr while a command runs); 5: cancellations.
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'ignore', 'pipe'],
      detached: true, // out of the terminal's process group: Ctrl-C is the tasker's to handle
    });
    child.stdout!.pipe(split2()).on('data', (line: string) => {
      const reply = parseReply(line);
      if (reply !== undefined && this.keys.includes(reply.key)) events.onReply(reply);
    });
    child.stderr!.pipe(split2()).on('data', (line: string) => events.onComplaint(line));
    this.cancels = (child.stdio as unknown as (Writable | null)[])[5]!;
    child.stdin!.on('error', () => undefined); // the runner died; 'exit' reports it
    this.cancels.on('error', () => undefined);
    child.on('error', () => undefined); // 'exit' follows
    child.once('exit', (code, signal) => events.onExit(this.keys.splice(0), signal ?? `exit ${code}`));
    this.child = child;
  }

  get idle(): boolean {
    return this.keys.length === 0;
  }

  /** Running one request and holding none behind it: one more may be queued. */
  get queueable(): boolean {
    return this.keys.length === 1;
  }

  /** The request it runs (or is about to), if any. */
  get running(): number | undefined {
    return this.keys[0];
  }

  /** The request queued behind the running one, if any. */
  get queued(): number | undefined {
    return this.keys[1];
  }

  /** Hands it a request (encodeRequest): it runs it now when idle, else once the running one ends. */
  send(key: number, message: string): void {
    this.keys.push(key);
    this.setReferenced(true);
    this.child.stdin!.write(message);
  }

  /**
   * Asks it to skip a request it holds and has not started: it answers `skipped` before it would
   * start it (for one queued behind a running command: when that one ends), or `S` when too late.
   */
  cancel(key: number): void {
    if (this.keys.includes(key)) this.cancels.write(`${key}\n`);
  }

  /** The request `key` has its result: the runner runs the next it holds, or is idle. */
  release(key: number): void {
    const index = this.keys.indexOf(key);
    if (index < 0) return;
    this.keys.splice(index, 1);
    if (this.keys.length === 0) this.setReferenced(false);
  }

  /** Runners must not keep this process alive while nothing runs. */
  private setReferenced(referenced: boolean): void {
    for (const stream of [this.child, ...this.child.stdio]) {
      const handle = stream as { ref?: () => void; unref?: () => void } | null;
      if (referenced) handle?.ref?.();
      else handle?.unref?.();
    }
  }
}
