/**
 * Recognises commands that mean the same run directly as through a shell, so the executor
 * can skip starting bash for them (about half of the per-command cost for short commands).
 * Anything that bash would interpret — quotes, variables, globs, redirections, pipes, lists,
 * comments, assignments, builtins — goes through the shell, so behaviour never differs.
 */

const plainText = /^[A-Za-z0-9_./,:=+@%-][A-Za-z0-9_./,:=+@%\- \t]*$/;

/** bash builtins and keywords: these must run inside a shell even when written plainly. */
const shellWords = new Set([
  '.', ':', '[', '[[', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'case', 'cd', 'command',
  'compgen', 'complete', 'compopt', 'continue', 'coproc', 'declare', 'dirs', 'disown', 'do', 'done',
  'echo', 'elif', 'else', 'enable', 'esac', 'eval', 'exec', 'exit', 'export', 'fc', 'fg', 'fi', 'for',
  'function', 'getopts', 'hash', 'help', 'history', 'if', 'in', 'jobs', 'kill', 'let', 'local',
  'logout', 'mapfile', 'popd', 'printf', 'pushd', 'pwd', 'read', 'readarray', 'readonly', 'return',
  'select', 'set', 'shift', 'shopt', 'source', 'suspend', 'test', 'then', 'time', 'times', 'trap',
  'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset', 'until', 'wait', 'while',
]);

/** The argv of a command that needs no shell, or undefined when a shell must run it. */
export function parseSimpleCommand(command: string): string[] | undefined {
  if (!plainText.test(command)) return undefined;
  const words = command.split(/[ \t]+/).filter((word) => word !== '');
  const first = words[0];
  if (first === undefined || first.includes('=') || shellWords.has(first)) return undefined;
  return words;
}
