import { availableParallelism } from 'node:os';
import { parseDuration } from '../shared/duration.js';
import { InputError } from '../shared/errors.js';
import { splitPresets, type SplitPreset } from '../shared/plan.js';
import { defaultNamespace, isValidNamespace } from '../shared/names.js';
import { isValidRunId } from '../shared/run-layout.js';
import { checkAmqpUrl, checkRedisUrl } from '../shared/urls.js';

/**
 * Configuration of `tasker run`: flags first, then environment variables, then defaults.
 * Pure: the environment is an argument. Every problem is reported at once.
 */

/** Environment variables the tasker reads, with their defaults (the README's table comes from here). */
export const taskerEnvironment = {
  WORKDIR: { default: 'the current directory', description: 'Directory commands run in, shared with the workers; same as --workdir.' },
  LOG_LEVEL: { default: 'info', description: 'pino log level: trace, debug, info, warn, error, fatal, silent.' },
  TASKER_PROGRESS_INTERVAL: { default: '5s', description: 'How often a progress line is logged when stderr is not a terminal; same as --progress-interval.' },
  AMQP_URL: { default: 'unset: run locally', description: 'RabbitMQ to dispatch through; same as --amqp-url. When set, workers run the commands.' },
  REDIS_URL: { default: 'redis://127.0.0.1:6379', description: 'Redis for run state in distributed mode; same as --redis-url.' },
  TASKER_NAMESPACE: { default: 'tasker', description: 'Prefix of queue names and Redis keys; the work queue is NAMESPACE.commands.' },
  TASKER_DELIVERY_LIMIT: { default: '10', description: 'Deliveries of one command message before RabbitMQ dead-letters it (its workers kept dying).' },
  TASKER_MAX_IN_FLIGHT: { default: '10000', description: 'Commands published and not yet finished, at most (bounds memory and queue length).' },
  TASKER_STALL_WARNING: { default: '60s', description: 'Warn when no worker consumes, or nothing finished, for this long.' },
} as const;

export type TaskerEnvName = keyof typeof taskerEnvironment;

/** Raw flag values, as the CLI parser hands them over (strings, unvalidated). */
export interface RunFlags {
  concurrency?: string;
  retries?: string;
  retryDelay?: string;
  timeout?: string;
  killGrace?: string;
  progressInterval?: string;
  keepGoing?: boolean;
  split?: string;
  workdir?: string;
  clean?: boolean;
  forceClean?: boolean;
  stage?: string[];
  runId?: string;
  resume?: string;
  directExec?: boolean;
  logLevel?: string;
  amqpUrl?: string;
  redisUrl?: string;
  namespace?: string;
  maxInFlight?: string;
  stallWarning?: string;
}

export interface RunConfig {
  files: string[];
  /** Local slots for workers phases. Default: the number of CPUs. */
  concurrency: number;
  /** Extra attempts after a failure. Default 0. */
  retries: number;
  /** Base of the exponential backoff between attempts. Default 1 s. */
  retryDelayMs: number;
  /** Longest wait between attempts. Default 60 s. */
  maxRetryDelayMs: number;
  /** Per-command limit. Default: none. */
  timeoutMs: number | undefined;
  /** Between SIGTERM and SIGKILL when a command is stopped. Default 10 s. */
  killGraceMs: number;
  keepGoing: boolean;
  split: SplitPreset | undefined;
  /** Default: $WORKDIR, else the current directory. */
  workdir: string;
  clean: boolean;
  forceClean: boolean;
  stage: string[];
  /** Explicit run id (new or existing). */
  runId: string | undefined;
  /** true when --resume: the run must exist. */
  mustExist: boolean;
  progressIntervalMs: number;
  directExec: boolean;
  logLevel: string;
  /** Set: dispatch through RabbitMQ. Unset: run everything here. */
  amqpUrl: string | undefined;
  /** Default redis://127.0.0.1:6379. */
  redisUrl: string;
  /** Default "tasker". */
  namespace: string;
  /** Default 10. */
  deliveryLimit: number;
  /** Default 10000. */
  maxInFlight: number;
  /** Default 60 s. */
  stallWarningMs: number;
}

const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function parseCount(name: string, text: string | undefined, min: number, problems: string[]): number | undefined {
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
}

function parseDurationFlag(name: string, text: string | undefined, problems: string[], allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  const value = parseDuration(text);
  if (value === undefined || (!allowZero && value === 0)) {
    problems.push(`${name} must be a duration such as 90s, 15m or 2h, got "${text}"`);
    return undefined;
  }
  return value;
}

export function loadRunConfig(files: readonly string[], flags: RunFlags, env: Record<string, string | undefined>, cwd: string): RunConfig {
  const problems: string[] = [];
  const concurrency = parseCount('--concurrency', flags.concurrency, 1, problems);
  const retries = parseCount('--retries', flags.retries, 0, problems);
  const retryDelayMs = parseDurationFlag('--retry-delay', flags.retryDelay, problems, true);
  const timeoutMs = parseDurationFlag('--timeout', flags.timeout, problems);
  const killGraceMs = parseDurationFlag('--kill-grace', flags.killGrace, problems, true);
  const progressIntervalMs = parseDurationFlag(
    flags.progressInterval !== undefined ? '--progress-interval' : 'TASKER_PROGRESS_INTERVAL',
    flags.progressInterval ?? env['TASKER_PROGRESS_INTERVAL'],
    problems,
  );

  let split: SplitPreset | undefined;
  if (flags.split !== undefined) {
    if ((splitPresets as readonly string[]).includes(flags.split)) split = flags.split as SplitPreset;
    else problems.push(`--split must be one of: ${splitPresets.join(', ')}; got "${flags.split}"`);
  }

  const logLevel = flags.logLevel ?? env['LOG_LEVEL'] ?? 'info';
  if (!logLevels.includes(logLevel)) problems.push(`log level must be one of ${logLevels.join(', ')}; got "${logLevel}"`);

  for (const [flag, value] of [['--run-id', flags.runId], ['--resume', flags.resume]] as const) {
    if (value !== undefined && !isValidRunId(value)) {
      problems.push(`${flag} "${value}" is not a valid run id: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    }
  }
  if (flags.runId !== undefined && flags.resume !== undefined && flags.runId !== flags.resume) {
    problems.push('--run-id and --resume name different runs; give one of them');
  }
  const mustExist = flags.resume !== undefined;
  if (files.length === 0 && !mustExist) problems.push('no jobs file given: tasker run [options] FILE... (or --resume RUN_ID)');
  if (flags.forceClean === true && flags.clean !== true) problems.push('--force-clean only makes sense with --clean');

  const amqpUrl = flags.amqpUrl ?? (env['AMQP_URL'] === '' ? undefined : env['AMQP_URL']);
  if (amqpUrl !== undefined) {
    const problem = checkAmqpUrl(amqpUrl);
    if (problem !== undefined) problems.push(problem);
  }
  const redisUrl = flags.redisUrl ?? env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (amqpUrl !== undefined) {
    const problem = checkRedisUrl(redisUrl);
    if (problem !== undefined) problems.push(problem);
  }
  const namespace = flags.namespace ?? env['TASKER_NAMESPACE'] ?? defaultNamespace;
  if (!isValidNamespace(namespace)) problems.push(`TASKER_NAMESPACE "${namespace}" must be 1-40 letters, digits, ".", "_" or "-"`);
  const deliveryLimit = parseCount('TASKER_DELIVERY_LIMIT', env['TASKER_DELIVERY_LIMIT'], 1, problems);
  const maxInFlight = parseCount(flags.maxInFlight !== undefined ? '--max-in-flight' : 'TASKER_MAX_IN_FLIGHT', flags.maxInFlight ?? env['TASKER_MAX_IN_FLIGHT'], 1, problems);
  const stallWarningMs = parseDurationFlag(flags.stallWarning !== undefined ? '--stall-warning' : 'TASKER_STALL_WARNING', flags.stallWarning ?? env['TASKER_STALL_WARNING'], problems);

  if (problems.length > 0) {
    throw new InputError('config', problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return {
    files: [...files],
    concurrency: concurrency ?? Math.max(1, availableParallelism()),
    retries: retries ?? 0,
    retryDelayMs: retryDelayMs ?? 1000,
    maxRetryDelayMs: 60_000,
    timeoutMs,
    killGraceMs: killGraceMs ?? 10_000,
    keepGoing: flags.keepGoing ?? false,
    split,
    workdir: flags.workdir ?? env['WORKDIR'] ?? cwd,
    clean: flags.clean ?? false,
    forceClean: flags.forceClean ?? false,
    stage: flags.stage ?? [],
    runId: flags.resume ?? flags.runId,
    mustExist,
    progressIntervalMs: progressIntervalMs ?? 5000,
    directExec: flags.directExec ?? true,
    logLevel,
    amqpUrl,
    redisUrl,
    namespace,
    deliveryLimit: deliveryLimit ?? 10,
    maxInFlight: maxInFlight ?? 10_000,
    stallWarningMs: stallWarningMs ?? 60_000,
  };
}

export interface OpsFlags {
  amqpUrl?: string;
  redisUrl?: string;
  namespace?: string;
}

export interface OpsConfig {
  amqpUrl: string;
  redisUrl: string;
  namespace: string;
  deliveryLimit: number;
}

/** For `tasker status` and `tasker purge`, which always talk to RabbitMQ and Redis. */
export function loadOpsConfig(flags: OpsFlags, env: Record<string, string | undefined>): OpsConfig {
  const problems: string[] = [];
  const amqpUrl = flags.amqpUrl ?? env['AMQP_URL'] ?? '';
  if (amqpUrl === '') problems.push('needs AMQP_URL (or --amqp-url): status and purge look at RabbitMQ and Redis');
  else {
    const problem = checkAmqpUrl(amqpUrl);
    if (problem !== undefined) problems.push(problem);
  }
  const redisUrl = flags.redisUrl ?? env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const redisProblem = checkRedisUrl(redisUrl);
  if (redisProblem !== undefined) problems.push(redisProblem);
  const namespace = flags.namespace ?? env['TASKER_NAMESPACE'] ?? defaultNamespace;
  if (!isValidNamespace(namespace)) problems.push(`TASKER_NAMESPACE "${namespace}" must be 1-40 letters, digits, ".", "_" or "-"`);
  const deliveryLimit = parseCount('TASKER_DELIVERY_LIMIT', env['TASKER_DELIVERY_LIMIT'], 1, problems) ?? 10;
  if (problems.length > 0) {
    throw new InputError('config', problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return { amqpUrl, redisUrl, namespace, deliveryLimit };
}
