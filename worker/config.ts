import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { CompletionShell } from '../shared/cli/completion.js';
import { collectProblems, envValue, flagOrEnv, readCommandUser, readConnection, readSigning, type CommandUserSpec, type ConfigProblems, type ConfigWarning, type ReadFile } from '../shared/config/config-values.js';
import { tlsEnvironment, type TlsFiles } from '../shared/config/tls-config.js';
import { metricsEnvironment, readMetricsHost, readMetricsPort } from '../shared/observe/metrics-config.js';
import { defaultNamespace, defaultPool, isValidPoolName, poolNameRule } from '../shared/config/names.js';
import { readS3Connection, s3ConnectionEnvironment, type S3Connection } from '../shared/storage/s3-config.js';
import { placementEnvironment } from '../shared/state/placement.js';

/**
 * Worker configuration: flags, then environment, then defaults. Pure but for the files it names
 * (TLS certificates), read once through `readFile`; reports every problem at once.
 */

export const workerEnvironment = {
  AMQP_URL: { default: '(required)', description: 'RabbitMQ to take commands from, amqp://USER:PASSWORD@HOST:5672/VHOST.' },
  REDIS_URL: { default: 'redis://127.0.0.1:6379', description: 'Redis holding run state (results, leases).' },
  WORKDIR: { default: 'the current directory', description: 'Shared directory commands run in; logs go under WORKDIR/.tasker/runs/.' },
  WORKER_CONCURRENCY: { default: '1', description: 'Commands run at once (also the prefetch).' },
  WORKER_DRAIN_TIMEOUT: { default: '60s', description: 'On SIGTERM, how long running commands may finish before they are killed and requeued.' },
  WORKER_EXIT_WHEN_IDLE: { default: 'never', description: 'Exit 0 after this long without work (for a KEDA ScaledJob).' },
  WORKER_POOL: { default: defaultPool, description: 'Comma-separated worker pools to serve (their queues are consumed, sharing the concurrency); same as --pool.' },
  TASKER_NAMESPACE: { default: defaultNamespace, description: 'Prefix of queue names and Redis keys; the work queue is NAMESPACE.commands.' },
  TASKER_DELIVERY_LIMIT: { default: '10', description: 'Starts of one attempt without a result before it is dead-lettered, not run again (a command that keeps killing its worker).' },
  TASKER_LEASE_TTL: { default: '30s', description: 'A running command whose worker stopped renewing its lease this long is run again elsewhere (sooner once its worker process is known to have ended).' },
  LOG_LEVEL: { default: 'info', description: 'pino log level.' },
  TASKER_SIGNING_KEY: { default: '(required unless TASKER_SIGNING=off)', description: 'Secret shared with the tasker; only messages whose HMAC-SHA256 signature verifies for the queue they came from are run, anything else is dead-lettered; results are signed with it.' },
  TASKER_SIGNING: { default: 'on', description: 'off: run without TASKER_SIGNING_KEY, unsigned messages only (a warning at start-up); a signed message is then dead-lettered.' },
  ...tlsEnvironment,
  WORKER_COMMAND_USER: { default: "unset: the worker's own user", description: 'User (and group) commands run as, USER or USER:GROUP (names or numbers): keeps the worker\'s secrets out of their reach. The worker must be root or hold CAP_SETUID, CAP_SETGID and CAP_KILL; it exits 2 at start when it cannot switch.' },
  ...s3ConnectionEnvironment,
  ...metricsEnvironment,
  ...placementEnvironment,
} as const;

export interface WorkerFlags {
  amqpUrl?: string;
  redisUrl?: string;
  workdir?: string;
  concurrency?: string;
  exitWhenIdle?: string;
  drainTimeout?: string;
  namespace?: string;
  /** --pool, repeatable, each value comma-separated. */
  pool?: string[];
  logLevel?: string;
  metricsPort?: string;
  metricsHost?: string;
  /** --completion bash|zsh: print the completion script instead of starting. */
  completion?: CompletionShell;
}

export interface WorkerConfig {
  amqpUrl: string;
  /** AMQP_TLS_* files, read. Default: none (amqps:// trusts the system's CAs). */
  amqpTls: TlsFiles | undefined;
  redisUrl: string;
  /** REDIS_TLS_* files, read. Default: none. */
  redisTls: TlsFiles | undefined;
  workdir: string;
  /** Default 1. */
  concurrency: number;
  /** Default: never. */
  exitWhenIdleMs: number | undefined;
  /** Default 60 s. */
  drainTimeoutMs: number;
  namespace: string;
  /** The pools whose queues it consumes, without duplicates. Default: ['default']. */
  pools: string[];
  /** TASKER_DELIVERY_LIMIT: starts of an attempt without a result before it is dead-lettered. Default 10. */
  deliveryLimit: number;
  /** Default 30 s. */
  leaseTtlMs: number;
  logLevel: string;
  /** /healthz, /livez and /metrics on this port. Default: no server. */
  metricsPort: number | undefined;
  /** The address that server binds to (METRICS_HOST). Default: every interface. */
  metricsHost: string | undefined;
  /** How to reach S3 when a run's messages ask for uploads. */
  s3: S3Connection;
  /** TASKER_SIGNING_KEY: run only messages signed with it. Required unless `signingOff`. */
  signingKey: string | undefined;
  /** To log at start-up (plain-text connections to other hosts). */
  warnings: ConfigWarning[];
  /** TASKER_SIGNING=off: run unsigned messages only, refuse signed ones. Default false. */
  signingOff: boolean;
  /** WORKER_COMMAND_USER: who commands run as. Default: unset, the worker's own user. */
  commandUser: CommandUserSpec | undefined;
}

export function loadWorkerConfig(flags: WorkerFlags, env: Record<string, string | undefined>, cwd: string, readFile: ReadFile = readFileSync): WorkerConfig {
  const problems = collectProblems(readFile);
  const connection = readConnection(
    flags,
    env,
    problems,
    'needs AMQP_URL (the RabbitMQ server to take commands from), e.g. AMQP_URL=amqp://user:pass@rabbitmq:5672. To run a jobs file on this machine without RabbitMQ, use: tasker run FILE',
  );
  const concurrency = problems.count(...flagOrEnv('--concurrency', flags.concurrency, 'WORKER_CONCURRENCY', env), 1) ?? 1;
  if (concurrency > availableParallelism() * 64) problems.add(`concurrency ${concurrency} is far beyond this machine's ${availableParallelism()} CPUs`);
  const exitWhenIdleMs = problems.duration(...flagOrEnv('--exit-when-idle', flags.exitWhenIdle, 'WORKER_EXIT_WHEN_IDLE', env));
  const drainTimeoutMs = problems.duration(...flagOrEnv('--drain-timeout', flags.drainTimeout, 'WORKER_DRAIN_TIMEOUT', env)) ?? 60_000;
  const leaseTtlMs = problems.duration('TASKER_LEASE_TTL', envValue(env, 'TASKER_LEASE_TTL')) ?? 30_000;
  const pools = readPools(flags, env, problems);
  const logLevel = flagOrEnv('--log-level', flags.logLevel, 'LOG_LEVEL', env)[1] ?? 'info';
  problems.logLevel(logLevel);
  const metricsPort = readMetricsPort(flags.metricsPort, env, problems);
  const metricsHost = readMetricsHost(flags.metricsHost, env, problems);
  const s3 = readS3Connection(env, problems);
  const signing = readSigning(env, problems, true);
  const commandUser = readCommandUser('WORKER_COMMAND_USER', env, problems);
  problems.done();
  return {
    ...connection,
    amqpUrl: connection.amqpUrl!,
    workdir: flags.workdir ?? env['WORKDIR'] ?? cwd,
    concurrency,
    pools,
    exitWhenIdleMs,
    drainTimeoutMs,
    leaseTtlMs,
    logLevel,
    metricsPort,
    metricsHost,
    s3,
    signingKey: signing.key,
    signingOff: signing.off,
    warnings: problems.warnings(),
    commandUser,
  };
}

/** --pool (repeatable, comma-separated), else WORKER_POOL (comma-separated), else the default pool. */
function readPools(flags: WorkerFlags, env: Record<string, string | undefined>, problems: ConfigProblems): string[] {
  const [name, text] = flags.pool === undefined ? ['WORKER_POOL', envValue(env, 'WORKER_POOL')] : ['--pool', flags.pool.join(',')];
  if (text === undefined) return [defaultPool];
  const pools = [...new Set(text.split(',').map((pool) => pool.trim()))];
  for (const pool of pools) {
    if (!isValidPoolName(pool)) problems.add(`${name}: "${pool}" is not a pool name; a pool name is ${poolNameRule} (several: ${name === '--pool' ? '--pool default,highmem' : 'WORKER_POOL=default,highmem'})`);
  }
  return pools;
}
