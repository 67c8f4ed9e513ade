import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { collectProblems, envValue, flagOrEnv, readCommandUser, readConnection, readSigning, type CommandUserSpec, type ConfigProblems, type ConfigWarning, type Connection, type ConnectionFlags, type ReadFile } from '../shared/config/config-values.js';
import { checkUploadPatterns, normalizePrefix, parseUploadPatterns } from '../shared/storage/outputs.js';
import { readMetricsHost, readMetricsPort } from '../shared/observe/metrics-config.js';
import { splitPresets, type SplitPreset } from './jobs/plan.js';
import { parsePoolAssignments, type PoolAssignment } from './jobs/phase-pools.js';
import { haltModes, type HaltMode } from './dispatch/phase-ports.js';
import { parsePriority, priorities, type Priority } from '../shared/state/fair-share.js';
import { maxBundleSize } from '../shared/broker/messages.js';
import { isValidRunId } from '../shared/run-dir/run-layout.js';
import { readS3Connection, type S3Connection } from '../shared/storage/s3-config.js';

/**
 * Configuration of the tasker's subcommands: flags first, then environment variables, then
 * defaults. Pure: the environment is an argument, and so is how to read the files it names (TLS
 * certificates, read once here). Every problem is reported at once.
 */

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
  priority?: string;
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
  /** Default 10000. */
  maxInFlight: number;
  /** Commands per work-queue message; undefined (default, `auto`): adaptive. */
  bundleSize: number | undefined;
  /** Among the runs of a pool: higher first, equal ones share its slots. Default normal. */
  priority: Priority;
  /** Default 60 s. */
  stallWarningMs: number;
  /** /healthz, /livez and /metrics on this port while the run lasts. Default: no server. */
  metricsPort: number | undefined;
  /** The address that server binds to. Default: every interface. */
  metricsHost: string | undefined;
  /** Set when S3_BUCKET is: what to upload and how to reach S3. */
  s3: RunS3Config | undefined;
  /** TASKER_SIGNING_KEY; required with AMQP_URL unless `signingOff`. Undefined: messages are not signed. */
  signingKey: string | undefined;
  /** AMQP_TLS_* and REDIS_TLS_* files, read. Default: none. */
  amqpTls: Connection['amqpTls'];
  redisTls: Connection['redisTls'];
  /** To log once the logger exists (plain-text connections to other hosts). */
  warnings: ConfigWarning[];
  /** TASKER_SIGNING=off: unsigned by choice. Default false. */
  signingOff: boolean;
  /** TASKER_COMMAND_USER: who local and tasker-phase commands run as. Default: unset, this process's user. */
  commandUser: CommandUserSpec | undefined;
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

export function loadRunConfig(files: readonly string[], flags: RunFlags, env: Record<string, string | undefined>, cwd: string, readFile: ReadFile = readFileSync): RunConfig {
  const problems = collectProblems(readFile);
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

  checkRunIds(flags, problems);
  const mustExist = flags.resume !== undefined;
  if (files.length === 0 && !mustExist) problems.add('no jobs file given: tasker run [options] FILE... (or --resume RUN_ID)');
  const halt = readHalt(flags, env, problems);
  if (flags.forceClean === true && flags.clean !== true) problems.add('--force-clean only makes sense with --clean');

  // TASKER_DELIVERY_LIMIT is checked here too, but only workers count starts against it.
  const { amqpUrl, redisUrl, namespace, amqpTls, redisTls } = readConnection(flags, env, problems);
  const maxInFlight = problems.count(...flagOrEnv('--max-in-flight', flags.maxInFlight, 'TASKER_MAX_IN_FLIGHT', env), 1);
  const bundleSize = readBundleSize(flags, env, problems);
  const priority = readPriority(flags, env, problems);
  const stallWarningMs = problems.duration(...flagOrEnv('--stall-warning', flags.stallWarning, 'TASKER_STALL_WARNING', env));
  const metricsPort = readMetricsPort(flags.metricsPort, env, problems);
  const metricsHost = readMetricsHost(flags.metricsHost, env, problems);
  const s3 = readRunS3(env, problems);
  const signing = readSigning(env, problems, amqpUrl !== undefined);
  const commandUser = readCommandUser('TASKER_COMMAND_USER', env, problems);
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
    reportIntervalMs: reportIntervalMs ?? 2000,
    directExec: flags.directExec ?? true,
    logLevel,
    amqpUrl,
    redisUrl,
    namespace,
    amqpTls,
    redisTls,
    maxInFlight: maxInFlight ?? 10_000,
    bundleSize,
    priority,
    stallWarningMs: stallWarningMs ?? 60_000,
    metricsPort,
    metricsHost,
    s3,
    signingKey: signing.key,
    signingOff: signing.off,
    warnings: problems.warnings(),
    commandUser,
  };
}

/** --run-id and --resume: valid ids, and the same run when both are given. */
function checkRunIds(flags: RunFlags, problems: ConfigProblems): void {
  for (const [flag, value] of [['--run-id', flags.runId], ['--resume', flags.resume]] as const) {
    if (value !== undefined && !isValidRunId(value)) {
      problems.add(`${flag} "${value}" is not a valid run id: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    }
  }
  if (flags.runId !== undefined && flags.resume !== undefined && flags.runId !== flags.resume) {
    problems.add('--run-id and --resume name different runs; give one of them');
  }
}

export type OpsFlags = ConnectionFlags;
export type OpsConfig = Pick<Connection, 'redisUrl' | 'namespace' | 'amqpTls' | 'redisTls'> & { amqpUrl: string; logLevel: string; warnings: ConfigWarning[] };

/** For `tasker purge`, and `tasker status` when it asks RabbitMQ and Redis (loadWorkdirOpsConfig says when). */
export function loadOpsConfig(flags: OpsFlags, env: Record<string, string | undefined>, readFile: ReadFile = readFileSync): OpsConfig {
  const problems = collectProblems(readFile);
  const connection = readConnection(flags, env, problems, 'needs AMQP_URL (or --amqp-url): status, cancel and purge look at RabbitMQ and Redis');
  // Quiet by default: these commands print their answer; logs are for trouble.
  const logLevel = envValue(env, 'LOG_LEVEL') ?? 'warn';
  problems.logLevel(logLevel);
  problems.done();
  return { amqpUrl: connection.amqpUrl!, redisUrl: connection.redisUrl, namespace: connection.namespace, amqpTls: connection.amqpTls, redisTls: connection.redisTls, logLevel, warnings: problems.warnings() };
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

/** --priority / TASKER_PRIORITY: high, normal (default) or low. */
function readPriority(flags: RunFlags, env: Record<string, string | undefined>, problems: ConfigProblems): Priority {
  const [name, text = 'normal'] = flagOrEnv('--priority', flags.priority, 'TASKER_PRIORITY', env);
  const priority = parsePriority(text.trim().toLowerCase());
  if (priority === undefined) problems.add(`${name} must be one of: ${priorities.join(', ')}; got "${text}"`);
  return priority ?? 'normal';
}
