import { backoffMs } from '../../shared/config/backoff.js';
import type { ExecutionResult } from '../../shared/exec/executor.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { PhaseSpec, PlannedCommand } from '../jobs/plan.js';
import type { PriorResults } from '../report/results-file.js';
import { toResultRecord, type CommandRef, type ResultRecord } from '../../shared/state/results.js';
import type { FailedCommand, PhaseSummary } from '../report/summary.js';

/**
 * The phase loop: streams each phase's commands, hands them to a dispatch (local slots now,
 * RabbitMQ workers later), retries failures with backoff, and waits for the phase to finish
 * before the next starts. It knows nothing of processes, files or brokers: those are ports.
 */

export interface AttemptOutcome {
  result: ExecutionResult;
  /** Who ran it. */
  worker: string;
  /** Log path relative to the workdir. */
  log: string;
  /** The attempt that actually ran, when the dispatch knows better (a resumed run's in-flight attempt). */
  attempt?: number;
  /** Called once the result is recorded (e.g. acks the result message). */
  settle?: () => Promise<void>;
}

export interface PhaseDispatch {
  /** Resolves when another command may be handed over (bounded in-flight work). */
  waitForRoom(): Promise<void>;
  /**
   * Runs one attempt and resolves with its result; `onStart` fires when it actually starts.
   * Resolves undefined when the run was interrupted before the attempt started: nothing ran, so
   * nothing is recorded (the command runs on resume, as attempt 1 if it never ran before).
   */
  runAttempt(command: CommandRef, attempt: number, onStart: () => void): Promise<AttemptOutcome | undefined>;
  /** Ends every running attempt (interrupt). Their results still arrive, as killed. */
  killAll(reason: string): void;
}

export interface RunPorts {
  phaseCommands(phase: PhaseSpec): AsyncIterable<PlannedCommand>;
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  record(record: ResultRecord): void;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  now(): number;
  logger: Logger;
}

export interface RunPhasesOptions {
  /** Extra attempts after a failure. Default 0. */
  retries: number;
  /** Base of the exponential backoff between attempts. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** Start later phases even after a phase had failures. */
  keepGoing: boolean;
  prior: PriorResults;
  /** Tails kept in memory for the summary; later failures keep theirs in results.jsonl only. */
  maxTailsKept?: number;
}

/** Live counters, read by the progress reporter. */
export interface Progress {
  phase: string;
  phaseIndex: number;
  phaseCount: number;
  total: number;
  done: number;
  failed: number;
  running: number;
  /** Finished in this session (for the rate behind the ETA). */
  finishedThisSession: number;
}

export interface RunPhasesResult {
  phases: PhaseSummary[];
  failed: FailedCommand[];
  interrupted: boolean;
}

function emptySummary(phase: PhaseSpec, alreadyDone: number): PhaseSummary {
  return {
    index: phase.index,
    name: phase.name,
    runsOn: phase.runsOn,
    status: 'not-started',
    total: phase.commandCount,
    succeeded: 0,
    alreadyDone,
    failed: 0,
    skipped: phase.commandCount - alreadyDone,
    durationMs: 0,
  };
}

export async function runPhases(
  phases: readonly PhaseSpec[],
  ports: RunPorts,
  options: RunPhasesOptions,
  progress: Progress,
  signal: AbortSignal,
): Promise<RunPhasesResult> {
  const summaries = phases.map((phase) => emptySummary(phase, options.prior.succeededByPhase.get(phase.index) ?? 0));
  const failed: FailedCommand[] = [];
  const maxTailsKept = options.maxTailsKept ?? 100;
  let stopAfterPhase = false;
  progress.phaseCount = phases.length;
  progress.total = phases.reduce((sum, phase) => sum + phase.commandCount, 0);
  progress.done = summaries.reduce((sum, phase) => sum + phase.alreadyDone, 0);

  for (const [position, phase] of phases.entries()) {
    const stats = summaries[position]!;
    if (signal.aborted) break;
    if (stopAfterPhase) {
      stats.status = 'skipped';
      continue;
    }
    if (stats.alreadyDone === phase.commandCount) {
      stats.status = 'succeeded';
      stats.skipped = 0;
      ports.logger.info({ phase: phase.name, commands: phase.commandCount }, 'phase already done in an earlier session');
      continue;
    }
    progress.phase = phase.name;
    progress.phaseIndex = phase.index;
    const startedAt = ports.now();
    ports.logger.info(
      { phase: phase.name, phaseIndex: phase.index, runsOn: phase.runsOn, commands: phase.commandCount, alreadyDone: stats.alreadyDone },
      'phase started',
    );
    const dispatch = ports.dispatchFor(phase);
    const onAbort = (): void => dispatch.killAll('interrupted');
    signal.addEventListener('abort', onAbort, { once: true });

    const runCommand = async (planned: PlannedCommand): Promise<void> => {
      const command: CommandRef = { ...planned, phase: phase.name, phaseIndex: phase.index };
      let attempt = (options.prior.attempts.get(command.id) ?? 0) + 1;
      for (let tries = 1; ; tries++) {
        let started = false;
        const outcome = await dispatch.runAttempt(command, attempt, () => {
          started = true;
          progress.running++;
        });
        if (started) progress.running--;
        if (outcome === undefined) return;
        if (outcome.attempt !== undefined) attempt = outcome.attempt;
        const record = toResultRecord(command, attempt, outcome.result, outcome.worker, outcome.log);
        const interrupted = signal.aborted && record.outcome !== 'succeeded';
        if (interrupted) record.outcome = 'interrupted';
        ports.record(record);
        await outcome.settle?.();
        progress.finishedThisSession++;
        if (record.outcome === 'succeeded') {
          stats.succeeded++;
          progress.done++;
          return;
        }
        if (interrupted) return;
        if (tries <= options.retries) {
          const delay = backoffMs(tries, options.retryDelayMs, options.maxRetryDelayMs);
          ports.logger.warn(
            { phase: phase.name, commandId: command.id, attempt, exitCode: record.exitCode, reason: record.reason, retryInMs: delay },
            'command failed, will retry',
          );
          await ports.sleep(delay, signal);
          if (signal.aborted) return;
          attempt++;
          continue;
        }
        stats.failed++;
        progress.failed++;
        ports.logger.warn(
          { phase: phase.name, commandId: command.id, attempt, exitCode: record.exitCode, signal: record.signal, reason: record.reason, log: record.log },
          'command failed',
        );
        const failure: FailedCommand = {
          id: command.id,
          phase: phase.name,
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
        if (record.tail !== undefined && failed.length < maxTailsKept) failure.tail = record.tail;
        failed.push(failure);
        return;
      }
    };

    const inFlight = new Set<Promise<void>>();
    // An error here is the tasker's own (results file unwritable, dispatch broken), not a command's.
    let internalError: unknown;
    try {
      for await (const planned of ports.phaseCommands(phase)) {
        if (signal.aborted || internalError !== undefined) break;
        if (options.prior.succeeded.has(planned.id)) continue;
        await dispatch.waitForRoom();
        if (signal.aborted) break;
        const running: Promise<void> = runCommand(planned).then(
          () => {
            inFlight.delete(running);
          },
          (error: unknown) => {
            inFlight.delete(running);
            if (internalError === undefined) {
              internalError = error;
              dispatch.killAll('tasker error');
            }
          },
        );
        inFlight.add(running);
      }
    } finally {
      // Whatever stopped the loop (interrupt, unreadable file), never leave attempts unrecorded.
      await Promise.all(inFlight);
      signal.removeEventListener('abort', onAbort);
    }
    if (internalError !== undefined) throw internalError;

    stats.durationMs = ports.now() - startedAt;
    stats.skipped = phase.commandCount - stats.alreadyDone - stats.succeeded - stats.failed;
    stats.status = signal.aborted ? 'interrupted' : stats.failed > 0 ? 'failed' : 'succeeded';
    ports.logger.info(
      { phase: phase.name, phaseIndex: phase.index, succeeded: stats.succeeded, failed: stats.failed, durationMs: stats.durationMs },
      'phase finished',
    );
    if (stats.failed > 0 && !options.keepGoing) {
      stopAfterPhase = true;
      if (position < phases.length - 1) {
        ports.logger.warn({ phase: phase.name }, 'later phases will not start because this phase had failures (use --keep-going to run them anyway)');
      }
    }
  }
  return { phases: summaries, failed, interrupted: signal.aborted };
}
