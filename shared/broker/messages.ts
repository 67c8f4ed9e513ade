import { maxTimerMs } from '../config/duration.js';
import { isValidRunId } from '../run-dir/run-layout.js';
import { checkUploadPatterns, type OutputSpec } from '../storage/outputs.js';
import type { ResultRecord } from '../state/results.js';

/**
 * Messages between tasker and workers. Pure: encode and parse, with validation, so that a
 * malformed message is recognised (and dead-lettered) instead of crashing a worker.
 */

export const messageVersion = 1;

/** One attempt of one command, published by the tasker to the work queue. */
export interface CommandMessage {
  v: 1;
  kind: 'command';
  runId: string;
  phase: string;
  phaseIndex: number;
  id: string;
  attempt: number;
  command: string;
  file: string;
  line: number;
  /** null: no limit. */
  timeoutMs: number | null;
  killGraceMs: number;
  /** The run's result queue, as the tasker names it: informational only; a worker derives the queue from the run id and never reads this (a forged message cannot redirect results). */
  replyTo: string;
  /** Outputs to upload after the command succeeded; absent when the run uploads nothing per command. */
  upload?: OutputSpec;
  /**
   * Where the run's directory is: a worker runs the command only when it finds the same token in
   * the run's directory under its own workdir (worker/message/run-directory-check.ts). Absent from messages of a
   * tasker older than this check: the worker then only checks the run's directory exists.
   */
  origin?: RunOrigin;
}

/** The run's directory as the tasker made it: its workdir (for messages) and the token it wrote there. */
export interface RunOrigin {
  /** The tasker's workdir, absolute, as the tasker sees it (a worker may mount it elsewhere). */
  workdir: string;
  /** Random, written in WORKDIR/.tasker/runs/RUN_ID/token (run-layout.ts) before the first command is published. */
  token: string;
}

/** What a run token looks like (run-token.ts makes them); anything else is refused. */
export const runTokenPattern = /^[A-Za-z0-9-]{16,64}$/;

/** What differs between the attempts of one bundle. */
export type BundledCommand = Pick<CommandMessage, 'id' | 'attempt' | 'command' | 'file' | 'line'>;

/**
 * Several attempts of one phase in one message (bundled dispatch of short commands). A worker
 * runs, records and answers each as if it had come alone; the message is acked once every one
 * of them has its result recorded.
 */
export interface BundleMessage extends Omit<CommandMessage, 'kind' | keyof BundledCommand> {
  kind: 'bundle';
  commands: BundledCommand[];
}

/** Commands in one bundle, at most. */
export const maxBundleSize = 1000;

/**
 * The largest work-queue message the tasker publishes: 4 MiB, well below what RabbitMQ accepts
 * (`max_message_size`: 128 MiB by default on 3.x, 16 MiB from 4.0). Bundles are cut by bytes as
 * well as by count (tasker/distributed/phase-dispatch.ts), and the tasker refuses to publish a larger message
 * (command-publisher.ts), so nothing the broker would refuse is ever sent.
 */
export const maxMessageBytes = 4 * 1024 * 1024;

/**
 * The most one command may take in its message, as JSON text (its UTF-8 bytes; quotes,
 * backslashes and control characters escaped): 1 MiB. A jobs-file command over it is an input
 * error naming its line (tasker/jobs/jobs-file.ts), so a single command always fits in a message
 * with room for the rest (run, phase, origin, upload patterns).
 */
export const maxCommandBytes = 1024 * 1024;

/** A command's size in its message (its JSON string, quotes included) when over maxCommandBytes; undefined when it fits. */
export function oversizedCommandBytes(command: string): number | undefined {
  // Each UTF-16 unit is at most 6 bytes of JSON (\u001f): most commands fit without being encoded.
  if (6 * command.length + 2 <= maxCommandBytes) return undefined;
  const bytes = Buffer.byteLength(JSON.stringify(command));
  return bytes > maxCommandBytes ? bytes : undefined;
}

/** What one attempt adds to a bundle's message, in bytes (its JSON object and a comma). */
export function bundledCommandBytes(command: BundledCommand): number {
  return Buffer.byteLength(JSON.stringify(command)) + 1;
}

/** The results of one or more attempts, sent by the worker to the run's own queue: `record` for one, `records` for a bundle's. */
export type ResultMessage = { v: 1; kind: 'result'; runId: string } & ({ record: ResultRecord } | { records: ResultRecord[] });

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problem: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A message's JSON, decoded once for both `messageKind` and the parse its kind calls for (a bundle's results are large). */
export type DecodedMessage = ParseResult<Record<string, unknown>>;

export function decodeMessage(content: Buffer): DecodedMessage {
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch (error) {
    return { ok: false, problem: `not JSON: ${(error as Error).message}` };
  }
  if (!isObject(value)) return { ok: false, problem: 'not a JSON object' };
  if (value['v'] !== messageVersion) return { ok: false, problem: `unknown message version ${JSON.stringify(value['v'])}` };
  return { ok: true, value };
}

export function encodeMessage(message: CommandMessage | BundleMessage | ResultMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function checkUploadSpec(value: unknown): string[] {
  if (!isObject(value)) return ['upload must be an object'];
  const problems: string[] = [];
  if (typeof value['bucket'] !== 'string' || value['bucket'] === '') problems.push('upload.bucket missing');
  if (typeof value['prefix'] !== 'string' || value['prefix'].split('/').includes('..')) problems.push('upload.prefix missing or with ".."');
  const patterns = value['patterns'];
  if (!Array.isArray(patterns) || !patterns.every((pattern) => typeof pattern === 'string')) problems.push('upload.patterns must be a list of strings');
  else problems.push(...checkUploadPatterns(patterns as string[]).map((problem) => `upload: ${problem}`));
  return problems;
}

/** Problems with the fields every attempt has, bundled or not. */
function attemptProblems(m: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const key of ['id', 'command', 'file'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') problems.push(`${key} missing`);
  }
  if (typeof m['id'] === 'string' && !/^[A-Za-z0-9._-]{1,64}$/.test(m['id'])) problems.push('id has characters not allowed in a command id');
  for (const key of ['attempt', 'line'] as const) {
    if (!Number.isInteger(m[key]) || (m[key] as number) < 1) problems.push(`${key} must be a positive integer`);
  }
  return problems;
}

/** Problems with the fields shared by the attempts of one message. */
function sharedProblems(m: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (typeof m['runId'] !== 'string' || !isValidRunId(m['runId'])) problems.push('runId missing or invalid');
  for (const key of ['phase', 'replyTo'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') problems.push(`${key} missing`);
  }
  if (!Number.isInteger(m['phaseIndex']) || (m['phaseIndex'] as number) < 1) problems.push('phaseIndex must be a positive integer');
  // Above maxTimerMs a timer fires at once: such a timeout would kill the command as it starts.
  if (m['timeoutMs'] !== null && !isTimerMs(m['timeoutMs'], 1)) problems.push(`timeoutMs must be null or a whole number of ms from 1 to ${maxTimerMs}`);
  if (!isTimerMs(m['killGraceMs'], 0)) problems.push(`killGraceMs must be a whole number of ms from 0 to ${maxTimerMs}`);
  if (m['upload'] !== undefined) problems.push(...checkUploadSpec(m['upload']));
  if (m['origin'] !== undefined) problems.push(...checkOrigin(m['origin']));
  return problems;
}

function isTimerMs(value: unknown, min: number): boolean {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= maxTimerMs;
}

function checkOrigin(value: unknown): string[] {
  if (!isObject(value)) return ['origin must be an object'];
  const problems: string[] = [];
  if (typeof value['workdir'] !== 'string' || value['workdir'] === '' || value['workdir'].length > 4096) problems.push('origin.workdir missing');
  if (typeof value['token'] !== 'string' || !runTokenPattern.test(value['token'])) problems.push('origin.token missing or malformed');
  return problems;
}

export function parseCommandMessage(content: Buffer): ParseResult<CommandMessage> {
  const decoded = decodeMessage(content);
  if (!decoded.ok) return decoded;
  const m = decoded.value;
  const problems: string[] = [];
  if (m['kind'] !== 'command') problems.push(`kind is ${JSON.stringify(m['kind'])}, not "command"`);
  problems.push(...sharedProblems(m), ...attemptProblems(m));
  if (problems.length > 0) return { ok: false, problem: problems.join('; ') };
  return { ok: true, value: m as unknown as CommandMessage };
}

/** A bundle's problems: its shared fields, its list, and each attempt's, named by position. */
function bundleProblems(m: Record<string, unknown>): string[] {
  const problems = sharedProblems(m);
  const commands = m['commands'];
  if (!Array.isArray(commands) || commands.length === 0 || commands.length > maxBundleSize) {
    return [...problems, `commands must be a list of 1 to ${maxBundleSize} attempts`];
  }
  const ids = new Set<string>();
  commands.forEach((command: unknown, index) => {
    if (!isObject(command)) problems.push(`commands[${index}] is not an object`);
    else {
      problems.push(...attemptProblems(command).map((problem) => `commands[${index}]: ${problem}`));
      if (ids.has(String(command['id']))) problems.push(`commands[${index}]: id ${String(command['id'])} appears twice`);
      ids.add(String(command['id']));
    }
  });
  return problems;
}

/**
 * A message of the work queue as the attempts it holds: one for a command, several for a
 * bundle, each as a whole command message. `bundled`: it came as a bundle.
 */
export function parseWorkMessage(content: Buffer): ParseResult<{ attempts: CommandMessage[]; bundled: boolean }> {
  const decoded = decodeMessage(content);
  if (!decoded.ok) return decoded;
  if (decoded.value['kind'] !== 'bundle') {
    const single = parseCommandMessage(content);
    return single.ok ? { ok: true, value: { attempts: [single.value], bundled: false } } : single;
  }
  const problems = bundleProblems(decoded.value);
  if (problems.length > 0) return { ok: false, problem: problems.join('; ') };
  const { commands, ...shared } = decoded.value as unknown as BundleMessage;
  return { ok: true, value: { attempts: commands.map((command) => ({ ...shared, ...command, kind: 'command' })), bundled: true } };
}

function isRecord(record: unknown): record is ResultRecord {
  return isObject(record) && typeof record['id'] === 'string' && Number.isInteger(record['attempt']) && typeof record['outcome'] === 'string';
}

/** A result message as the records it carries (one, or a bundle's). */
export function parseResultMessage(content: Buffer, decoded: DecodedMessage = decodeMessage(content)): ParseResult<{ runId: string; records: ResultRecord[] }> {
  if (!decoded.ok) return decoded;
  const m = decoded.value;
  if (m['kind'] !== 'result') return { ok: false, problem: `kind is ${JSON.stringify(m['kind'])}, not "result"` };
  const records = Array.isArray(m['records']) ? (m['records'] as unknown[]) : [m['record']];
  if (records.length === 0 || !records.every(isRecord)) return { ok: false, problem: 'record missing or incomplete' };
  if (typeof m['runId'] !== 'string') return { ok: false, problem: 'runId missing' };
  return { ok: true, value: { runId: m['runId'], records } };
}

/** The result message for one record, or for several (a bundle's). */
export function resultMessage(runId: string, records: readonly ResultRecord[]): ResultMessage {
  return records.length === 1 ? { v: 1, kind: 'result', runId, record: records[0]! } : { v: 1, kind: 'result', runId, records: [...records] };
}

/** Whether a queue message is a command or a result, without validating it fully. */
export function messageKind(content: Buffer, decoded: DecodedMessage = decodeMessage(content)): string | undefined {
  return decoded.ok && typeof decoded.value['kind'] === 'string' ? decoded.value['kind'] : undefined;
}
