import type { ExecutionResult, Outcome } from '../exec/executor-contract.js';

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
}


export function toResultRecord(
  command: CommandRef,
  attempt: number,
  result: ExecutionResult,
  worker: string,
  log: string,
): ResultRecord {
  const record: ResultRecord = {
    ...commandFields(command),
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
  return record;
}

/** Why a command was dead-lettered as poison: how often it started without a result, and where. */
export function poisonReason(starts: { n: number; workers: readonly string[] }): string {
  const where = [...new Set(starts.workers)];
  const on = where.length === 0 ? '' : ` on worker${where.length === 1 ? '' : 's'} ${where.join(', ')}`;
  return `started ${starts.n} time(s) without a result${on}; the command may be killing its worker (out of memory?): dead-lettered, not run again`;
}

/** The record of an attempt dead-lettered without a result of its own (poison, invalid, RabbitMQ's limit). */
export function deadLetteredRecord(command: CommandRef, attempt: number, worker: string, log: string, reason: string, now: Date): ResultRecord {
  const at = now.toISOString();
  return { ...commandFields(command), attempt, outcome: 'dead-lettered', exitCode: null, signal: null, startedAt: at, finishedAt: at, durationMs: 0, worker, log, reason };
}

/** The record of an attempt dead-lettered as poison. */
export function poisonRecord(command: CommandRef, attempt: number, starts: { n: number; workers: readonly string[] }, worker: string, log: string, now: Date): ResultRecord {
  return deadLetteredRecord(command, attempt, worker, log, poisonReason(starts), now);
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
