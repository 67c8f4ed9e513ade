import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { logDirMaker } from './attempt-files.js';
import type { ExecuteRequest, ExecutionResult, Executor, ExecutorOptions, RunningCommand } from './executor-contract.js';

/**
 * The executor in a small helper process. fork() of a command costs time in proportion to the
 * size of the process that forks (measured: 1030 spawns/s from a 65 MB process, 390/s at 117 MB):
 * the tasker and the worker hold clients, plans and buffers, so a lean helper does the spawning
 * for them and reports results over IPC. The helper imports nothing but the executor.
 */

export type HelperRequest =
  | { type: 'start'; key: number; request: ExecuteRequest }
  | { type: 'kill'; key: number; reason: string }
  | { type: 'kill-all-now' };

export type HelperReply = { type: 'result'; key: number; result: ExecutionResult };

const helperPath = fileURLToPath(new URL('./executor-child.js', import.meta.url));

function forkHelper(options: ExecutorOptions): ChildProcess {
  return fork(helperPath, [], {
    env: { ...(options.env ?? process.env), TASKER_EXECUTOR_OPTIONS: JSON.stringify({ shell: options.shell, directExec: options.directExec ?? true }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Small heap: the helper's own size is what every fork() of a command pays for.
    execArgv: ['--max-semi-space-size=1', '--max-old-space-size=256'],
    serialization: 'json',
    ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid }),
  });
}

export function createExecutorProcess(options: ExecutorOptions = {}): Executor {
  let helper: ChildProcess | undefined;
  let nextKey = 1;
  const pending = new Map<number, { resolve: (result: ExecutionResult) => void; request: ExecuteRequest }>();
  // With another user the helper runs as that user, and so opens the logs as it: their
  // directories are made here, given to its group.
  const makeLogDir = options.user === undefined ? undefined : logDirMaker(options.user.gid);

  const failAll = (why: string): void => {
    const now = new Date().toISOString();
    for (const [key, entry] of pending) {
      pending.delete(key);
      entry.resolve({ outcome: 'spawn-error', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: why });
    }
  };

  const ensureHelper = (): ChildProcess => {
    if (helper !== undefined) return helper;
    const child = forkHelper(options);
    child.on('message', (reply: HelperReply) => {
      if (reply.type !== 'result') return;
      const entry = pending.get(reply.key);
      if (entry === undefined) return;
      pending.delete(reply.key);
      entry.resolve(reply.result);
    });
    child.on('exit', (code, signal) => {
      if (helper === child) helper = undefined;
      // Commands it started keep running in their own process groups; their results are lost, so
      // they are reported as failed attempts (retried if --retries allows), never as successes.
      failAll(`the executor helper process ended (${signal ?? `exit ${code}`}) before the command's result arrived`);
    });
    child.on('error', () => undefined); // 'exit' follows and reports
    // The helper must not keep the parent alive once nothing is pending.
    child.unref();
    child.channel?.unref();
    helper = child;
    return child;
  };

  const send = (message: HelperRequest): void => {
    const child = ensureHelper();
    if (pending.size > 0) {
      child.ref();
      child.channel?.ref();
    }
    child.send(message);
  };

  return {
    start(request: ExecuteRequest): RunningCommand {
      const key = nextKey++;
      makeLogDir?.(request.logPath);
      const result = new Promise<ExecutionResult>((resolve) => pending.set(key, { resolve, request })).finally(() => {
        if (pending.size === 0 && helper !== undefined) {
          helper.unref();
          helper.channel?.unref();
        }
      });
      send({ type: 'start', key, request });
      return {
        result,
        started: () => true,
        whenStarted: Promise.resolve(true),
        kill: (reason) => {
          if (pending.has(key)) send({ type: 'kill', key, reason });
        },
      };
    },
    killAllNow() {
      if (helper !== undefined) helper.send({ type: 'kill-all-now' } satisfies HelperRequest);
    },
  };
}
