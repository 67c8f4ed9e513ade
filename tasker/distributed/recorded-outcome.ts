import type { ExecutionResult } from '../../shared/exec/executor.js';
import type { ResultRecord } from '../../shared/state/results.js';
import type { AttemptOutcome } from '../dispatch/run-phases.js';

/** Turning a result recorded by a worker (or RabbitMQ, or the tasker itself) into what the phase loop counts. */

function toExecution(record: ResultRecord): ExecutionResult {
  const result: ExecutionResult = {
    outcome: record.outcome === 'interrupted' || record.outcome === 'dead-lettered' ? 'failed' : record.outcome,
    exitCode: record.exitCode,
    signal: record.signal,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    durationMs: record.durationMs,
    tail: record.tail ?? '',
  };
  if (record.reason !== undefined) result.reason = record.reason;
  if (record.uploaded !== undefined) result.uploaded = record.uploaded;
  return result;
}

/** The outcome of an attempt from its recorded result; `settle` runs once the tasker recorded it. */
export function outcomeOf(record: ResultRecord, settle: () => Promise<void>): AttemptOutcome {
  const outcome: AttemptOutcome = { result: toExecution(record), worker: record.worker, log: record.log, attempt: record.attempt, settle };
  if (record.outcome === 'dead-lettered') outcome.deadLettered = true;
  if (record.starts !== undefined) outcome.starts = record.starts;
  return outcome;
}

/**
 * Whether a result ends the awaited attempt: the awaited attempt's result; or a success of an earlier
 * attempt, which is how a worker answers a command that already succeeded (e.g. one the previous
 * tasker recorded as interrupted when its pod was stopped, and this one published again): the
 * command is done either way.
 */
export function endsAttempt(awaitedAttempt: number, record: ResultRecord): boolean {
  return awaitedAttempt === record.attempt || record.outcome === 'succeeded';
}

/** The outcome of an attempt the tasker stopped awaiting (interrupt); `now` is an ISO timestamp. */
export function killedOutcome(attempt: number, reason: string, now: string): AttemptOutcome {
  return {
    result: { outcome: 'killed', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `tasker ${reason}; still running on a worker` },
    worker: 'tasker',
    log: '',
    attempt,
  };
}
