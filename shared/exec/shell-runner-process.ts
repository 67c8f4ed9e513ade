import { spawn, type ChildProcess } from 'node:child_process';
import split2 from 'split2';
import type { CommandIdentity } from './executor-contract.js';
import { parseReply, runnerScript, type RunnerReply } from './shell-runner-protocol.js';

export interface ShellRunnerSettings {
  /** bash: runs the runner's script, and `-c` for commands with shell syntax. */
  shell: string;
  /** The commands' base environment; BASH_ENV in it goes to the commands only. */
  env: NodeJS.ProcessEnv;
  /** Start the runner as this user (it forks the commands, which inherit it). Default: this process's. */
  user?: CommandIdentity;
}

export interface ShellRunnerEvents {
  /** A reply about the request the runner is running; replies about any other are dropped. */
  onReply(reply: RunnerReply): void;
  /** A line the runner wrote to stderr (its own complaints; command output goes to the logs). */
  onComplaint(line: string): void;
  /** The runner ended: `key` is the request it was running, if any; `description` says how it ended. */
  onExit(key: number | undefined, description: string): void;
}

/** One bash runner process (shell-runner-protocol.ts): runs one request at a time. */
export class ShellRunner {
  private readonly child: ChildProcess;
  /** The request it runs; undefined while idle. */
  private currentKey: number | undefined;

  constructor(settings: ShellRunnerSettings, events: ShellRunnerEvents) {
    // The runner must not read BASH_ENV itself (it could set options that break its loop); the
    // commands get it back.
    const { BASH_ENV: bashEnv, ...runnerEnv } = settings.env;
    const child = spawn(settings.shell, ['-c', runnerScript, 'tasker-runner', settings.shell, bashEnv === undefined ? '0' : '1', bashEnv ?? ''], {
      env: runnerEnv,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true, // out of the terminal's process group: Ctrl-C is the tasker's to handle
      ...(settings.user === undefined ? {} : { uid: settings.user.uid, gid: settings.user.gid }),
    });
    child.stdout!.pipe(split2()).on('data', (line: string) => {
      const reply = parseReply(line);
      if (reply !== undefined && reply.key === this.currentKey) events.onReply(reply);
    });
    child.stderr!.pipe(split2()).on('data', (line: string) => events.onComplaint(line));
    child.stdin!.on('error', () => undefined); // the runner died; 'exit' reports it
    child.on('error', () => undefined); // 'exit' follows
    child.once('exit', (code, signal) => events.onExit(this.currentKey, signal ?? `exit ${code}`));
    this.child = child;
  }

  get idle(): boolean {
    return this.currentKey === undefined;
  }

  /** Hands it a request (encodeRequest); it must be idle. */
  send(key: number, message: string): void {
    this.currentKey = key;
    this.setReferenced(true);
    this.child.stdin!.write(message);
  }

  /** The request `key` has its result: the runner is idle again. */
  release(key: number): void {
    if (this.currentKey !== key) return;
    this.currentKey = undefined;
    this.setReferenced(false);
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
