import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { writeCommandScript } from './attempt-files.js';
import type { ExecuteRequest } from './executor-contract.js';
import { parseSimpleCommand } from './simple-command.js';

/**
 * What a bash runner (shell-runner.ts) runs, and the protocol between it and this process.
 *
 * Protocol (one runner, one command at a time): a request is its length in bytes, as 10 decimal
 * digits, then that many bytes of bash assignments (`key log cwd mode cmd` and the arrays `envs`
 * and `argv`, every value single-quoted) that the runner evals. The length lets bash take the
 * request in one read(2): `read -d ''` and `read -r line` read a pipe one byte at a time (about 285
 * read calls per command, measured with strace). The runner parses in the C locale, so that `read
 * -N` counts bytes; the commands get the caller's LC_ALL back. The runner answers `S key pid` once
 * the command's process exists and `E key status startSeconds endSeconds logged userSeconds
 * systemSeconds` when it ended, in one write: status as bash's `wait` reports it (128+n for signal
 * n); logged 0 when the log is empty, so this process need not open it for its tail; the CPU time
 * of the `wait` that reaped the command (its own and its waited-for descendants'), which the `time`
 * keyword prints in the TIMEFORMAT set inside the timed block, read when it ends (`printf` and
 * `times` took two writes, so two wake-ups of this process, per command). Or `E key cwd` when the
 * working directory is missing. The runner's environment must not hold SHELLOPTS or BASHOPTS (options that would change
 * the runner's own script); command-executor.ts uses spawn() then. Modes: `x` exec argv directly (a
 * plain command, falling back to `shell -c command` when argv[0] is not found, so "command not
 * found" reads as without the shortcut), `s` run `shell -c command`, `a` exec argv as given (a long
 * command's script file).
 * From a command's start to its end the runner's stderr is /dev/null: bash reports a job that a
 * signal ended (a command killed after the kill grace) on stderr, quoting the subshell's source
 * ("line 36: 25958 Killed ( ((${#envs[@]} > 0)) && ..."), at the first command after it reaps it,
 * which may come before the `wait`. The result already says how the command ended. The command's
 * own start complaints (its log cannot be created) still reach the runner's stderr through fd 4.
 * Descriptor 3 is a pipe nobody writes: when it closes, this process is gone, and the runner kills
 * its running command and exits, so no command outlives its tasker or worker as an orphan.
 */
export const runnerScript = String.raw`
shell=$1
with_bash_env=$2
bash_env=$3
current=
trap 'if [[ -n $current ]]; then kill -KILL -- "-$current" 2>/dev/null; fi; exit 0' TERM
( read -r -u 3 _; kill -TERM $$ 2>/dev/null ) &
watchdog=$!
exec 3<&-
shopt -s execfail
lc_all_set=${'$'}{LC_ALL+1}
lc_all=${'$'}{LC_ALL-}
export -n LC_ALL
LC_ALL=C
while IFS= read -r -N 10 size && IFS= read -r -N "$((10#$size))" request; do
  eval "$request"
  if ! cd -- "$cwd" 2>/dev/null; then printf 'E %s cwd\n' "$key"; continue; fi
  start=$EPOCHREALTIME
  {
    set -m
    (
      if [[ -n $lc_all_set ]]; then export LC_ALL="$lc_all"; fi
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
    ) 2>&4 4>&- </dev/null >"$log" 2>&1 &
    current=$!
    set +m
    printf 'S %s %s\n' "$key" "$current"
    { time { wait "$current" 2>/dev/null; status=$?; logged=0; [[ -s $log ]] && logged=1; TIMEFORMAT="E $key $status $start $EPOCHREALTIME $logged %3U %3S"; }; } 2>&1
  } 4>&2 2>/dev/null
  current=
done
kill "$watchdog" 2>/dev/null
`;

/** Commands longer than this run from a script file: one argument (`bash -c command`) may hold at most 128 KiB (Linux's MAX_ARG_STRLEN). */
const maxInlineBytes = 64 * 1024;

/** How the runner is to start a command: the mode, argv and command fields of a request. */
function launchOf(request: ExecuteRequest, shell: string, directExec: boolean): { mode: 'x' | 's' | 'a'; argv: string[]; command: string } {
  if (Buffer.byteLength(request.command) > maxInlineBytes) return { mode: 'a', argv: [shell, writeCommandScript(request)], command: '' };
  const simple = directExec ? parseSimpleCommand(request.command) : undefined;
  if (simple !== undefined) return { mode: 'x', argv: simple, command: request.command };
  return { mode: 's', argv: [], command: request.command };
}

/** A value as bash reads it back: single-quoted, any byte but NUL. */
function quoted(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** One request as the runner reads it; a long command is written to a script file first. */
export function encodeRequest(key: number, request: ExecuteRequest, shell: string, directExec: boolean): string {
  const env = Object.entries(request.env).map(([name, value]) => `${name}=${value}`);
  const { mode, argv, command } = launchOf(request, shell, directExec);
  // Absolute: `cd` would consult CDPATH for a relative one.
  const body = [
    `key=${key}`,
    `log=${quoted(request.logPath)}`,
    `cwd=${quoted(resolve(request.cwd))}`,
    `mode=${mode}`,
    `cmd=${quoted(command)}`,
    `envs=(${env.map(quoted).join(' ')})`,
    `argv=(${argv.map(quoted).join(' ')})`,
  ].join('\n');
  return `${String(Buffer.byteLength(body)).padStart(10, '0')}${body}`;
}

export type RunnerReply =
  | { kind: 'started'; key: number; pid: number }
  | { kind: 'no-cwd'; key: number }
  /** The times are undefined when bash has no EPOCHREALTIME (before bash 5). */
  | {
      kind: 'ended';
      key: number;
      status: number;
      startedAtMs: number | undefined;
      finishedAtMs: number | undefined;
      /** False when the runner found the log empty (no tail to read); true when it did not, or did not say. */
      logged: boolean;
      /** CPU time of the command and the descendants it waited for; null when unreadable. */
      cpuMs: number | null;
    };

/** bash's EPOCHREALTIME ("1732200000.123456", with the locale's decimal mark) in ms; undefined before bash 5. */
function epochMs(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const value = Number(text.replace(',', '.'));
  return Number.isFinite(value) ? Math.round(value * 1000) : undefined;
}

/** One line of the runner's stdout; undefined for a line of no known kind. */
export function parseReply(line: string): RunnerReply | undefined {
  const [kind, keyText, a, b, c, d, user, system] = line.split(' ');
  const key = Number(keyText);
  if (kind === 'S') return { kind: 'started', key, pid: Number(a) };
  if (kind === 'E' && a === 'cwd') return { kind: 'no-cwd', key };
  if (kind === 'E') return { kind: 'ended', key, status: Number(a), startedAtMs: epochMs(b), finishedAtMs: epochMs(c), logged: d !== '0', cpuMs: cpuMsOf(user, system) };
  return undefined;
}

/** CPU time in ms from the `time` keyword's "%3U %3S" ("1.234" "0.056"); null when either is missing or not a number. */
export function cpuMsOf(user: string | undefined, system: string | undefined): number | null {
  if (user === undefined || system === undefined || user === '' || system === '') return null;
  const ms = Math.round((Number(user.replace(',', '.')) + Number(system.replace(',', '.'))) * 1000);
  return Number.isFinite(ms) ? ms : null;
}

const signalNames = new Map<number, string>(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

/** A status as bash's `wait` reports it, 128+n for signal n, as an exit code or a signal. */
export function exitOfStatus(status: number): { exitCode: number | null; signal: string | null } {
  const signal = status > 128 ? signalNames.get(status - 128) ?? null : null;
  return { exitCode: signal === null ? status : null, signal };
}
