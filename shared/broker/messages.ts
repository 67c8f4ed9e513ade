import { isValidRunId } from '../state/run-layout.js';
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
  /** Queue the worker sends the result to. */
  replyTo: string;
  /** Outputs to upload after the command succeeded; absent when the run uploads nothing per command. */
  upload?: OutputSpec;
}

/** The result of one attempt, sent by the worker to the run's own queue. */
export interface ResultMessage {
  v: 1;
  kind: 'result';
  runId: string;
  record: ResultRecord;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problem: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decode(content: Buffer): ParseResult<Record<string, unknown>> {
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

export function encodeMessage(message: CommandMessage | ResultMessage): Buffer {
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

export function parseCommandMessage(content: Buffer): ParseResult<CommandMessage> {
  const decoded = decode(content);
  if (!decoded.ok) return decoded;
  const m = decoded.value;
  const problems: string[] = [];
  if (m['kind'] !== 'command') problems.push(`kind is ${JSON.stringify(m['kind'])}, not "command"`);
  if (typeof m['runId'] !== 'string' || !isValidRunId(m['runId'])) problems.push('runId missing or invalid');
  for (const key of ['phase', 'id', 'command', 'file', 'replyTo'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') problems.push(`${key} missing`);
  }
  if (typeof m['id'] === 'string' && !/^[A-Za-z0-9._-]{1,64}$/.test(m['id'])) problems.push('id has characters not allowed in a command id');
  for (const key of ['phaseIndex', 'attempt', 'line'] as const) {
    if (!Number.isInteger(m[key]) || (m[key] as number) < 1) problems.push(`${key} must be a positive integer`);
  }
  if (m['timeoutMs'] !== null && (!Number.isInteger(m['timeoutMs']) || (m['timeoutMs'] as number) <= 0)) problems.push('timeoutMs must be null or a positive integer');
  if (!Number.isInteger(m['killGraceMs']) || (m['killGraceMs'] as number) < 0) problems.push('killGraceMs must be a non-negative integer');
  if (m['upload'] !== undefined) problems.push(...checkUploadSpec(m['upload']));
  if (problems.length > 0) return { ok: false, problem: problems.join('; ') };
  return { ok: true, value: m as unknown as CommandMessage };
}

export function parseResultMessage(content: Buffer): ParseResult<ResultMessage> {
  const decoded = decode(content);
  if (!decoded.ok) return decoded;
  const m = decoded.value;
  if (m['kind'] !== 'result') return { ok: false, problem: `kind is ${JSON.stringify(m['kind'])}, not "result"` };
  const record = m['record'];
  if (!isObject(record) || typeof record['id'] !== 'string' || !Number.isInteger(record['attempt']) || typeof record['outcome'] !== 'string') {
    return { ok: false, problem: 'record missing or incomplete' };
  }
  if (typeof m['runId'] !== 'string') return { ok: false, problem: 'runId missing' };
  return { ok: true, value: m as unknown as ResultMessage };
}

/** Whether a queue message is a command or a result, without validating it fully. */
export function messageKind(content: Buffer): string | undefined {
  const decoded = decode(content);
  return decoded.ok && typeof decoded.value['kind'] === 'string' ? decoded.value['kind'] : undefined;
}
