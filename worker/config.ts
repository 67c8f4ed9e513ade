import { availableParallelism } from 'node:os';
import { checkAmqpUrl, checkRedisUrl } from '../shared/urls.js';
import { parseDuration } from '../shared/duration.js';
import { InputError } from '../shared/errors.js';
import { defaultNamespace, isValidNamespace } from '../shared/names.js';

/** Worker configuration: flags, then environment, then defaults. Pure; reports every problem at once. */

export const workerEnvironment = {
  AMQP_URL: { default: '(required)', description: 'RabbitMQ to take commands from, amqp://USER:PASSWORD@HOST:5672/VHOST.' },
  REDIS_URL: { default: 'redis://127.0.0.1:6379', description: 'Redis holding run state (results, leases).' },
  WORKDIR: { default: 'the current directory', description: 'Shared directory commands run in; logs go under WORKDIR/.tasker/runs/.' },
  WORKER_CONCURRENCY: { default: '1', description: 'Commands run at once (also the prefetch).' },
  WORKER_DRAIN_TIMEOUT: { default: '60s', description: 'On SIGTERM, how long running commands may finish before they are killed and requeued.' },
  WORKER_EXIT_WHEN_IDLE: { default: 'never', description: 'Exit 0 after this long without work (for a KEDA ScaledJob).' },
  TASKER_NAMESPACE: { default: defaultNamespace, description: 'Prefix of queue names and Redis keys; the work queue is NAMESPACE.commands.' },
  TASKER_DELIVERY_LIMIT: { default: '10', description: 'Deliveries of one message before it is dead-lettered (a command that keeps killing its worker).' },
  TASKER_LEASE_TTL: { default: '30s', description: 'A running command whose worker stopped renewing its lease this long is run again elsewhere.' },
  LOG_LEVEL: { default: 'info', description: 'pino log level.' },
} as const;

export interface WorkerFlags {
  amqpUrl?: string;
  redisUrl?: string;
  workdir?: string;
  concurrency?: string;
  exitWhenIdle?: string;
  drainTimeout?: string;
  namespace?: string;
  logLevel?: string;
}

export interface WorkerConfig {
  amqpUrl: string;
  redisUrl: string;
  workdir: string;
  /** Default 1. */
  concurrency: number;
  /** Default: never. */
  exitWhenIdleMs: number | undefined;
  /** Default 60 s. */
  drainTimeoutMs: number;
  namespace: string;
  /** Default 10. */
  deliveryLimit: number;
  /** Default 30 s. */
  leaseTtlMs: number;
  logLevel: string;
}

export function loadWorkerConfig(flags: WorkerFlags, env: Record<string, string | undefined>, cwd: string): WorkerConfig {
  const problems: string[] = [];
  const amqpUrl = flags.amqpUrl ?? env['AMQP_URL'] ?? '';
  if (amqpUrl === '') {
    problems.push('needs AMQP_URL (the RabbitMQ server to take commands from), e.g. AMQP_URL=amqp://user:pass@rabbitmq:5672. To run a jobs file on this machine without RabbitMQ, use: tasker run FILE');
  } else {
    const problem = checkAmqpUrl(amqpUrl);
    if (problem !== undefined) problems.push(problem);
  }
  const redisUrl = flags.redisUrl ?? env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const redisProblem = checkRedisUrl(redisUrl);
  if (redisProblem !== undefined) problems.push(redisProblem);

  const count = (name: string, text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined || text === '') return fallback;
    if (!/^\d+$/.test(text.trim()) || Number(text) < min) {
      problems.push(`${name} must be a whole number of at least ${min}, got "${text}"`);
      return fallback;
    }
    return Number(text);
  };
  const duration = (name: string, text: string | undefined, fallback: number | undefined): number | undefined => {
    if (text === undefined || text === '') return fallback;
    const value = parseDuration(text);
    if (value === undefined || value === 0) {
      problems.push(`${name} must be a duration such as 30s, 5m or 1h, got "${text}"`);
      return fallback;
    }
    return value;
  };

  const concurrency = count(flags.concurrency !== undefined ? '--concurrency' : 'WORKER_CONCURRENCY', flags.concurrency ?? env['WORKER_CONCURRENCY'], 1, 1);
  if (concurrency > availableParallelism() * 64) problems.push(`concurrency ${concurrency} is far beyond this machine's ${availableParallelism()} CPUs`);
  const exitWhenIdleMs = duration(flags.exitWhenIdle !== undefined ? '--exit-when-idle' : 'WORKER_EXIT_WHEN_IDLE', flags.exitWhenIdle ?? env['WORKER_EXIT_WHEN_IDLE'], undefined);
  const drainTimeoutMs = duration(flags.drainTimeout !== undefined ? '--drain-timeout' : 'WORKER_DRAIN_TIMEOUT', flags.drainTimeout ?? env['WORKER_DRAIN_TIMEOUT'], 60_000) ?? 60_000;
  const leaseTtlMs = duration('TASKER_LEASE_TTL', env['TASKER_LEASE_TTL'], 30_000) ?? 30_000;
  const deliveryLimit = count('TASKER_DELIVERY_LIMIT', env['TASKER_DELIVERY_LIMIT'], 10, 1);
  const namespace = flags.namespace ?? env['TASKER_NAMESPACE'] ?? defaultNamespace;
  if (!isValidNamespace(namespace)) problems.push(`TASKER_NAMESPACE "${namespace}" must be 1-40 letters, digits, ".", "_" or "-"`);
  const logLevel = flags.logLevel ?? env['LOG_LEVEL'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) problems.push(`LOG_LEVEL "${logLevel}" is not a log level`);

  if (problems.length > 0) {
    throw new InputError('config', problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return {
    amqpUrl,
    redisUrl,
    workdir: flags.workdir ?? env['WORKDIR'] ?? cwd,
    concurrency,
    exitWhenIdleMs,
    drainTimeoutMs,
    namespace,
    deliveryLimit,
    leaseTtlMs,
    logLevel,
  };
}
