import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { collectProblems, envValue, flagOrEnv, readConnection, readSigningKey, type ConfigProblems, type Connection, type ConnectionFlags } from '../shared/config/config-values.js';
import { checkUploadPatterns, normalizePrefix, parseUploadPatterns } from '../shared/storage/outputs.js';
import { metricsEnvironment, metricsHostEnvironment, readMetricsHost, readMetricsPort } from '../shared/observe/metrics-config.js';
import { splitPresets, type SplitPreset } from './jobs/plan.js';
import { parsePoolAssignments, type PoolAssignment } from './jobs/phase-pools.js';
import { haltModes, type HaltMode } from './dispatch/phase-ports.js';
import { defaultNamespace } from '../shared/config/names.js';
import { maxBundleSize } from '../shared/broker/messages.js';
import { isValidRunId } from '../shared/run-dir/run-layout.js';
import { readS3Connection, s3ConnectionEnvironment, type S3Connection } from '../shared/storage/s3-config.js';

/**
 * Configuration of `tasker run`: flags first, then environment variables, then defaults.
 * Pure: the environment is an argument. Every problem is reported at once.
 */

/** Environment variables the tasker reads, with their defaults (the README's table comes from here). */
export const taskerEnvironment = {
  WORKDIR: { default: 'the current directory', description: 'Directory commands run in, shared with the workers; same as --workdir.' },
  LOG_LEVEL: { default: 'info', description: 'pino log level: trace, debug, info, warn, error, fatal, silent.' },
  TASKER_PROGRESS_INTERVAL: { default: '5s', description: 'How often a progress line is logged when stderr is not a terminal; same as --progress-interval.' },
  TASKER_REPORT_INTERVAL: { default: '30s', description: "How often report.html is rewritten while a run goes (at least ten times the last rewrite's duration)." },
  AMQP_URL: { default: 'unset: run locally', description: 'RabbitMQ to dispatch through; same as --amqp-url. When set, workers run the commands.' },
  REDIS_URL: { default: 'redis://127.0.0.1:6379', description: 'Redis for run state in distributed mode; same as --redis-url.' },
  TASKER_NAMESPACE: { default: defaultNamespace, description: 'Prefix of queue names and Redis keys; the work queue is NAMESPACE.commands.' },
  TASKER_DELIVERY_LIMIT: { default: '10', description: 'Deliveries of one command message before RabbitMQ dead-letters it (its workers kept dying).' },
  TASKER_MAX_IN_FLIGHT: { default: '10000', description: 'Commands published and not yet finished, at most (bounds memory and queue length).' },
  TASKER_BUNDLE_SIZE: { default: 'auto', description: 'Commands per work-queue message: auto (bundles while commands are short, one per message while they are long), or a fixed number; 1 turns bundling off. Same as --bundle-size.' },
  TASKER_STALL_WARNING: { default: '60s', description: 'Warn when no worker consumes, or nothing finished, for this long.' },
  TASKER_SIGNING_KEY: { default: 'unset: messages are not signed', description: 'Secret shared with the workers; each command message is signed with HMAC-SHA256 and workers run only messages whose signature verifies.' },
  S3_BUCKET: { default: 'unset: no uploads', description: 'Bucket to upload outputs and the run record to; S3 is off unless it is set.' },
  S3_PREFIX: { default: 'the run id', description: 'Key prefix: objects are PREFIX/<path relative to the workdir>.' },
  S3_UPLOAD: { default: 'none', description: 'Comma-separated glob patterns, relative to the workdir, of the files a successful command created or changed to upload, e.g. output/**/metrics_*.json,output/figures/*.png.' },
  ...s3ConnectionEnvironment,
  ...metricsEnvironment,
  ...metricsHostEnvironment,
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
  halt?: string;
  split?: string;
  pool?: string[];
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
  bundleSize?: string;
  stallWarning?: string;
  metricsPort?: string;
  metricsHost?: string;
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
  /** Stop at the first command that fails for good: `soon` (let running ones finish) or `now`. Default 'never'. */
  halt: HaltMode;
  split: SplitPreset | undefined;
  /** --pool PHASE=POOL: the worker pool of a phase, over its marker's. Default: none (markers, else `default`). */
  pools: PoolAssignment[];
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
  /** Pause between two rewrites of report.html during the run. Default 30 s. */
  reportIntervalMs: number;
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
  /** Commands per work-queue message; undefined (default, `auto`): adaptive. */
  bundleSize: number | undefined;
  /** Default 60 s. */
  stallWarningMs: number;
  /** /healthz, /livez and /metrics on this port while the run lasts. Default: no server. */
  metricsPort: number | undefined;
  /** The address that server binds to. Default: every interface. */
  metricsHost: string | undefined;
  /** Set when S3_BUCKET is: what to upload and how to reach S3. */
  s3: RunS3Config | undefined;
  /** TASKER_SIGNING_KEY. Default: unset, messages are not signed. */
  signingKey: string | undefined;
}

export interface RunS3Config {
  bucket: string;
  /** Default: the run id. */
  prefix: string | undefined;
  /** From S3_UPLOAD. Default: none (only the run record, at the end). */
  patterns: string[];
  connection: S3Connection;
}

/** S3_BUCKET, S3_PREFIX, S3_UPLOAD and the connection; undefined when S3 is off. */
function readRunS3(env: Record<string, string | undefined>, problems: ConfigProblems): RunS3Config | undefined {
  const bucket = envValue(env, 'S3_BUCKET');
  const prefix = envValue(env, 'S3_PREFIX');
  const patterns = parseUploadPatterns(envValue(env, 'S3_UPLOAD'));
  if (bucket === undefined) {
    if (patterns.length > 0 || prefix !== undefined) problems.add(`${patterns.length > 0 ? 'S3_UPLOAD' : 'S3_PREFIX'} is set but S3_BUCKET is not: set S3_BUCKET to the bucket to upload to`);
    return undefined;
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) problems.add(`S3_BUCKET "${bucket}" is not a valid bucket name: 3-63 lowercase letters, digits, "." and "-"`);
  for (const problem of checkUploadPatterns(patterns)) problems.add(problem);
  if (prefix !== undefined && (prefix.split('/').includes('..') || normalizePrefix(prefix) === '')) problems.add(`S3_PREFIX "${prefix}" must be a key prefix such as results/run-1, without ".."`);
  return { bucket, prefix: prefix === undefined ? undefined : normalizePrefix(prefix), patterns, connection: readS3Connection(env, problems) };
}

function readHalt(flags: RunFlags, env: Record<string, string | undefined>, problems: ConfigProblems): HaltMode {
  if (flags.halt === undefined) return 'never';
  if (!(haltModes as readonly string[]).includes(flags.halt)) {
    problems.add(`--halt must be one of: ${haltModes.join(', ')}; got "${flags.halt}"`);
    return 'never';
  }
  if (flags.halt !== 'never' && (flags.amqpUrl ?? envValue(env, 'AMQP_URL')) !== undefined) {
    problems.add(`--halt works in local runs only for now: with AMQP_URL, commands already queued for the workers would still run. Drop --halt, or run without AMQP_URL`);
  }
  if (flags.halt !== 'never' && flags.keepGoing === true) problems.add(`--halt ${flags.halt} stops the run at the first failure and --keep-going runs on after failures: give one of them`);
  return flags.halt as HaltMode;
}

export function loadRunConfig(files: readonly string[], flags: RunFlags, env: Record<string, string | undefined>, cwd: string): RunConfig {
  const problems = collectProblems();
  const concurrency = problems.count('--concurrency', flags.concurrency, 1);
  const retries = problems.count('--retries', flags.retries, 0);
  const retryDelayMs = problems.duration('--retry-delay', flags.retryDelay, { allowZero: true });
  const timeoutMs = problems.duration('--timeout', flags.timeout);
  const killGraceMs = problems.duration('--kill-grace', flags.killGrace, { allowZero: true });
  const progressIntervalMs = problems.duration(...flagOrEnv('--progress-interval', flags.progressInterval, 'TASKER_PROGRESS_INTERVAL', env));
  const reportIntervalMs = problems.duration('TASKER_REPORT_INTERVAL', envValue(env, 'TASKER_REPORT_INTERVAL'));

  let split: SplitPreset | undefined;
  if (flags.split !== undefined) {
    if ((splitPresets as readonly string[]).includes(flags.split)) split = flags.split as SplitPreset;
    else problems.add(`--split must be one of: ${splitPresets.join(', ')}; got "${flags.split}"`);
  }

  const pools = parsePoolAssignments(flags.pool ?? []);
  for (const problem of pools.problems) problems.add(problem);

  const logLevel = flagOrEnv('--log-level', flags.logLevel, 'LOG_LEVEL', env)[1] ?? 'info';
  problems.logLevel(logLevel);

  for (const [flag, value] of [['--run-id', flags.runId], ['--resume', flags.resume]] as const) {
    if (value !== undefined && !isValidRunId(value)) {
      problems.add(`${flag} "${value}" is not a valid run id: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    }
  }
  if (flags.runId !== undefined && flags.resume !== undefined && flags.runId !== flags.resume) {
    problems.add('--run-id and --resume name different runs; give one of them');
  }
  const mustExist = flags.resume !== undefined;
  if (files.length === 0 && !mustExist) problems.add('no jobs file given: tasker run [options] FILE... (or --resume RUN_ID)');
  const halt = readHalt(flags, env, problems);
  if (flags.forceClean === true && flags.clean !== true) problems.add('--force-clean only makes sense with --clean');

  const connection = readConnection(flags, env, problems);
  const maxInFlight = problems.count(...flagOrEnv('--max-in-flight', flags.maxInFlight, 'TASKER_MAX_IN_FLIGHT', env), 1);
  const bundleSize = readBundleSize(flags, env, problems);
  const stallWarningMs = problems.duration(...flagOrEnv('--stall-warning', flags.stallWarning, 'TASKER_STALL_WARNING', env));
  const metricsPort = readMetricsPort(flags.metricsPort, env, problems);
  const metricsHost = readMetricsHost(flags.metricsHost, env, problems);
  const s3 = readRunS3(env, problems);
  const signingKey = readSigningKey(env, problems);
  problems.done();
  return {
    files: [...files],
    concurrency: concurrency ?? Math.max(1, availableParallelism()),
    retries: retries ?? 0,
    retryDelayMs: retryDelayMs ?? 1000,
    maxRetryDelayMs: 60_000,
    timeoutMs,
    killGraceMs: killGraceMs ?? 10_000,
    keepGoing: flags.keepGoing ?? false,
    halt,
    split,
    pools: pools.assignments,
    workdir: workdirFrom(flags.workdir, env, cwd),
    clean: flags.clean ?? false,
    forceClean: flags.forceClean ?? false,
    stage: flags.stage ?? [],
    runId: flags.resume ?? flags.runId,
    mustExist,
    progressIntervalMs: progressIntervalMs ?? 5000,
    reportIntervalMs: reportIntervalMs ?? 30_000,
    directExec: flags.directExec ?? true,
    logLevel,
    ...connection,
    maxInFlight: maxInFlight ?? 10_000,
    bundleSize,
    stallWarningMs: stallWarningMs ?? 60_000,
    metricsPort,
    metricsHost,
    s3,
    signingKey,
  };
}

export type OpsFlags = ConnectionFlags;
export type OpsConfig = Connection & { amqpUrl: string; logLevel: string };

/** For `tasker status` and `tasker purge`, which always talk to RabbitMQ and Redis. */
export function loadOpsConfig(flags: OpsFlags, env: Record<string, string | undefined>): OpsConfig {
  const problems = collectProblems();
  const connection = readConnection(flags, env, problems, 'needs AMQP_URL (or --amqp-url): status and purge look at RabbitMQ and Redis');
  // Quiet by default: these commands print their answer; logs are for trouble.
  const logLevel = envValue(env, 'LOG_LEVEL') ?? 'warn';
  problems.logLevel(logLevel);
  problems.done();
  return { ...connection, amqpUrl: connection.amqpUrl!, logLevel };
}

/** The workdir: --workdir, else $WORKDIR, else the current directory (every command reads it so). */
export function workdirFrom(flag: string | undefined, env: Record<string, string | undefined>, cwd: string): string {
  return flag ?? env['WORKDIR'] ?? cwd;
}

/** What `tasker runs` and the broker-less `tasker status` read: a workdir's files. */
export interface WorkdirOpsConfig {
  /** Absolute. */
  workdir: string;
  /** `tasker status` reads the workdir when it is given one, or when there is no broker to ask. */
  fromFiles: boolean;
}

export function loadWorkdirOpsConfig(flags: { workdir?: string; amqpUrl?: string }, env: Record<string, string | undefined>, cwd: string): WorkdirOpsConfig {
  const brokerless = flags.amqpUrl === undefined && envValue(env, 'AMQP_URL') === undefined;
  return { workdir: resolve(cwd, workdirFrom(flags.workdir, env, cwd)), fromFiles: flags.workdir !== undefined || brokerless };
}

/** --bundle-size / TASKER_BUNDLE_SIZE: `auto` (undefined) or 1 to maxBundleSize commands per message. */
function readBundleSize(flags: RunFlags, env: Record<string, string | undefined>, problems: ConfigProblems): number | undefined {
  const [name, text] = flagOrEnv('--bundle-size', flags.bundleSize, 'TASKER_BUNDLE_SIZE', env);
  if (text === undefined || text.trim().toLowerCase() === 'auto') return undefined;
  const size = problems.count(name, text, 1);
  if (size !== undefined && size > maxBundleSize) problems.add(`${name} must be auto or a number from 1 to ${maxBundleSize}, got ${text}`);
  return size;
}
