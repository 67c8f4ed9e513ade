import type { ExecutionResult, Outcome, ResourceUsage } from '../exec/executor-contract.js';
import type { Placement } from './placement.js';
import { memorySeen, type UsageSample } from './usage.js';

/** How the kill reason of a command a worker stopped because its run was cancelled begins (worker/service/run-cancels.ts). */
export const cancelledRunKill = 'run cancelled';

export interface CommandRef {
  id: string;
  phase: string;
  phaseIndex: number;
  command: string;
  file: string;
  line: number;
}

/**
 * One finished attempt, as a line of results.jsonl. Field names are part of the user-facing
 * format (README): add fields, never rename them.
 */
export interface ResultRecord extends CommandRef {
  attempt: number;
  /**
   * `dead-lettered`: not run again: it started TASKER_DELIVERY_LIMIT times without a result (its
   * workers kept dying while running it), or RabbitMQ's own delivery limit gave up on it.
   */
  outcome: Outcome | 'interrupted' | 'dead-lettered';
  /** null when the command was killed or never started. */
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Who ran it: `tasker@HOST` or the worker's name. */
  worker: string;
  /** Log of this attempt, relative to the workdir. */
  log: string;
  reason?: string;
  /** Last lines of output, kept for attempts that did not succeed. */
  tail?: string;
  /** S3 keys of the files this attempt produced and uploaded (when S3_UPLOAD is set). */
  uploaded?: string[];
  /**
   * Distributed runs: how often this attempt started, when more than once (a worker was lost or
   * frozen while running it, and it ran again elsewhere).
   */
  starts?: number;
  /** CPU time (user + system) of the command and its descendants, in ms; null: not measured. */
  cpuMs?: number | null;
  /** Peak resident memory of its process group, sampled once a second; null: it ended before the first sample. */
  peakRssBytes?: number | null;
  /** The kernel's OOM killer ended it. */
  oomKilled?: boolean;
  /** The memory limit of the container or cgroup it ran in, when one is set. */
  memoryLimitBytes?: number;
  // Where it ran (shared/state/placement.ts): absent from records older than these fields.
  host?: string;
  pod?: string;
  node?: string;
  image?: string;
  workerVersion?: string;
  pool?: string;
  slots?: number;
}


export function toResultRecord(
  command: CommandRef,
  attempt: number,
  result: ExecutionResult,
  worker: string,
  log: string,
  placement?: Placement,
): ResultRecord {
  // One literal with every field it always has, no spread: V8 builds it as a plain fast object
  // (spreads made this the costliest step of recording a result), and the fields below stay few
  // enough for it to remain one, which JSON.stringify writes fastest.
  const record: ResultRecord = {
    id: command.id,
    phase: command.phase,
    phaseIndex: command.phaseIndex,
    command: command.command,
    file: command.file,
    line: command.line,
    attempt,
    outcome: result.outcome,
    exitCode: result.exitCode,
    signal: result.signal,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.durationMs,
    worker,
    log,
  };
  if (result.reason !== undefined) record.reason = result.reason;
  if (result.outcome !== 'succeeded' && result.tail !== '') record.tail = result.tail;
  if (result.uploaded !== undefined) record.uploaded = result.uploaded;
  record.cpuMs = result.usage?.cpuMs ?? null;
  record.peakRssBytes = result.usage?.peakRssBytes ?? null;
  if (result.usage?.oomKilled === true) record.oomKilled = true;
  if (result.usage?.memoryLimitBytes !== undefined) record.memoryLimitBytes = result.usage.memoryLimitBytes;
  // Placement's fields last, in its own order (as a spread put them).
  if (placement !== undefined) for (const key of Object.keys(placement) as (keyof Placement)[]) (record as unknown as Record<string, unknown>)[key] = placement[key];
  return record;
}

/** What a record says the attempt used, as an executor reports it (a worker's record, read back by the tasker). */
export function usageOfRecord(record: ResultRecord): ResourceUsage | undefined {
  if (record.cpuMs === undefined && record.peakRssBytes === undefined) return undefined;
  const usage: ResourceUsage = { cpuMs: record.cpuMs ?? null, peakRssBytes: record.peakRssBytes ?? null };
  if (record.oomKilled === true) usage.oomKilled = true;
  if (record.memoryLimitBytes !== undefined) usage.memoryLimitBytes = record.memoryLimitBytes;
  return usage;
}

/** Where a record says the attempt ran; undefined for a record without it. */
export function placementOfRecord(record: ResultRecord): Placement | undefined {
  if (record.host === undefined || record.workerVersion === undefined || record.slots === undefined) return undefined;
  const placement: Placement = { host: record.host, workerVersion: record.workerVersion, slots: record.slots };
  for (const key of ['pod', 'node', 'image', 'pool'] as const) if (record[key] !== undefined) placement[key] = record[key];
  return placement;
}

/** A command whose last sample was this close to its worker's limit is said to have run out of memory. */
const nearLimit = 0.8;

/**
 * Why a command was dead-lettered as poison: how often it started without a result, and where; with
 * the last memory sample its worker wrote (`usage`), how much it was last seen using against the limit.
 */
export function poisonReason(starts: { n: number; workers: readonly string[] }, usage?: UsageSample): string {
  const where = [...new Set(starts.workers)];
  const on = where.length === 0 ? '' : ` on worker${where.length === 1 ? '' : 's'} ${where.join(', ')}`;
  const seen = usage === undefined ? '' : memorySeen(usage.rssBytes, usage.limitBytes, usage.pod === true ? "the pod's" : "the worker's");
  const outOfMemory = usage?.limitBytes !== undefined && usage.rssBytes >= nearLimit * usage.limitBytes;
  const why = seen === '' ? '(out of memory?)' : outOfMemory ? `(out of memory: ${seen})` : `(${seen})`;
  return `started ${starts.n} time(s) without a result${on}; the command may be killing its worker ${why}: dead-lettered, not run again`;
}

/** The record of an attempt dead-lettered without a result of its own (poison, invalid, RabbitMQ's limit). */
export function deadLetteredRecord(command: CommandRef, attempt: number, worker: string, log: string, reason: string, now: Date): ResultRecord {
  const at = now.toISOString();
  return { ...commandFields(command), attempt, outcome: 'dead-lettered', exitCode: null, signal: null, startedAt: at, finishedAt: at, durationMs: 0, worker, log, reason };
}

/** The record of an attempt dead-lettered as poison. */
export function poisonRecord(command: CommandRef, attempt: number, starts: { n: number; workers: readonly string[] }, worker: string, log: string, now: Date, usage?: UsageSample): ResultRecord {
  const record = deadLetteredRecord(command, attempt, worker, log, poisonReason(starts, usage), now);
  if (usage !== undefined) {
    record.peakRssBytes = usage.rssBytes; // the last sample: a lower bound of its peak
    if (usage.limitBytes !== undefined) record.memoryLimitBytes = usage.limitBytes;
  }
  return record;
}

function commandFields(command: CommandRef): CommandRef {
  return { id: command.id, phase: command.phase, phaseIndex: command.phaseIndex, command: command.command, file: command.file, line: command.line };
}

/** Parses one results.jsonl line; undefined for a torn or foreign line (a crash mid-write). */
export function parseResultLine(line: string): ResultRecord | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line) as Partial<ResultRecord>;
    if (typeof value.id !== 'string' || typeof value.attempt !== 'number' || typeof value.outcome !== 'string') return undefined;
    return value as ResultRecord;
  } catch {
    return undefined; // a line cut short by a crash: that attempt has no result and runs again
  }
}
