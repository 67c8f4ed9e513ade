import type { RunMeta } from '../../shared/state/run-store.js';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { PhaseSpec, PlannedCommand } from '../jobs/plan.js';
import type { PriorResults } from '../run-state/results-file.js';
import type { CommandRef, ResultRecord } from '../../shared/state/results.js';
import type { Placement } from '../../shared/state/placement.js';
import type { RunMode } from '../report/summary.js';

/**
 * What the phase loop is handed and what it updates: the dispatch every phase runs through,
 * the narrow ports to the rest of the tasker, the options and the live counters.
 */

export interface AttemptOutcome {
  result: ExecutionResult;
  /** Who ran it. */
  worker: string;
  /** Log path relative to the workdir. */
  log: string;
  /** The attempt that actually ran, when the dispatch knows better (a resumed run's in-flight attempt). */
  attempt?: number;
  /** Called once the result is recorded (e.g. lets the result message be acked). */
  settle?: () => Promise<void>;
  /** Dead-lettered (poison, or by RabbitMQ): counted as failed, recorded with this outcome. */
  deadLettered?: boolean;
  /** Where it ran (the tasker's slots, or the worker's record). */
  placement?: Placement | undefined;
  /** How often the attempt started, when more than once (its first worker was lost mid-run). */
  starts?: number;
}

export interface PhaseDispatch {
  /**
   * Resolves when another command may be handed over (bounded in-flight work). `backlog`: the
   * phase's commands not handed over yet, this one included (what the run could still start).
   */
  waitForRoom(backlog: number): Promise<void>;
  /**
   * Runs one attempt and resolves with its result; `onStart` fires when it actually starts.
   * Resolves undefined when the run was interrupted before the attempt started: nothing ran, so
   * nothing is recorded (the command runs on resume, as attempt 1 if it never ran before).
   */
  runAttempt(command: CommandRef, attempt: number, onStart: () => void): Promise<AttemptOutcome | undefined>;
  /** Ends every running attempt (interrupt, --halt now, a tasker error). Their results still arrive, as killed. */
  killAll(reason: string): void;
  /** Starts nothing more: attempts handed over but not started resolve undefined; running ones go on (--halt soon). */
  stopStarting?(reason: string): void;
}

export const haltModes = ['never', 'soon', 'now'] as const;
export type HaltMode = (typeof haltModes)[number];

/** The run-wide halt of `RunPhasesOptions.halt`: aborted by the first command that fails for good. */
export interface Halt {
  mode: HaltMode;
  controller: AbortController;
}

export interface RunPorts {
  phaseCommands(phase: PhaseSpec): AsyncIterable<PlannedCommand>;
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  /**
   * Appends a finished attempt to results.jsonl: the writer of run-state/results-file.ts (the
   * records of one turn of the event loop in one synchronous write), and counts it in the metrics;
   * resolves once the line is in the file, which the attempt's `settle` (its result message acked)
   * waits for. Wired by tasker/run/phase-execution.ts.
   */
  record(record: ResultRecord): Promise<void> | void;
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
  /**
   * GNU parallel's `--halt soon,fail=1` / `now,fail=1`: once a command has failed for good (its
   * retries spent), `soon` starts nothing more (no new command, no retry) and lets the running
   * ones finish; `now` also stops them, recorded as interrupted so a resume runs them again.
   * Default 'never'.
   */
  halt?: HaltMode;
  prior: PriorResults;
  /** Where workers phases run: what the logs and the summary say runs them ("local slots" or "workers"). */
  mode: RunMode;
  /** Tails kept in memory for the summary; later failures keep theirs in results.jsonl only. */
  maxTailsKept?: number;
}

/** Live counters, read by the progress reporter; the run's record in Redis has the same fields. */
export interface Progress extends Pick<RunMeta, 'phase' | 'phaseIndex' | 'phaseCount' | 'pool' | 'total' | 'done' | 'failed'> {
  running: number;
  /** Finished in this session (for the rate behind the ETA). */
  finishedThisSession: number;
}
