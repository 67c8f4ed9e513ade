import { backoffMs } from '../../shared/config/backoff.js';
import { cancelledRunKill, toResultRecord, type CommandRef, type ResultRecord } from '../../shared/state/results.js';
import type { FailedCommand, PhaseSummary, RanAgain, Retried } from '../report/summary.js';
import type { AttemptOutcome, Halt, PhaseDispatch, Progress, RunPhasesOptions, RunPorts } from './phase-ports.js';

/** One command of a phase: its attempts, each recorded, retried with backoff, and counted when it ends. */

export interface AttemptsContext {
  dispatch: PhaseDispatch;
  ports: Pick<RunPorts, 'record' | 'sleep' | 'logger'>;
  options: Pick<RunPhasesOptions, 'retries' | 'retryDelayMs' | 'maxRetryDelayMs'>;
  signal: AbortSignal;
  tally: PhaseTally;
}

/** Where a command's end is counted: its phase's summary, the live counters and the run's failures. */
export interface PhaseTally {
  stats: PhaseSummary;
  progress: Progress;
  /** Failures of the whole run so far. */
  failed: FailedCommand[];
  /** Commands of the whole run so far that started more than once. */
  ranAgain: RanAgain;
  /** Commands of the whole run so far that succeeded on a retry. */
  retried: Retried;
  maxTailsKept: number;
  halt: Halt;
}

/**
 * Runs `command` from attempt number `firstAttempt` until it succeeds, runs out of retries, or
 * the run is interrupted. Throws only the tasker's own errors (recording, settling).
 */
export async function runCommandAttempts(command: CommandRef, firstAttempt: number, context: AttemptsContext): Promise<void> {
  const { dispatch, ports, options, signal, tally } = context;
  let attempt = firstAttempt;
  for (let tries = 1; ; tries++) {
    let started = false;
    const outcome = await dispatch.runAttempt(command, attempt, () => {
      started = true;
      tally.progress.running++;
    });
    if (started) tally.progress.running--;
    if (outcome === undefined) return;
    if (outcome.attempt !== undefined) attempt = outcome.attempt;
    const record = toResultRecord(command, attempt, outcome.result, outcome.worker, outcome.log, outcome.placement);
    // Stopped by the interrupt (or --halt now) while it ran, a command did not fail on its own: it
    // runs again on resume. One that ended by itself meanwhile is recorded as what it did.
    const stopped = signal.aborted || (tally.halt.mode === 'now' && tally.halt.controller.signal.aborted) || killedByCancel(outcome.result);
    const interrupted = stopped && stoppedByUs(outcome.result.outcome);
    if (interrupted) record.outcome = 'interrupted';
    else if (outcome.deadLettered === true) record.outcome = 'dead-lettered';
    if (outcome.starts !== undefined) noteRanAgain(record, outcome.starts, tally.ranAgain);
    const written = ports.record(record);
    const retry = tries <= options.retries && !tally.halt.controller.signal.aborted && !signal.aborted;
    // Halted as soon as the failure is on record, before anything else can start.
    if (record.outcome !== 'succeeded' && !interrupted && !retry && !signal.aborted) haltOnFailure(command, tally.halt, ports.logger);
    // In results.jsonl before its message may go (settle acks it).
    await written;
    await outcome.settle?.();
    tally.progress.finishedThisSession++;
    if (record.outcome === 'succeeded') {
      tally.stats.succeeded++;
      tally.progress.done++;
      if (tries > 1) noteRetried(command, tries, tally.retried);
      return;
    }
    if (interrupted) {
      tally.stats.interrupted++;
      return;
    }
    if (retry) {
      const delay = backoffMs(tries, options.retryDelayMs, options.maxRetryDelayMs);
      ports.logger.warn(
        { phase: command.phase, commandId: command.id, attempt, exitCode: record.exitCode, reason: record.reason, retryInMs: delay },
        'command failed, will retry',
      );
      await ports.sleep(delay, signal);
      if (signal.aborted) {
        // It ran and failed, and the interrupt took its next attempt: stopped, not skipped.
        tally.stats.interrupted++;
        return;
      }
      attempt++;
      continue;
    }
    countFailure(command, record, attempt, context);
    return;
  }
}

/** Killed on purpose (interrupt, halt, cancel) is the only ending the stop caused; any other is the command's own. */
function stoppedByUs(outcome: AttemptOutcome['result']['outcome']): boolean {
  return outcome === 'killed';
}

/** Killed by its worker because the run was cancelled: stopped, as by an interrupt, even before this tasker saw the cancel. */
function killedByCancel(result: AttemptOutcome['result']): boolean {
  return result.outcome === 'killed' && result.reason?.startsWith(cancelledRunKill) === true;
}

/** A command out of attempts: counted, logged, and listed for the summary. */
function countFailure(command: CommandRef, record: ResultRecord, attempt: number, context: AttemptsContext): void {
  const { tally } = context;
  tally.stats.failed++;
  tally.progress.failed++;
  context.ports.logger.warn(
    { phase: command.phase, commandId: command.id, attempt, exitCode: record.exitCode, signal: record.signal, reason: record.reason, log: record.log },
    'command failed',
  );
  const failure: FailedCommand = {
    id: command.id,
    phase: command.phase,
    command: command.command,
    file: command.file,
    line: command.line,
    outcome: record.outcome,
    exitCode: record.exitCode,
    signal: record.signal,
    attempts: attempt,
    log: record.log,
  };
  if (record.reason !== undefined) failure.reason = record.reason;
  if (record.tail !== undefined && tally.failed.length < tally.maxTailsKept) failure.tail = record.tail;
  tally.failed.push(failure);
}

function noteRanAgain(record: ResultRecord, starts: number, ranAgain: RanAgain): void {
  record.starts = starts;
  if (starts < 2) return;
  ranAgain.count++;
  if (ranAgain.commands.length < 100) ranAgain.commands.push({ id: record.id, phase: record.phase, starts });
}

/** `tries`: attempts of this session, the last one the success. */
function noteRetried(command: CommandRef, tries: number, retried: Retried): void {
  retried.count++;
  if (retried.commands.length < 100) retried.commands.push({ id: command.id, phase: command.phase, attempts: tries });
}

/** --halt: the first command that failed for good stops the run (see RunPhasesOptions.halt). */
function haltOnFailure(command: CommandRef, halt: Halt, logger: RunPorts['logger']): void {
  if (halt.mode === 'never' || halt.controller.signal.aborted) return;
  const what = halt.mode === 'now' ? 'stopping the running commands, starting no more (--halt now)' : 'starting no more commands, letting the running ones finish (--halt soon)';
  logger.warn({ phase: command.phase, commandId: command.id, halt: halt.mode }, `halting: ${what}`);
  halt.controller.abort();
}
