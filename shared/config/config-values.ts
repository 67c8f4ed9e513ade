import { maxTimerMs, parseDuration } from './duration.js';
import { InputError } from '../errors.js';
import { defaultNamespace, isValidNamespace } from './names.js';
import { checkSigningKey } from '../broker/signing.js';
import { checkAmqpUrl, checkRedisUrl } from './urls.js';

/**
 * Parsing of configuration values shared by tasker and worker. Pure: every problem is collected,
 * and `done()` reports them all at once. An empty environment variable counts as unset; an empty
 * flag (`--concurrency ""`) is a mistake and reported.
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

export interface ConfigProblems {
  count(name: string, text: string | undefined, min: number): number | undefined;
  duration(name: string, text: string | undefined, options?: { allowZero?: boolean }): number | undefined;
  logLevel(value: string): void;
  namespace(value: string): void;
  amqpUrl(value: string): void;
  redisUrl(value: string): void;
  add(problem: string): void;
  /** Throws one InputError listing every problem, if there is any. */
  done(): void;
}

export function collectProblems(): ConfigProblems {
  const problems: string[] = [];
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
  /** undefined when not set (and not required). */
  amqpUrl: string | undefined;
  /** Default redis://127.0.0.1:6379. */
  redisUrl: string;
  /** Default "tasker". */
  namespace: string;
  /** Default 10. */
  deliveryLimit: number;
}

/**
 * RabbitMQ, Redis and naming settings, the same for every program. `missingAmqp` is the problem
 * to report when AMQP_URL is required but unset; without it, AMQP_URL is optional (local mode).
 */
export function readConnection(flags: ConnectionFlags, env: Record<string, string | undefined>, problems: ConfigProblems, missingAmqp?: string): Connection {
  const [, amqpUrl] = flagOrEnv('--amqp-url', flags.amqpUrl, 'AMQP_URL', env);
  if (amqpUrl !== undefined) problems.amqpUrl(amqpUrl);
  else if (missingAmqp !== undefined) problems.add(missingAmqp);
  const redisUrl = flagOrEnv('--redis-url', flags.redisUrl, 'REDIS_URL', env)[1] ?? 'redis://127.0.0.1:6379';
  // Redis only matters once RabbitMQ is in use.
  if (amqpUrl !== undefined || missingAmqp !== undefined) problems.redisUrl(redisUrl);
  const namespace = flagOrEnv('--namespace', flags.namespace, 'TASKER_NAMESPACE', env)[1] ?? defaultNamespace;
  problems.namespace(namespace);
  const deliveryLimit = problems.count('TASKER_DELIVERY_LIMIT', envValue(env, 'TASKER_DELIVERY_LIMIT'), 1) ?? 10;
  return { amqpUrl, redisUrl, namespace, deliveryLimit };
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

/** TASKER_SIGNING_KEY, checked; undefined when unset (messages then go unsigned). */
export function readSigningKey(env: Record<string, string | undefined>, problems: ConfigProblems): string | undefined {
  const signingKey = envValue(env, 'TASKER_SIGNING_KEY');
  const keyProblem = signingKey === undefined ? undefined : checkSigningKey(signingKey);
  if (keyProblem !== undefined) problems.add(keyProblem);
  return signingKey;
}
