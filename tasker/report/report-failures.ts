import type { ResultRecord } from '../../shared/state/results.js';

/**
 * The failures section of the HTML report: commands whose latest attempt did not succeed, from
 * results.jsonl as it streams by. Pure.
 */

export interface FailureRow {
  id: string;
  phase: string;
  file: string;
  line: number;
  command: string;
  outcome: string;
  exitCode: number | null;
  signal: string | null;
  reason: string | undefined;
  attempts: number;
  log: string;
  tail: string | undefined;
  worker: string;
  finishedAt: string;
}

export interface FailureReport {
  /** Commands whose latest attempt failed (timed out, was killed, ...), dead-lettered ones included. */
  failed: number;
  deadLettered: number;
  /** Commands whose latest attempt was stopped by an interrupt (a resumed run runs them again). */
  interrupted: number;
  /** Commands that failed at first and succeeded on a later attempt. */
  succeededAfterRetry: number;
  /** The first `maxRows` of them, in the order they succeeded: id, phase, the attempt that succeeded. */
  retried: { id: string; phase: string; attempt: number }[];
  /** Attempts that did not succeed, interrupts aside. */
  failedAttempts: number;
  /** The first failing commands in the order they first failed, at most `maxRows`. */
  rows: FailureRow[];
}

export interface FailureTracker {
  add(record: ResultRecord): void;
  report(): FailureReport;
}

/** Keep at most this much of an attempt's output tail per row (the last characters). */
const maxTailChars = 2000;
const maxCommandChars = 1000;

interface Failing {
  attempt: number;
  outcome: string;
  /** Set for the first `maxRows` failing commands. */
  row: FailureRow | undefined;
  retried: boolean;
}

function toRow(record: ResultRecord): FailureRow {
  return {
    id: record.id,
    phase: record.phase,
    file: record.file,
    line: record.line,
    command: record.command.length > maxCommandChars ? `${record.command.slice(0, maxCommandChars)}…` : record.command,
    outcome: record.outcome,
    exitCode: record.exitCode ?? null,
    signal: record.signal ?? null,
    reason: record.reason,
    attempts: record.attempt,
    log: record.log,
    tail: record.tail === undefined ? undefined : record.tail.slice(-maxTailChars),
    worker: record.worker,
    finishedAt: record.finishedAt,
  };
}

/**
 * Memory grows with the commands that are failing, never with those that succeed: a command
 * leaves the map when a later attempt succeeds (it is then counted as "succeeded after a retry").
 * Full rows (command, tail...) are kept for the first `maxRows` failing commands only; the rest are
 * counted, so the table says "N of TOTAL".
 */
export function createFailureTracker(maxRows: number): FailureTracker {
  const failing = new Map<string, Failing>();
  let withRows = 0;
  let succeededAfterRetry = 0;
  const retried: FailureReport['retried'] = [];
  let failedAttempts = 0;
  return {
    add(record) {
      const before = failing.get(record.id);
      if (record.outcome === 'succeeded') {
        if (before !== undefined && before.attempt < record.attempt) {
          if (before.row !== undefined) withRows--;
          failing.delete(record.id);
          if (before.outcome !== 'interrupted' || before.retried) {
            succeededAfterRetry++;
            if (retried.length < maxRows) retried.push({ id: record.id, phase: record.phase, attempt: record.attempt });
          }
        }
        return;
      }
      if (record.outcome !== 'interrupted') failedAttempts++;
      if (before !== undefined && before.attempt > record.attempt) return; // an older attempt, late
      // Interrupted commands are not failures (a resumed run runs them again): they take no row.
      const keepRow = before?.row !== undefined || (withRows < maxRows && record.outcome !== 'interrupted');
      if (keepRow && before?.row === undefined) withRows++;
      failing.set(record.id, {
        attempt: record.attempt,
        outcome: record.outcome,
        row: keepRow ? toRow(record) : undefined,
        retried: before !== undefined && (before.retried || before.outcome !== 'interrupted'),
      });
    },
    report() {
      const out: FailureReport = { failed: 0, deadLettered: 0, interrupted: 0, succeededAfterRetry, retried: [...retried], failedAttempts, rows: [] };
      for (const entry of failing.values()) {
        if (entry.outcome === 'interrupted') out.interrupted++;
        else out.failed++;
        if (entry.outcome === 'dead-lettered') out.deadLettered++;
        if (entry.row !== undefined && entry.outcome !== 'interrupted') out.rows.push(entry.row);
      }
      return out;
    },
  };
}
