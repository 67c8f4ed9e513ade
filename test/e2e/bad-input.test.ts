import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../shared/observe/logger.js';
import { names } from '../../shared/config/names.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import { repoRoot, taskerBin, tempDir, workerBin } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, queueCounts, testSigningKey } from '../helpers/distributed.js';
import { s3Env } from '../helpers/s3.js';

/**
 * The bad-input corpus: every way a start can be wrong that we know of, each run through the
 * built `tasker` (or `worker`) as a user would. Each case must end with exit code 2 and one
 * message on stderr that names the problem and the fix (no stack trace, no log noise), and
 * nothing may run or half-run. "Nothing half-runs" means, precisely:
 *
 * - no command ran: every command of a case's jobs file is `touch SENTINELS/Ln`, and SENTINELS
 *   stays empty;
 * - the workdir is exactly as before (not created when it did not exist; no .tasker, no run
 *   directory, no cleaned or staged file);
 * - no temporary file is left behind (each case has a TMPDIR of its own, empty afterwards);
 * - in distributed mode, nothing was published and no run state written: the case's namespace
 *   has no message on its work queue and the same Redis keys as before.
 *
 * Connection failures are timed too: a user must not wait long to learn that a URL is wrong.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const s3 = inject('s3');
const isRoot = process.getuid?.() === 0;
const wrongPasswordUrl = services.amqpUrl.replace(/\/\/([^:/@]+)(:[^@]*)?@/, '//$1:wrong-password-7f3a@');

interface Workspace {
  /** Holds everything of the case. */
  root: string;
  /** The workdir passed to the program (does not exist unless a case makes it). */
  work: string;
  /** Where commands would leave their sentinel files. */
  sentinels: string;
  tmp: string;
  ns: string;
  /** Writes a jobs file outside the workdir; string lines are joined with "\n" and end with one. */
  jobs(name: string, content: string[] | string | Buffer): string;
  /** `touch SENTINELS/Ln` lines, n = 1..count. */
  sentinelLines(count?: number): string[];
}

interface Invocation {
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

interface Case {
  name: string;
  program?: 'tasker' | 'worker';
  /** Prepares files, returns the command line. */
  setup: (ws: Workspace) => Invocation | Promise<Invocation>;
  /** Key words that name the problem. */
  problem: RegExp;
  /** Key words that name the fix. */
  fix: RegExp;
  /** Talks to RabbitMQ and Redis: check that nothing was published or recorded. */
  distributed?: boolean;
  /** Longest acceptable time to fail, ms. Default 3000. */
  maxMs?: number;
  /** A case that cannot be made to fail here, with the reason. */
  skip?: string;
  /** The workdir exists before the run (its content must stay as it is). */
  workdirExists?: boolean;
  /** Several problems at once: stderr lists them, one per line. */
  multiLine?: boolean;
}

const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function workspace(): Workspace {
  const temp = tempDir('tasker-bad-input-');
  const ns = newNamespace();
  cleanups.push(temp.cleanup, () => cleanupNamespace(services, ns));
  const root = temp.path;
  const sentinels = join(root, 'sentinels');
  const tmp = join(root, 'tmp');
  mkdirSync(sentinels);
  mkdirSync(tmp);
  return {
    root,
    work: join(root, 'work'),
    sentinels,
    tmp,
    ns,
    jobs(name, content) {
      const path = join(root, name);
      writeFileSync(path, Array.isArray(content) ? `${content.join('\n')}\n` : content);
      return path;
    },
    sentinelLines(count = 3) {
      return Array.from({ length: count }, (_, i) => `touch ${sentinels}/L${i + 1}`);
    },
  };
}

/** Every path under `dir` with its size, or undefined when `dir` does not exist. */
function snapshot(dir: string): string[] | undefined {
  if (!existsSync(dir)) return undefined;
  if (!statSync(dir).isDirectory()) return [`(a file of ${statSync(dir).size} bytes)`];
  const entries: string[] = [];
  const walk = (path: string, prefix: string): void => {
    for (const name of readdirSync(path).sort()) {
      const full = join(path, name);
      const stat = statSync(full);
      entries.push(`${prefix}${name}${stat.isDirectory() ? '/' : ` ${stat.size}`}`);
      if (stat.isDirectory()) walk(full, `${prefix}${name}/`);
    }
  };
  walk(dir, '');
  return entries;
}

async function redisKeys(redis: Redis, ns: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 500);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys.sort();
}

/** Environment of a distributed case: the test services, the case's namespace. */
function distributedEnv(ws: Workspace, extra: Record<string, string> = {}): Record<string, string> {
  return { AMQP_URL: services.amqpUrl, REDIS_URL: services.redisUrl, TASKER_NAMESPACE: ws.ns, TASKER_SIGNING_KEY: testSigningKey, ...extra };
}

const cases: Case[] = [
  // --- the jobs file ---
  {
    name: 'missing jobs file',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, join(ws.root, 'no-such-jobs.sh')] }),
    problem: /jobs file not found: .*no-such-jobs\.sh/,
    fix: /not found/,
  },
  {
    name: 'a directory instead of a jobs file',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.sentinels] }),
    problem: /sentinels is a directory/,
    fix: /give the jobs file inside it/,
  },
  {
    name: 'empty jobs file',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('empty.sh', '')] }),
    problem: /nothing to run: .*empty\.sh has no commands/,
    fix: /only blank lines and comments/,
  },
  {
    name: 'only comments and blank lines',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('comments.sh', ['# setup', '', '   # indented comment', '\t', '# phase: later'])] }),
    problem: /nothing to run: .*comments\.sh has no commands/,
    fix: /only blank lines and comments/,
  },
  {
    name: 'a NUL byte (a binary file)',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('nul.sh', `${ws.sentinelLines(1).join('\n')}\necho a\0b\n`)] }),
    problem: /nul\.sh:2: NUL byte at column 7/,
    fix: /must be text/,
  },
  {
    name: 'invalid UTF-8',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('latin1.sh', Buffer.concat([Buffer.from(`${ws.sentinelLines(1).join('\n')}\necho caf`), Buffer.from([0xe9, 0x0a])]))] }),
    problem: /latin1\.sh:2: invalid UTF-8/,
    fix: /save the jobs file as UTF-8/,
  },
  {
    name: 'a continuation (backslash) at the end of the file',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('cont.sh', [...ws.sentinelLines(2), 'echo a \\'])] }),
    problem: /cont\.sh:3: the command continues \(ends with a backslash\) but the file ends at line 3/,
    fix: /remove the trailing backslash or add the rest/,
  },
  {
    name: 'a 10 MB line',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('huge.sh', `${ws.sentinelLines(1).join('\n')}\necho ${'x'.repeat(10 * 1024 * 1024)}\n`)] }),
    problem: /huge\.sh:2: line is longer than 1 MiB/,
    fix: /put large data in a file/,
  },
  {
    // 200 KiB of text, but 1.2 MiB once its control characters are escaped for the message.
    name: 'a command over 1 MiB in its message to the workers',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('escaped.sh', `${ws.sentinelLines(2).join('\n')}\necho '${'\u0001'.repeat(200 * 1024)}'\n${ws.sentinelLines(1).join('\n')}\n`)] }),
    problem: /escaped\.sh:3: command takes \d+ bytes in its message to the workers .* more than the 1048576 \(1 MiB\) a command may/,
    fix: /put large data in a file and have the command read it/,
  },
  {
    name: 'a --timeout longer than timers hold (30d)',
    setup: (ws) => ({ args: ['run', '--timeout', '30d', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--timeout must be at most 24d \(Node's timers hold at most 2\^31-1 ms, 24\.8 days\), got "30d"/,
    fix: /give a shorter duration/,
  },
  {
    name: 'a duration variable longer than timers hold (TASKER_STALL_WARNING=25d)',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: { TASKER_STALL_WARNING: '25d' } }),
    problem: /TASKER_STALL_WARNING must be at most 24d/,
    fix: /give a shorter duration/,
  },
  {
    name: 'a worker duration longer than timers hold (WORKER_DRAIN_TIMEOUT=30d)',
    program: 'worker',
    setup: (ws) => ({ args: ['--workdir', ws.root], env: { AMQP_URL: services.amqpUrl, TASKER_SIGNING_KEY: testSigningKey, WORKER_DRAIN_TIMEOUT: '30d' } }),
    problem: /WORKER_DRAIN_TIMEOUT must be at most 24d/,
    fix: /give a shorter duration/,
  },
  {
    name: 'an unterminated quote',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('quote.sh', [...ws.sentinelLines(2), "echo 'oops", ...ws.sentinelLines(1)])] }),
    problem: /quote\.sh:3: the shell cannot parse this command \(unexpected EOF while looking for matching `''\)/,
    fix: /fix its quoting/,
  },
  {
    name: 'a bracket that is never closed',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('paren.sh', [...ws.sentinelLines(2), 'echo $(date', 'echo "fine"'])] }),
    problem: /paren\.sh:3: the shell cannot parse this command/,
    fix: /fix its quoting or brackets/,
  },
  {
    name: 'a phase marker with a typo in "(tasker)"',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('typo.sh', [...ws.sentinelLines(1), '# phase: setup (taskr)', ...ws.sentinelLines(1)])] }),
    problem: /typo\.sh:2: phase marker says "\(taskr\)"/,
    fix: /write "\(tasker\)"/,
  },
  {
    name: 'a phase marker without a name',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('noname.sh', [...ws.sentinelLines(1), '# phase:', ...ws.sentinelLines(1)])] }),
    problem: /noname\.sh:2: phase marker without a name/,
    fix: /write "# phase: NAME"/,
  },
  {
    name: '--split makita on a file without simulate',
    setup: (ws) => ({ args: ['run', '--split', 'makita', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /no line containing "simulate"; it does not look like a makita jobs\.sh/,
    fix: /run without --split, or use "# phase:" markers/,
  },
  {
    name: '--split makita with two files',
    setup: (ws) => ({ args: ['run', '--split', 'makita', '--workdir', ws.work, ws.jobs('a.sh', ['asreview simulate x']), ws.jobs('b.sh', ws.sentinelLines())] }),
    problem: /--split makita takes exactly one jobs file \(got 2\)/,
    fix: /exactly one jobs file/,
  },
  {
    name: 'a phase marker naming a bad pool',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('pool.sh', ['# phase: sims (pool: High_Mem)', ...ws.sentinelLines()])] }),
    problem: /pool\.sh:1: phase marker names pool "High_Mem"/,
    fix: /lowercase letters, digits and "-"/,
  },
  {
    name: '--pool naming a phase the plan does not have',
    setup: (ws) => ({ args: ['run', '--split', 'makita', '--pool', 'simulation=gpu', '--workdir', ws.work, ws.jobs('jobs.sh', ['touch SENTINELS/L1', 'asreview simulate x && touch SENTINELS/L2'].map((line) => line.replace('SENTINELS', ws.sentinels)))] }),
    problem: /--pool simulation=gpu: the plan has no phase "simulation"/,
    fix: /its phases: setup, simulate/,
  },
  {
    name: '--pool with a bad pool name (distributed)',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--pool', 'sims=GPU', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws) }),
    problem: /--pool sims=GPU: a pool name is/,
    fix: /lowercase letters, digits and "-"/,
  },
  {
    name: 'tasker plan --pool without PHASE=',
    setup: (ws) => ({ args: ['plan', '--pool', 'gpu', ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--pool takes PHASE=POOL/,
    fix: /e\.g\. --pool simulate=highmem/,
  },
  {
    name: 'an unreadable jobs file (chmod 000)',
    skip: isRoot ? 'runs as root here: chmod 000 does not stop root from reading' : undefined,
    setup: (ws) => {
      const path = ws.jobs('secret.sh', ws.sentinelLines());
      chmodSync(path, 0o000);
      return { args: ['run', '--workdir', ws.work, path] };
    },
    problem: /jobs file not readable \(permission denied\): .*secret\.sh/,
    fix: /permission denied/,
  },
  {
    name: 'tasker plan checks the file the same way',
    setup: (ws) => ({ args: ['plan', ws.jobs('nul.sh', `${ws.sentinelLines(1).join('\n')}\n\0\n`)] }),
    problem: /nul\.sh:2: NUL byte/,
    fix: /must be text/,
  },

  // --- the command line ---
  {
    name: 'an unknown flag',
    setup: (ws) => ({ args: ['run', '--frobnicate', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /unknown option '--frobnicate'/,
    fix: /--help/,
  },
  {
    name: 'an unknown subcommand',
    setup: (ws) => ({ args: ['runn', ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /unknown command 'runn'/,
    fix: /Did you mean one of run, runs\?/,
  },
  {
    name: 'no subcommand at all',
    setup: () => ({ args: [] }),
    problem: /Usage: tasker \[options\] \[command\]/,
    fix: /run \[options\] \[files\.\.\.\]/,
    multiLine: true,
  },
  {
    name: 'no jobs file',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work] }),
    problem: /no jobs file given/,
    fix: /tasker run \[options\] FILE\.\.\. \(or --resume RUN_ID\)/,
  },
  {
    name: 'a duration that is not one',
    setup: (ws) => ({ args: ['run', '--timeout', 'soon', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--timeout must be a duration/,
    fix: /such as 90s, 15m or 2h, got "soon"/,
  },
  {
    name: 'a zero --timeout',
    setup: (ws) => ({ args: ['run', '--timeout', '0', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--timeout must be a duration/,
    fix: /such as 90s, 15m or 2h, got "0"/,
  },
  {
    name: 'zero concurrency',
    setup: (ws) => ({ args: ['run', '-j', '0', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--concurrency must be at least 1/,
    fix: /at least 1, got 0/,
  },
  {
    name: 'negative concurrency',
    setup: (ws) => ({ args: ['run', '--concurrency=-4', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--concurrency must be a whole number/,
    fix: /of at least 1, got "-4"/,
  },
  {
    name: 'negative retries',
    setup: (ws) => ({ args: ['run', '--retries=-1', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--retries must be a whole number/,
    fix: /whole number, got "-1"/,
  },
  {
    name: 'an unknown --split preset',
    setup: (ws) => ({ args: ['run', '--split', 'unknown', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--split must be one of/,
    fix: /makita; got "unknown"/,
  },
  {
    name: 'a run id with a slash',
    setup: (ws) => ({ args: ['run', '--run-id', '../escape', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--run-id "\.\.\/escape" is not a valid run id/,
    fix: /use 1-64 letters, digits/,
  },
  {
    name: '--run-id and --resume naming different runs',
    setup: (ws) => ({ args: ['run', '--run-id', 'a', '--resume', 'b', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--run-id and --resume name different runs/,
    fix: /give one of them/,
  },
  {
    name: '--resume of an unknown run',
    setup: (ws) => ({ args: ['run', '--resume', 'never-was', '--workdir', ws.work] }),
    problem: /no run "never-was" in .*\.tasker\/runs \(no runs there yet\)/,
    fix: /check --workdir and the run id/,
  },
  {
    name: '--force-clean without --clean',
    setup: (ws) => ({ args: ['run', '--force-clean', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--force-clean only makes sense with --clean/,
    fix: /with --clean/,
  },
  {
    name: '--stage of a path that does not exist',
    setup: (ws) => ({ args: ['run', '--stage', join(ws.root, 'no-such-data'), '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--stage .*no-such-data: no such file or directory/,
    fix: /no such file or directory/,
  },
  {
    name: '--stage from inside the workdir that --clean empties',
    workdirExists: true,
    setup: (ws) => {
      mkdirSync(join(ws.work, '.tasker'), { recursive: true });
      mkdirSync(join(ws.work, 'data'));
      return { args: ['run', '--clean', '--stage', join(ws.work, 'data'), '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] };
    },
    problem: /--stage .*data is inside the workdir, which --clean empties first/,
    fix: /stage from outside the workdir/,
  },
  {
    name: 'a bad LOG_LEVEL',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: { LOG_LEVEL: 'loud' } }),
    problem: /log level must be one of trace, debug, info/,
    fix: /got "loud"/,
  },
  {
    name: 'several problems at once, all listed',
    setup: (ws) => ({ args: ['run', '-j', 'x', '--retries', '-1', '--kill-grace', 'later', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /3 problems:\n {2}- --concurrency .*\n {2}- --retries .*\n {2}- --kill-grace /,
    fix: /whole number of at least 1, got "x"/,
    multiLine: true,
  },

  // --- the workdir ---
  {
    name: 'the workdir is a file',
    workdirExists: true,
    setup: (ws) => {
      writeFileSync(ws.work, 'not a directory\n');
      return { args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] };
    },
    problem: /workdir .*work is a file, not a directory/,
    fix: /choose another --workdir/,
  },
  {
    name: 'a workdir that cannot be created',
    setup: (ws) => {
      writeFileSync(join(ws.root, 'plain-file'), '');
      return { args: ['run', '--workdir', join(ws.root, 'plain-file', 'work'), ws.jobs('jobs.sh', ws.sentinelLines())] };
    },
    problem: /cannot create workdir .*plain-file\/work \(ENOTDIR/,
    fix: /create it yourself or choose another --workdir/,
  },
  {
    name: 'a workdir that is not writable',
    workdirExists: !isRoot,
    setup: (ws) => {
      if (isRoot) {
        // Root writes through chmod 555: sysfs refuses even root, whatever the permissions say.
        return { args: ['run', '--workdir', '/sys/kernel', ws.jobs('jobs.sh', ws.sentinelLines())] };
      }
      mkdirSync(ws.work);
      chmodSync(ws.work, 0o555);
      return { args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] };
    },
    problem: /workdir .* is not writable by this user/,
    fix: /fix its permissions or choose another --workdir/,
  },
  {
    name: 'a workdir on a file system where mkdir says ENOENT (/proc: Node would loop forever)',
    setup: (ws) => ({ args: ['run', '--workdir', `/proc/tasker-test-${ws.ns}`, ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /cannot create workdir \/proc\/tasker-test-/,
    fix: /create it yourself or choose another --workdir/,
  },
  {
    name: '--clean on /',
    setup: (ws) => ({ args: ['run', '--clean', '--workdir', '/', ws.jobs('jobs.sh', ws.sentinelLines())] }),
    problem: /--clean refuses to empty \//,
    fix: /choose a dedicated --workdir/,
  },
  {
    name: '--clean on the home directory',
    workdirExists: true,
    setup: (ws) => {
      mkdirSync(ws.work);
      writeFileSync(join(ws.work, '.bashrc'), '# mine\n');
      mkdirSync(join(ws.work, '.tasker'));
      return { args: ['run', '--clean', '--force-clean', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: { HOME: ws.work } };
    },
    problem: /--clean refuses to empty .*work: it is or contains your home directory/,
    fix: /choose a dedicated --workdir/,
  },
  {
    name: '--clean on a non-empty directory that never held a run',
    workdirExists: true,
    setup: (ws) => {
      mkdirSync(ws.work);
      writeFileSync(join(ws.work, 'thesis.tex'), 'precious\n');
      return { args: ['run', '--clean', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())] };
    },
    problem: /--clean refuses to empty .*work: it is not empty and no tasker run was ever made there/,
    fix: /Check the path, or add --force-clean/,
  },

  // --- RabbitMQ, Redis, S3, signing ---
  {
    name: 'unreachable broker (closed port)',
    distributed: true,
    maxMs: 8000,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }) }),
    problem: /cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1: connection refused/,
    fix: /is it running\? check AMQP_URL/,
  },
  {
    name: 'wrong broker credentials',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: wrongPasswordUrl }) }),
    problem: /refused the user name or password/,
    fix: /check AMQP_URL/,
  },
  {
    name: 'a virtual host that does not exist',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: `${services.amqpUrl.replace(/\/$/, '')}/no-such-vhost` }) }),
    problem: /refused the virtual host "no-such-vhost": it does not exist, or the user may not use it/,
    fix: /check the path of AMQP_URL/,
  },
  {
    name: 'AMQP_URL pointing at a server that is not RabbitMQ (Redis)',
    distributed: true,
    maxMs: 9000,
    setup: (ws) => {
      const redis = new URL(services.redisUrl);
      return { args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: `amqp://guest:guest@${redis.hostname}:${redis.port || 6379}` }) };
    },
    problem: /cannot reach RabbitMQ at .*: no answer within 5 s/,
    fix: /check the host and port in AMQP_URL/,
  },
  {
    name: 'a malformed AMQP_URL (its password is not shown)',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: 'amqp//guest:hunter2-secret@rabbitmq:5672' }) }),
    problem: /AMQP_URL is not a URL/,
    fix: /expected amqp:\/\/USER:PASSWORD@HOST:5672\/VHOST/,
  },
  {
    name: 'AMQP_URL with another scheme',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { AMQP_URL: 'http://rabbitmq:15672' }) }),
    problem: /AMQP_URL must start with amqp:\/\/ or amqps:\/\//,
    fix: /got "http:\/\/"/,
  },
  {
    name: 'Redis down (closed port)',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { REDIS_URL: 'redis://127.0.0.1:1' }) }),
    problem: /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
    fix: /is it running\? check REDIS_URL/,
  },
  {
    name: 'a Redis database that does not exist',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { REDIS_URL: `${services.redisUrl.replace(/\/\d*$/, '')}/999` }) }),
    problem: /has no database 999 \(ERR DB index is out of range\)/,
    fix: /check the number at the end of REDIS_URL/,
  },
  {
    name: 'a malformed REDIS_URL',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { REDIS_URL: '127.0.0.1:6379' }) }),
    problem: /REDIS_URL is not a URL/,
    fix: /expected redis:\/\/\[:PASSWORD@\]HOST:6379\[\/DB\]\), got "127\.0\.0\.1:6379"/,
  },
  {
    name: 'a bad TASKER_NAMESPACE',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { TASKER_NAMESPACE: 'my runs' }) }),
    problem: /TASKER_NAMESPACE "my runs"/,
    fix: /must be 1-40 letters, digits/,
  },
  {
    name: 'a work queue made by an older tasker, with its delivery limit of 10',
    distributed: true,
    setup: async (ws) => {
      // Older taskers set the work queue's x-delivery-limit to TASKER_DELIVERY_LIMIT (10).
      const connection = await amqplib.connect(services.amqpUrl);
      const channel = await connection.createChannel();
      await channel.assertQueue(`${ws.ns}.commands`, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': `${ws.ns}.dead`, 'x-delivery-limit': 10 } });
      await connection.close();
      return { args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { TASKER_DELIVERY_LIMIT: '3' }) };
    },
    problem: /already has this namespace's queues with other settings \(inequivalent arg 'x-delivery-limit'/,
    fix: /made by an older tasker\? Once it is empty, delete it \(rabbitmqctl delete_queue t[0-9a-f]+\.commands\) and start again, or use another TASKER_NAMESPACE/,
  },
  {
    name: 'a run id Redis already knows from another workdir',
    distributed: true,
    setup: async (ws) => {
      const store = await createRunStore(services.redisUrl, names(ws.ns), createLogger({ level: 'silent', pretty: false, name: 'test' }));
      const now = new Date().toISOString();
      await store.registerRun({ runId: 'taken', state: 'finished', startedAt: now, heartbeatAt: now, host: 'elsewhere', workdir: '/elsewhere', phase: '', phaseIndex: 0, phaseCount: 1, total: 1, done: 1, failed: 0 });
      await store.close();
      return { args: ['run', '--run-id', 'taken', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws) };
    },
    problem: /run id taken is already known to Redis \(namespace t[0-9a-f]+\) but has no records in this workdir/,
    fix: /Use another --run-id, the workdir of that run, or remove it first with: tasker purge taken/,
  },
  {
    name: 'a signing key that is too short',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { TASKER_SIGNING_KEY: 'short' }) }),
    problem: /TASKER_SIGNING_KEY is too short \(5 characters\)/,
    fix: /use at least 32, e\.g\. the output of: openssl rand -hex 32/,
  },
  {
    name: 'with a broker, no TASKER_SIGNING_KEY and no TASKER_SIGNING=off (fail closed: never unsigned by accident)',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { TASKER_SIGNING_KEY: '' }) }),
    problem: /TASKER_SIGNING_KEY is not set: with AMQP_URL, the tasker and every worker need the same signing key/,
    fix: /openssl rand -hex 32.*TASKER_SIGNING=off on the tasker and every worker/,
  },
  {
    name: 'TASKER_SIGNING=off with a TASKER_SIGNING_KEY',
    distributed: true,
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: distributedEnv(ws, { TASKER_SIGNING: 'off' }) }),
    problem: /TASKER_SIGNING=off and TASKER_SIGNING_KEY are both set/,
    fix: /unset one of them/,
  },
  {
    name: 'S3_UPLOAD without S3_BUCKET',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: { S3_UPLOAD: 'output/**' } }),
    problem: /S3_UPLOAD is set but S3_BUCKET is not/,
    fix: /set S3_BUCKET to the bucket to upload to/,
  },
  {
    name: 'tasker status without AMQP_URL, in a directory without runs',
    setup: () => ({ args: ['status'], env: { AMQP_URL: '' } }),
    problem: /no tasker runs in \S+ \(no \.tasker\/runs there\)/,
    fix: /give the workdir of a local run with --workdir DIR, or set AMQP_URL \(or --amqp-url\)/,
  },
  {
    name: 'tasker status of an unknown run in a workdir',
    setup: (ws) => {
      mkdirSync(join(ws.root, '.tasker', 'runs'), { recursive: true });
      return { args: ['status', 'never-was', '--workdir', ws.root] };
    },
    problem: /no run "never-was" in \S+; runs there: none/,
    fix: /tasker runs --workdir \S+ lists them/,
  },
  {
    name: 'tasker status of an unknown run',
    distributed: true,
    setup: (ws) => ({ args: ['status', 'never-was'], env: distributedEnv(ws) }),
    problem: /no run "never-was" in Redis \(namespace t[0-9a-f]+\)/,
    fix: /runs there: none/,
  },

  // --- the worker ---
  {
    name: 'no AMQP_URL',
    program: 'worker',
    setup: (ws) => ({ args: ['--workdir', ws.root], env: { AMQP_URL: '', TASKER_SIGNING_KEY: testSigningKey } }),
    problem: /needs AMQP_URL/,
    fix: /e\.g\. AMQP_URL=amqp:\/\/user:pass@rabbitmq:5672/,
  },
  {
    name: 'no TASKER_SIGNING_KEY and no TASKER_SIGNING=off (fail closed: never runs unsigned commands by accident)',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { TASKER_SIGNING_KEY: '' }) }),
    problem: /TASKER_SIGNING_KEY is not set: with AMQP_URL, the tasker and every worker need the same signing key/,
    fix: /TASKER_SIGNING=off on the tasker and every worker/,
  },
  {
    name: 'a malformed AMQP_URL (its password is not shown)',
    program: 'worker',
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { AMQP_URL: 'guest:hunter2-secret@rabbitmq' }) }),
    problem: /AMQP_URL must start with amqp:\/\/ or amqps:\/\//,
    fix: /amqp:\/\//,
  },
  {
    name: 'a worker --pool with a bad pool name',
    program: 'worker',
    setup: (ws) => ({ args: ['--workdir', ws.root, '--pool', 'default,Big_Mem'], env: distributedEnv(ws) }),
    problem: /--pool: "Big_Mem" is not a pool name/,
    fix: /--pool default,highmem/,
  },
  {
    name: 'zero concurrency',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root, '--concurrency', '0'], env: distributedEnv(ws) }),
    problem: /--concurrency must be at least 1/,
    fix: /at least 1, got 0/,
  },
  {
    name: 'WORKER_CONCURRENCY that is not a number',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { WORKER_CONCURRENCY: 'four' }) }),
    problem: /WORKER_CONCURRENCY must be a whole number/,
    fix: /of at least 1, got "four"/,
  },
  {
    name: 'an unknown flag',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root, '--frobnicate'], env: distributedEnv(ws) }),
    problem: /unknown option '--frobnicate'/,
    fix: /--help/,
  },
  {
    name: 'a bad --drain-timeout',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root, '--drain-timeout', 'never'], env: distributedEnv(ws) }),
    problem: /--drain-timeout must be a duration/,
    fix: /such as 90s, 15m or 2h, got "never"/,
  },
  {
    name: 'a workdir that does not exist (a wrong mount)',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.work], env: distributedEnv(ws) }),
    problem: /workdir .*work does not exist/,
    fix: /must be the directory shared with the tasker \(check --workdir or WORKDIR, and the volume mount\)/,
  },
  {
    name: 'unreachable broker (closed port)',
    program: 'worker',
    distributed: true,
    maxMs: 8000,
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }) }),
    problem: /cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1: connection refused/,
    fix: /is it running\? check AMQP_URL/,
  },
  {
    name: 'wrong broker credentials',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { AMQP_URL: wrongPasswordUrl }) }),
    problem: /refused the user name or password/,
    fix: /check AMQP_URL/,
  },
  {
    name: 'Redis down (closed port)',
    program: 'worker',
    distributed: true,
    setup: (ws) => ({ args: ['--workdir', ws.root], env: distributedEnv(ws, { REDIS_URL: 'redis://127.0.0.1:1' }) }),
    problem: /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/,
    fix: /is it running\? check REDIS_URL/,
  },

  // Last, as S3 came last: a bucket that does not exist (the S3-compatible server of the tests).
  {
    name: 'S3 bucket missing',
    setup: (ws) => ({ args: ['run', '--workdir', ws.work, ws.jobs('jobs.sh', ws.sentinelLines())], env: s3Env(s3, { S3_BUCKET: `no-such-bucket-${ws.ns}` }) }),
    problem: /S3 bucket "no-such-bucket-t[0-9a-f]+" does not exist at/,
    fix: /Create it .* or set S3_BUCKET to an existing bucket/,
    maxMs: 8000,
  },
];

interface Outcome {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(program: 'tasker' | 'worker', invocation: Invocation, ws: Workspace): Promise<Outcome> {
  const started = Date.now();
  const result = await execa(process.execPath, [program === 'tasker' ? taskerBin : workerBin, ...invocation.args], {
    cwd: invocation.cwd ?? ws.root,
    // Local unless a case says otherwise: the environment of the test runner may name a broker.
    env: { AMQP_URL: '', LOG_LEVEL: 'info', TMPDIR: ws.tmp, TASKER_NAMESPACE: ws.ns, ...invocation.env },
    reject: false,
    timeout: 30_000,
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr), ms: Date.now() - started };
}

let redis: Redis;
beforeAll(() => {
  redis = new Redis(services.redisUrl);
});
afterAll(() => {
  redis.disconnect();
});

describe('bad input: exit 2, one message naming problem and fix, nothing run', () => {
  it('has at least 25 cases', () => {
    expect(cases.filter((c) => c.skip === undefined).length).toBeGreaterThanOrEqual(25);
  });

  describe.concurrent('cases', () => {
    for (const testCase of cases) {
      const test = testCase.skip === undefined ? it : it.skip;
      test(`${testCase.program ?? 'tasker'}: ${testCase.name}${testCase.skip === undefined ? '' : ` (skipped: ${testCase.skip})`}`, async ({ expect }) => {
        const ws = workspace();
        const invocation = await testCase.setup(ws);
        const workBefore = snapshot(ws.work);
        expect(workBefore === undefined, 'the workdir exists before the run exactly when the case says so').toBe(testCase.workdirExists !== true);
        const keysBefore = testCase.distributed === true ? await redisKeys(redis, ws.ns) : [];

        const outcome = await run(testCase.program ?? 'tasker', invocation, ws);
        const prefix = `${testCase.program ?? 'tasker'}: `;
        const context = `exit ${outcome.exitCode} after ${outcome.ms} ms\n--- stderr\n${outcome.stderr}\n--- stdout\n${outcome.stdout}`;

        expect(outcome.exitCode, context).toBe(2);
        expect(outcome.stderr, context).toMatch(testCase.problem);
        expect(outcome.stderr, context).toMatch(testCase.fix);
        // One message: no stack trace, no internal error, no log lines; usage text aside, one line.
        expect(outcome.stderr, context).not.toMatch(/^\s+at .+[:(]\d+/m);
        expect(outcome.stderr, context).not.toMatch(/internal error|Error: |\{"level"/);
        const lines = outcome.stderr.trim().split('\n');
        if (testCase.multiLine !== true) {
          expect(lines[0], context).toMatch(new RegExp(`^${prefix}`));
          // commander adds hints in parentheses: "(Did you mean run?)", "(add --help for usage)".
          expect(lines.filter((line) => !/^\(.*\)$/.test(line)), context).toHaveLength(1);
        }
        expect(outcome.stdout, context).toBe('');
        // Fails fast, not after retries or a hang: the limit has slack for a loaded 2-CPU machine, where starting Node alone can take seconds.
        expect(outcome.ms, context).toBeLessThan(3 * (testCase.maxMs ?? 3000));
        // The secret of a malformed URL is never echoed back.
        expect(outcome.stderr).not.toContain('hunter2-secret');
        expect(outcome.stderr).not.toContain('wrong-password-7f3a');

        // Nothing ran, nothing half-ran.
        expect(readdirSync(ws.sentinels), 'a command ran').toEqual([]);
        expect(snapshot(ws.work), 'the workdir changed').toEqual(workBefore);
        expect(readdirSync(ws.tmp), 'temporary files were left behind').toEqual([]);
        if (testCase.distributed === true) {
          expect(await redisKeys(redis, ws.ns), 'run state was written to Redis').toEqual(keysBefore);
          const queue = await queueCounts(services.amqpUrl, names(ws.ns).workQueue);
          expect(queue?.messageCount ?? 0, 'a command was published').toBe(0);
        }
      });
    }
  });
});

describe('input that looks odd but is fine: it runs', () => {
  async function runs(ws: Workspace, path: string, count: number): Promise<void> {
    const outcome = await run('tasker', { args: ['run', '--workdir', ws.work, path] }, ws);
    expect(outcome.exitCode, outcome.stderr).toBe(0);
    expect(readdirSync(ws.sentinels).sort()).toEqual(Array.from({ length: count }, (_, i) => `L${i + 1}`).sort());
  }

  it('CRLF line ends, with and without a final line end', async () => {
    const ws = workspace();
    await runs(ws, ws.jobs('crlf.sh', ws.sentinelLines().join('\r\n')), 3);
    const again = workspace();
    await runs(again, again.jobs('crlf.sh', `${again.sentinelLines().join('\r\n')}\r\n`), 3);
  });

  it('a UTF-8 byte-order mark at the start', async () => {
    const ws = workspace();
    await runs(ws, ws.jobs('bom.sh', `\uFEFF${ws.sentinelLines().join('\n')}\n`), 3);
  });

  it('quotes, continuations and a comment after a command', async () => {
    const ws = workspace();
    const [l1, l2, l3] = ws.sentinelLines();
    await runs(ws, ws.jobs('shell.sh', [`${l1!} # a comment with an unmatched ' quote`, `echo "it's" && \\`, `  ${l2!}`, `if true; then ${l3!}; fi`]), 3);
  });

  it('a named pipe written by a process (tasker run <(generate-jobs))', async () => {
    const ws = workspace();
    const script = `${process.execPath} ${taskerBin} run --workdir ${ws.work} <(printf '%s\\n' ${ws.sentinelLines().map((line) => `'${line}'`).join(' ')})`;
    const result = await execa('bash', ['-c', script], { reject: false, env: { AMQP_URL: '', TMPDIR: ws.tmp }, cwd: repoRoot });
    expect(result.exitCode, String(result.stderr)).toBe(0);
    expect(readdirSync(ws.sentinels).sort()).toEqual(['L1', 'L2', 'L3']);
  });
});

describe('interrupted while still checking', () => {
  it('exits 130 at once on SIGTERM while waiting for a jobs file (a FIFO nobody writes), leaving nothing behind', async () => {
    const ws = workspace();
    const fifo = join(ws.root, 'jobs.fifo');
    await execa('mkfifo', [fifo]);
    const child = execa(process.execPath, [taskerBin, 'run', '--workdir', ws.work, fifo], { reject: false, env: { AMQP_URL: '', TMPDIR: ws.tmp }, stdin: 'ignore', timeout: 20_000 });
    // Once it has the FIFO open it is waiting for a writer, its signal handlers long in place (a
    // fixed sleep was too short on a loaded machine).
    const opened = (): boolean => {
      try {
        return readdirSync(`/proc/${child.pid}/fd`).some((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`) === fifo);
      } catch {
        return false; // not started yet, or gone
      }
    };
    for (let waitedMs = 0; !opened() && waitedMs < 15_000; waitedMs += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(child.exitCode).toBeNull(); // still waiting for a writer, as `cat` would
    const sent = Date.now();
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(Date.now() - sent).toBeLessThan(2000);
    expect(String(result.stderr)).toContain('interrupted (SIGTERM) before anything ran');
    expect(existsSync(ws.work)).toBe(false);
    expect(readdirSync(ws.tmp)).toEqual([]); // the scratch copy of the plan is gone too
  });
});
