import { realpathSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, relative, sep } from 'node:path';

/**
 * How the user started us, as a command they can type again: the resume hint must work from a
 * clone (`npx tasker`), from `node bin/tasker.js` and with `tasker` on the PATH alike.
 */

export interface InvocationFacts {
  /** process.argv[1]: the script node was started with, absolute. */
  script: string;
  /** npm sets npm_command=exec for `npx tasker` and `npm exec tasker`. */
  npmCommand: string | undefined;
  cwd: string;
  /** true when `tasker` on the PATH is this very script (a global install, `npm link`). */
  onPath: boolean;
}

/** Quotes a word for bash when it needs it. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command that resumes a run, as the user invoked us; `--workdir` left out when it is `cwd`; `namespace`: a distributed run's. Pure. */
export function resumeCommand(invocation: string, runId: string, workdir: string, cwd?: string, namespace?: string): string {
  return `${invocation} run --resume ${runId}${workdir === cwd ? '' : ` --workdir ${shellWord(workdir)}`}${namespace === undefined ? '' : ` --namespace ${shellWord(namespace)}`}`;
}

/** What a distributed run's resume needs besides its command line, without secrets: the broker's URL redacted. Pure. */
export function resumeSettings(redactedAmqpUrl: string): string {
  return `  (a distributed run: resume it with AMQP_URL=${redactedAmqpUrl} set, and REDIS_URL and TASKER_SIGNING_KEY as for this run)`;
}

/** The command that starts this program again, e.g. `npx tasker`, `node bin/tasker.js`, `tasker`. Pure. */
export function describeInvocation(facts: InvocationFacts, program = 'tasker'): string {
  // npx starts the package's link in a node_modules/.bin; a tasker merely started under npx
  // (by a script that npx ran) inherits npm_command but not that path.
  if (facts.npmCommand === 'exec' && facts.script.split(sep).slice(-3, -1).join('/') === 'node_modules/.bin') return `npx ${program}`;
  if (facts.onPath) return program;
  const fromCwd = relative(facts.cwd, facts.script);
  const path = fromCwd === '' || fromCwd.startsWith('..') || isAbsolute(fromCwd) ? facts.script : fromCwd;
  // A script without .js is an executable link (node_modules/.bin/tasker); a .js file needs node.
  if (!facts.script.endsWith('.js')) return shellWord(path.includes(sep) ? path : `.${sep}${path}`);
  return `node ${shellWord(path)}`;
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    // not there (or unreadable): that PATH entry is not us
    return undefined;
  }
}

/** Reads the facts from the process: argv, npm's variables, and a PATH lookup of `program`. */
export function invocationFacts(argv: readonly string[], env: Record<string, string | undefined>, cwd: string, program = 'tasker'): InvocationFacts {
  const script = argv[1] ?? program;
  const self = realpathOrUndefined(script);
  let onPath = false;
  if (basename(script) === program && self !== undefined) {
    const first = (env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => realpathOrUndefined(join(dir, program))).find((found) => found !== undefined);
    onPath = first === self;
  }
  return { script, npmCommand: env['npm_command'], cwd, onPath };
}
