import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import split2 from 'split2';
import {
  defaultKillGraceMs,
  defaultTailBytes,
  killGroup,
  logDirMaker,
  outcomeOf,
  readTail,
  writeCommandScript,
  type ExecuteRequest,
  type ExecutionResult,
  type Executor,
  type RunningCommand,
} from './executor.js';
import { parseSimpleCommand } from './simple-command.js';

/**
 * The executor on long-lived bash "runners": one bash process per slot reads command requests
 * from a pipe and forks each command itself, in its own process group, stdout and stderr to the
 * attempt's log. Node never forks per command.
 *
 * Why: fork() costs in proportion to the size of the process that forks. Measured on a 2-CPU
 * machine, Node's spawn() managed 713 `true`/s over 4 slots and ran 400 x `sleep 0.05` in 5.40 s
 * (ideal 5.00 s); bash runners driven the same way managed 1216/s and 5.30 s, the same as a bare
 * bash for-loop (5.28 s). The runner needs bash >= 4; without bash the executor of executor.ts
 * (spawn() in a small helper process) is used.
 *
 * Protocol (one runner, one command at a time): the request is a list of NUL-terminated fields
 * `key log cwd mode command envCount env... argc argv...`; the runner answers `S key pid` once the
 * command's process exists and `E key status startSeconds endSeconds` when it ended (status as
 * bash's `wait` reports it: 128+n for signal n), or `E key cwd` when the working directory is
 * missing. A runner is started whenever none is idle: callers bound how many commands run at once
 * (executor-slots.ts). The runner's environment must not hold SHELLOPTS or BASHOPTS (options that
 * would change the runner's own script); command-executor.ts uses spawn() then. Modes: `x` exec argv directly (a plain command, falling back to `shell -c command`
 * when argv[0] is not found, so "command not found" reads as without the shortcut), `s` run
 * `shell -c command`, `a` exec argv as given (a long command's script file).
 * Descriptor 3 is a pipe nobody writes: when it closes, this process is gone, and the runner kills
 * its running command and exits, so no command outlives its tasker or worker as an orphan.
 */
const runnerScript = String.raw`
shell=$1
with_bash_env=$2
bash_env=$3
current=
trap 'if [[ -n $current ]]; then kill -KILL -- "-$current" 2>/dev/null; fi; exit 0' TERM
( read -r -u 3 _; kill -TERM $$ 2>/dev/null ) &
watchdog=$!
exec 3<&-
shopt -s execfail
while IFS= read -r -d '' key && IFS= read -r -d '' log && IFS= read -r -d '' cwd && IFS= read -r -d '' mode &&
  IFS= read -r -d '' cmd && IFS= read -r -d '' count; do
  envs=()
  for ((i = 0; i < count; i++)); do IFS= read -r -d '' v; envs+=("$v"); done
  IFS= read -r -d '' count
  argv=()
  for ((i = 0; i < count; i++)); do IFS= read -r -d '' v; argv+=("$v"); done
  if ! cd -- "$cwd" 2>/dev/null; then printf 'E %s cwd\n' "$key"; continue; fi
  start=$EPOCHREALTIME
  set -m
  (
    ((${'$'}{#envs[@]} > 0)) && export "${'$'}{envs[@]}"
    [[ $with_bash_env == 1 ]] && export BASH_ENV="$bash_env"
    if [[ $mode == s ]]; then exec "$shell" -c "$cmd"; fi
    if [[ $mode == a ]]; then exec "${'$'}{argv[@]}"; fi
    if [[ ${'$'}{argv[0]} == */* ]]; then
      [[ -f ${'$'}{argv[0]} && -x ${'$'}{argv[0]} ]] && exec "${'$'}{argv[@]}"
    elif hash -- "${'$'}{argv[0]}" 2>/dev/null; then
      exec "${'$'}{argv[@]}"
    fi
    exec "$shell" -c "$cmd"
  ) </dev/null >"$log" 2>&1 &
  current=$!
  set +m
  printf 'S %s %s\n' "$key" "$current"
  wait "$current"
  status=$?
  current=
  printf 'E %s %s %s %s\n' "$key" "$status" "$start" "$EPOCHREALTIME"
done
kill "$watchdog" 2>/dev/null
`;

export interface RunnerExecutorOptions {
  /** bash: the runners, and `-c` for commands with shell syntax. */
  shell: string;
  /** Run plain commands without a shell. Default: true. */
  directExec?: boolean;
  /** Base environment of every command. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Where the runners' own complaints go (never command output, which goes to the logs). */
  onRunnerError?: (message: string) => void;
}

/** Requests longer than this go through a script file: bash reads the pipe a byte at a time. */
const maxInlineBytes = 16 * 1024;

interface Job {
  key: number;
  request: ExecuteRequest;
  fields: string[];
  resolve: (result: ExecutionResult) => void;
  runner?: Runner;
  pid?: number;
  killedFor?: string;
  timedOut: boolean;
  /** killAllNow came before the runner reported the pid: SIGKILL it as soon as it does. */
  killOnStart?: boolean;
  timeoutTimer?: NodeJS.Timeout;
  /** When it was handed to a runner (fallback start time when bash has no EPOCHREALTIME). */
  sentAtMs?: number;
}

interface Runner {
  process: ChildProcess;
  job: Job | undefined;
}

const signalNames = new Map<number, string>(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

function readLogTail(path: string, tailBytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY);
  } catch {
    return ''; // the runner could not create the log; its complaint went to onRunnerError
  }
  try {
    return readTail(fd, tailBytes);
  } finally {
    closeSync(fd);
  }
}

/** bash's EPOCHREALTIME ("1732200000.123456", with the locale's decimal mark) in ms; undefined before bash 5. */
function epochMs(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const value = Number(text.replace(',', '.'));
  return Number.isFinite(value) ? Math.round(value * 1000) : undefined;
}

export function createRunnerExecutor(options: RunnerExecutorOptions): Executor {
  const baseEnv: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const shell = options.shell;
  // bash reads BASH_ENV before every `bash -c`; running without bash -c would skip it.
  const directExec = (options.directExec ?? true) && baseEnv['BASH_ENV'] === undefined;
  const runners: Runner[] = [];
  const jobs = new Map<number, Job>();
  const makeLogDir = logDirMaker();
  let nextKey = 1;

  /** Runners must not keep this process alive while nothing runs. */
  const setReferenced = (runner: Runner, referenced: boolean): void => {
    for (const stream of [runner.process, ...runner.process.stdio]) {
      const handle = stream as { ref?: () => void; unref?: () => void } | null;
      if (referenced) handle?.ref?.();
      else handle?.unref?.();
    }
  };

  const complete = (job: Job, result: ExecutionResult): void => {
    if (job.timeoutTimer !== undefined) clearTimeout(job.timeoutTimer);
    jobs.delete(job.key);
    const runner = job.runner;
    if (runner !== undefined && runner.job === job) {
      runner.job = undefined;
      setReferenced(runner, false);
    }
    job.resolve(result);
  };

  const notStarted = (job: Job, outcome: 'killed' | 'spawn-error', reason: string): void => {
    const now = new Date().toISOString();
    complete(job, { outcome, exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason });
  };

  const terminate = (job: Job, reason: string): void => {
    if (job.killedFor !== undefined) return;
    job.killedFor = reason;
    const pid = job.pid;
    if (pid === undefined) return; // killed as soon as the runner reports its pid
    killGroup(pid, 'SIGTERM');
    // The group may outlive its leader (background children): KILL it after the grace either way.
    setTimeout(() => killGroup(pid, 'SIGKILL'), job.request.killGraceMs ?? defaultKillGraceMs).unref();
  };

  const onStarted = (job: Job, pid: number): void => {
    job.pid = pid;
    if (job.killOnStart === true) killGroup(pid, 'SIGKILL');
    if (job.killedFor !== undefined) {
      const reason = job.killedFor;
      job.killedFor = undefined;
      terminate(job, reason);
    }
    const timeoutMs = job.request.timeoutMs;
    if (timeoutMs !== undefined) {
      job.timeoutTimer = setTimeout(() => {
        job.timedOut = true;
        terminate(job, `timed out after ${timeoutMs} ms`);
      }, timeoutMs);
    }
  };

  const onEnded = (job: Job, status: number, startText: string | undefined, endText: string | undefined): void => {
    const finishedAtMs = epochMs(endText) ?? Date.now();
    const startedAtMs = epochMs(startText) ?? job.sentAtMs ?? finishedAtMs;
    const signal = status > 128 ? signalNames.get(status - 128) ?? null : null;
    const exitCode = signal === null ? status : null;
    complete(job, {
      exitCode,
      signal,
      startedAt: new Date(startedAtMs).toISOString(),
      finishedAt: new Date(finishedAtMs).toISOString(),
      durationMs: Math.max(0, finishedAtMs - startedAtMs),
      tail: readLogTail(job.request.logPath, job.request.tailBytes ?? defaultTailBytes),
      ...outcomeOf({ exitCode, signal, timedOut: job.timedOut, killedFor: job.killedFor, shellStatus: status }),
    });
  };

  const onLine = (runner: Runner, line: string): void => {
    const [kind, keyText, a, b, c] = line.split(' ');
    const job = jobs.get(Number(keyText));
    if (job === undefined || job.runner !== runner) return;
    if (kind === 'S') onStarted(job, Number(a));
    else if (kind === 'E' && a === 'cwd') notStarted(job, 'spawn-error', `could not start the command: working directory ${job.request.cwd} does not exist`);
    else if (kind === 'E') onEnded(job, Number(a), b, c);
  };

  // The runner must not read BASH_ENV itself (it could set options that break its loop); the
  // commands get it back.
  const { BASH_ENV: bashEnv, ...runnerEnv } = baseEnv;
  const startRunner = (): Runner => {
    const child = spawn(shell, ['-c', runnerScript, 'tasker-runner', shell, bashEnv === undefined ? '0' : '1', bashEnv ?? ''], {
      env: runnerEnv,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true, // out of the terminal's process group: Ctrl-C is the tasker's to handle
    });
    const runner: Runner = { process: child, job: undefined };
    child.stdout!.pipe(split2()).on('data', (line: string) => onLine(runner, line));
    child.stderr!.pipe(split2()).on('data', (line: string) => options.onRunnerError?.(line));
    child.stdin!.on('error', () => undefined); // the runner died; 'exit' reports it
    child.on('error', () => undefined); // 'exit' follows
    child.once('exit', (code, signal) => {
      const index = runners.indexOf(runner);
      if (index >= 0) runners.splice(index, 1);
      const job = runner.job;
      if (job !== undefined) {
        // Its command may still run in its own group: stop it, it cannot be reported any more.
        if (job.pid !== undefined) killGroup(job.pid, 'SIGKILL');
        notStarted(job, 'spawn-error', `the command runner (bash) ended (${signal ?? `exit ${code}`}) before the command's result arrived`);
      }
    });
    runners.push(runner);
    return runner;
  };

  const send = (runner: Runner, job: Job): void => {
    runner.job = job;
    job.runner = runner;
    job.sentAtMs = Date.now();
    setReferenced(runner, true);
    runner.process.stdin!.write(`${job.fields.join('\0')}\0`);
  };

  function start(request: ExecuteRequest): RunningCommand {
    makeLogDir(request.logPath);
    const env = Object.entries(request.env).map(([name, value]) => `${name}=${value}`);
    const simple = directExec ? parseSimpleCommand(request.command) : undefined;
    let mode: 'x' | 's' | 'a';
    let argv: string[] = [];
    let command = request.command;
    if (Buffer.byteLength(request.command) > maxInlineBytes) {
      mode = 'a';
      argv = [shell, writeCommandScript(request)];
      command = '';
    } else if (simple !== undefined) {
      mode = 'x';
      argv = simple;
    } else {
      mode = 's';
    }
    const key = nextKey++;
    // Absolute: `cd` would consult CDPATH for a relative one.
    const fields = [String(key), request.logPath, resolve(request.cwd), mode, command, String(env.length), ...env, String(argv.length), ...argv];
    const result = new Promise<ExecutionResult>((resolve) => {
      const job: Job = { key, request, fields, resolve, timedOut: false };
      jobs.set(key, job);
      send(runners.find((candidate) => candidate.job === undefined) ?? startRunner(), job);
    });
    return {
      result,
      started: () => true,
      kill: (reason) => {
        const job = jobs.get(key);
        if (job !== undefined) terminate(job, reason);
      },
    };
  }

  return {
    start,
    killAllNow() {
      for (const { job } of runners) {
        if (job === undefined) continue;
        if (job.pid === undefined) job.killOnStart = true;
        else killGroup(job.pid, 'SIGKILL');
      }
    },
  };
}

/** Whether `shell` is a bash that can drive runners (the executor then uses them). */
export function isBash(shell: string): boolean {
  return /(^|\/)bash$/.test(shell) && existsSync(shell);
}
