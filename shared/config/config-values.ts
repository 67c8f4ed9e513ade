import { maxTimerMs, parseDuration } from './duration.js';
import { InputError } from '../errors.js';
import { defaultNamespace, isValidNamespace } from './names.js';
import { checkSigningKey } from '../broker/signing.js';
import { checkAmqpUrl, checkRedisUrl, lowercaseScheme, plainTextWarning, usesTls, type ConfigWarning } from './urls.js';
import { readTlsFiles, type FileProblems, type TlsFiles } from './tls-config.js';

export type { ConfigWarning } from './urls.js';

/**
 * Parsing of configuration values shared by tasker and worker. Pure: every problem is collected,
 * and `done()` reports them all at once; files (TLS certificates) are read through the reader the
 * caller hands over. An empty environment variable counts as unset; an empty flag
 * (`--concurrency ""`) is a mistake and reported.
 */

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A flag's value and name, else the variable's: messages name what the user actually set. */
export function flagOrEnv(flag: string, flagValue: string | undefined, variable: string, env: Record<string, string | undefined>): [string, string | undefined] {
  if (flagValue !== undefined) return [flag, flagValue];
  return [variable, envValue(env, variable)];
}

export function envValue(env: Record<string, string | undefined>, variable: string): string | undefined {
  const value = env[variable];
  return value === '' ? undefined : value;
}

/** Reads a whole file (fs.readFileSync in the programs, a fake in tests); throws when it cannot. */
export type ReadFile = (path: string) => Buffer;

export interface ConfigProblems extends FileProblems {
  count(name: string, text: string | undefined, min: number): number | undefined;
  duration(name: string, text: string | undefined, options?: { allowZero?: boolean }): number | undefined;
  logLevel(value: string): void;
  namespace(value: string): void;
  amqpUrl(value: string): void;
  redisUrl(value: string): void;
  add(problem: string): void;
  /** Something to log at start-up (a plain-text connection to another host); undefined: nothing. */
  warn(warning: ConfigWarning | undefined): void;
  warnings(): ConfigWarning[];
  /** Throws one InputError listing every problem, if there is any. */
  done(): void;
}

/** Without a reader, a file named in the configuration is a problem: nothing here reads files. */
const noFiles: ReadFile = () => {
  throw new Error('files are not read here');
};

/** `readFile`: how `file()` reads what a variable names (once, at start-up). */
export function collectProblems(readFile: ReadFile = noFiles): ConfigProblems {
  const problems: string[] = [];
  const warnings: ConfigWarning[] = [];
  const check = (problem: string | undefined): void => {
    if (problem !== undefined) problems.push(problem);
  };
  return {
    count(name, text, min) {
      if (text === undefined) return undefined;
      if (!/^\d+$/.test(text.trim())) {
        problems.push(`${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, got "${text}"`);
        return undefined;
      }
      const value = Number(text);
      if (value < min) {
        problems.push(`${name} must be at least ${min}, got ${value}`);
        return undefined;
      }
      return value;
    },
    duration(name, text, options = {}) {
      if (text === undefined) return undefined;
      const value = parseDuration(text);
      if (value === undefined || (options.allowZero !== true && value === 0)) {
        problems.push(`${name} must be a duration such as 90s, 15m or 2h, got "${text}"`);
        return undefined;
      }
      if (value > maxTimerMs) {
        problems.push(`${name} must be at most 24d (Node's timers hold at most 2^31-1 ms, 24.8 days), got "${text}"; give a shorter duration`);
        return undefined;
      }
      return value;
    },
    logLevel(value) {
      if (!(logLevels as readonly string[]).includes(value)) problems.push(`log level must be one of ${logLevels.join(', ')}; got "${value}"`);
    },
    namespace(value) {
      if (!isValidNamespace(value)) problems.push(`TASKER_NAMESPACE "${value}" must be 1-40 letters, digits, ".", "_" or "-"`);
    },
    amqpUrl: (value) => check(checkAmqpUrl(value)),
    redisUrl: (value) => check(checkRedisUrl(value)),
    add: (problem) => problems.push(problem),
    file(variable, path) {
      try {
        return readFile(path);
      } catch (error) {
        // fs's "ENOENT: no such file or directory, open '/x'" without the path it repeats.
        const reason = error instanceof Error ? error.message.replace(/, \w+ '.*'$/s, '') : String(error);
        problems.push(`${variable}: cannot read ${path} (${reason})`);
        return undefined;
      }
    },
    warn: (warning) => void (warning !== undefined && warnings.push(warning)),
    warnings: () => [...warnings],
    done() {
      if (problems.length === 0) return;
      throw new InputError('config', problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { problems });
    },
  };
}

export interface ConnectionFlags {
  amqpUrl?: string;
  redisUrl?: string;
  namespace?: string;
}

export interface Connection {
  /** undefined when not set (and not required). Its scheme in lower case, as every URL here. */
  amqpUrl: string | undefined;
  /** AMQP_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, read. Default: none (amqps:// with the system's CAs). */
  amqpTls: TlsFiles | undefined;
  /** Default redis://127.0.0.1:6379. */
  redisUrl: string;
  /** REDIS_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, read. Default: none (rediss:// with the system's CAs). */
  redisTls: TlsFiles | undefined;
  /** Default "tasker". */
  namespace: string;
  /** Default 10. */
  deliveryLimit: number;
}

/**
 * RabbitMQ, Redis and naming settings, the same for every program. `missingAmqp` is the problem
 * to report when AMQP_URL is required but unset; without it, AMQP_URL is optional (local mode).
 * A plain-text URL to another host is a warning; TLS files are read only for a service in use.
 */
export function readConnection(flags: ConnectionFlags, env: Record<string, string | undefined>, problems: ConfigProblems, missingAmqp?: string): Connection {
  const [amqpName, amqpText] = flagOrEnv('--amqp-url', flags.amqpUrl, 'AMQP_URL', env);
  const amqpUrl = amqpText === undefined ? undefined : lowercaseScheme(amqpText);
  if (amqpUrl !== undefined) problems.amqpUrl(amqpUrl);
  else if (missingAmqp !== undefined) problems.add(missingAmqp);
  const [redisName, redisText] = flagOrEnv('--redis-url', flags.redisUrl, 'REDIS_URL', env);
  const redisUrl = lowercaseScheme(redisText ?? 'redis://127.0.0.1:6379');
  // Redis only matters once RabbitMQ is in use.
  const redisUsed = amqpUrl !== undefined || missingAmqp !== undefined;
  if (redisUsed) problems.redisUrl(redisUrl);
  let amqpTls: TlsFiles | undefined;
  let redisTls: TlsFiles | undefined;
  if (amqpUrl !== undefined) {
    amqpTls = readTlsFiles('AMQP', env, problems, { variable: amqpName, secure: usesTls(amqpUrl) });
    problems.warn(plainTextWarning(amqpName, amqpUrl));
  }
  if (redisUsed) {
    redisTls = readTlsFiles('REDIS', env, problems, { variable: redisName, secure: usesTls(redisUrl) });
    problems.warn(plainTextWarning(redisName, redisUrl));
  }
  const namespace = flagOrEnv('--namespace', flags.namespace, 'TASKER_NAMESPACE', env)[1] ?? defaultNamespace;
  problems.namespace(namespace);
  const deliveryLimit = problems.count('TASKER_DELIVERY_LIMIT', envValue(env, 'TASKER_DELIVERY_LIMIT'), 1) ?? 10;
  return { amqpUrl, amqpTls, redisUrl, redisTls, namespace, deliveryLimit };
}

/**
 * Variables commands never see. A command could otherwise read the signing key and forge
 * commands, or reach the broker and Redis with the service's own credentials. S3 credentials
 * stay: commands may need them for their own data.
 */
export const withheldFromCommands = [
  'TASKER_SIGNING_KEY',
  'AMQP_URL',
  'REDIS_URL',
  // The Kubernetes manifests build AMQP_URL and REDIS_URL from their role's credentials with these.
  'RABBITMQ_USERNAME',
  'RABBITMQ_PASSWORD',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
] as const;

/** The environment commands run with: this process's, minus what they must not see. */
export function commandEnvironment(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const copy = { ...env };
  for (const name of withheldFromCommands) delete copy[name];
  return copy;
}

/** How messages are signed: with `key`, or not at all (`off`: chosen with TASKER_SIGNING=off, or a local run). */
export interface Signing {
  /** TASKER_SIGNING_KEY; undefined: messages go unsigned. */
  key: string | undefined;
  /** TASKER_SIGNING=off was given: unsigned by choice (said at start-up as a warning). */
  off: boolean;
}

/**
 * TASKER_SIGNING_KEY and TASKER_SIGNING, checked. Fail closed: with a broker (`distributed`) a
 * key is required unless signing is turned off explicitly, on the tasker and on every worker alike;
 * a key and the opt-out together are a contradiction, reported.
 */
export function readSigning(env: Record<string, string | undefined>, problems: ConfigProblems, distributed: boolean): Signing {
  const key = envValue(env, 'TASKER_SIGNING_KEY');
  const mode = envValue(env, 'TASKER_SIGNING')?.trim().toLowerCase();
  if (mode !== undefined && mode !== 'on' && mode !== 'off') problems.add(`TASKER_SIGNING must be on (the default) or off, got "${env['TASKER_SIGNING']}"`);
  const off = mode === 'off';
  if (key !== undefined) {
    const keyProblem = checkSigningKey(key);
    if (keyProblem !== undefined) problems.add(keyProblem);
    if (off) problems.add('TASKER_SIGNING=off and TASKER_SIGNING_KEY are both set: unset one of them (signing is on whenever the key is set)');
  } else if (distributed && !off) {
    problems.add(
      'TASKER_SIGNING_KEY is not set: with AMQP_URL, the tasker and every worker need the same signing key (at least 32 characters, e.g. openssl rand -hex 32), ' +
        'or, to run unsigned (anyone who can publish to the work queue then runs commands on the workers), TASKER_SIGNING=off on the tasker and every worker',
    );
  }
  return { key: off ? undefined : key, off };
}

/**
 * Who commands run as (TASKER_COMMAND_USER, WORKER_COMMAND_USER): `USER` or `USER:GROUP`, each a
 * name or a number. Parsed here; the composition root resolves names and checks that this process
 * can switch (shared/exec/command-user.ts). `group` undefined: the user's own group.
 */
export interface CommandUserSpec {
  /** The variable it came from, for messages. */
  variable: string;
  user: string;
  group: string | undefined;
}

const accountName = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
/** The largest uid or gid (uid_t is 32 bits; -1, 4294967295, means "no change" to the kernel). */
export const maxAccountId = 4_294_967_294;

/** A user or group: a name, or a number within uid_t; a problem in words otherwise. */
function accountProblem(what: string, text: string): string | undefined {
  if (/^\d+$/.test(text)) return Number(text) <= maxAccountId ? undefined : `${what} ${text} is larger than ${maxAccountId}`;
  return accountName.test(text) ? undefined : `${what} "${text}" is neither a name (letters, digits, ".", "_", "-") nor a number`;
}

/** `variable` (USER or USER:GROUP), checked; undefined when unset: commands then run as this process's own user. */
export function readCommandUser(variable: string, env: Record<string, string | undefined>, problems: ConfigProblems): CommandUserSpec | undefined {
  const text = envValue(env, variable)?.trim();
  if (text === undefined || text === '') return undefined;
  const [user = '', group, ...rest] = text.split(':');
  const found = [rest.length > 0 ? `has more than one ":"` : undefined, accountProblem('user', user), group === undefined ? undefined : accountProblem('group', group)].filter((p) => p !== undefined);
  if (found.length > 0) {
    problems.add(`${variable} "${text}" must be USER or USER:GROUP, each a name or a number (e.g. nobody, 1000:1000): ${found.join('; ')}`);
    return undefined;
  }
  if (/^0+$/.test(user) || user === 'root' || (group !== undefined && (/^0+$/.test(group) || group === 'root'))) {
    problems.add(`${variable} "${text}": commands must not run as root or group root, which could read every secret of this process; name an unprivileged user such as nobody`);
    return undefined;
  }
  return { variable, user, group };
}

function hasPassword(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    return new URL(url).password !== '';
  } catch {
    return url.includes('@'); // not a URL: assume the worst
  }
}

/**
 * The secrets this process holds that commands must not see (for the start-up warning when
 * commands run as this process's own user, which lets them read all of it through /proc).
 */
export function secretsHeld(urls: { amqpUrl: string | undefined; redisUrl: string }, env: Record<string, string | undefined>): string[] {
  return [
    envValue(env, 'TASKER_SIGNING_KEY') === undefined ? undefined : 'TASKER_SIGNING_KEY',
    hasPassword(urls.amqpUrl) || envValue(env, 'RABBITMQ_PASSWORD') !== undefined ? 'the RabbitMQ password' : undefined,
    urls.amqpUrl !== undefined && hasPassword(urls.redisUrl) ? 'the Redis password' : undefined,
  ].filter((name) => name !== undefined);
}
