import type { Priority } from '../../shared/state/fair-share.js';
import { ExitCode } from '../../shared/errors.js';
import type { Outcome } from '../../shared/exec/executor-contract.js';
import type { RunsOnShown } from '../jobs/plan.js';
import type { PoolSizing } from './pool-sizing.js';
import type { PhaseResources } from './resource-stats.js';
import type { Cancellation } from '../../shared/state/run-store.js';

/** What summary.json holds (summary-text.ts prints it). Pure data, built by the tasker. */

/**
 * `skipped`: not run, an earlier phase failed; `not-started`: not run, the run stopped first (both
 * printed "not run"). A phase all done in an earlier session is `succeeded` (printed "already done").
 */
export type PhaseStatus = 'succeeded' | 'failed' | 'skipped' | 'interrupted' | 'not-started';
/** `cancelled`: by an operator (`tasker cancel`): ended as an interrupt does, for good. */
export type RunStatus = 'succeeded' | 'failed' | 'interrupted' | 'cancelled';
/** Where workers phases ran: local slots of the tasker, or workers through RabbitMQ. */
export type RunMode = 'local' | 'rabbitmq';

export interface PhaseSummary {
  index: number;
  name: string;
  /** "tasker", "workers" (distributed) or "local slots" (a local run's workers phase; "workers" in summaries written before). */
  runsOn: RunsOnShown;
  /** A workers phase's pool; absent for a tasker phase, and in summaries written before pools. */
  pool?: string;
  status: PhaseStatus;
  total: number;
  /** Succeeded in this session. */
  succeeded: number;
  /** Succeeded in an earlier session of this run (resume); not run again. */
  alreadyDone: number;
  failed: number;
  /** Started in this session and stopped by the interrupt before they succeeded or ran out of attempts. */
  interrupted: number;
  /**
   * Not run: never started in this session (an earlier phase failed, or the run stopped first).
   * Printed "not run"; the key keeps its first name for the scripts that read it.
   */
  skipped: number;
  durationMs: number;
  /** What its attempts used (all sessions'): distributions, OOM kills, the largest (resource-stats.ts). */
  resources?: PhaseResources;
}

export interface FailedCommand {
  id: string;
  phase: string;
  command: string;
  file: string;
  line: number;
  outcome: Outcome | 'interrupted' | 'dead-lettered';
  exitCode: number | null;
  signal: string | null;
  reason?: string;
  attempts: number;
  /** Relative to the workdir. */
  log: string;
  tail?: string;
}

export interface RunSummary {
  runId: string;
  status: RunStatus;
  exitCode: number;
  workdir: string;
  mode: RunMode;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** commands = succeeded + alreadyDone + failed + interrupted + skipped. */
  totals: { commands: number; succeeded: number; alreadyDone: number; failed: number; interrupted: number; skipped: number };
  phases: PhaseSummary[];
  failed: FailedCommand[];
  /** Present when some command started more than once (distributed runs). */
  ranAgain?: RanAgain;
  /** Present when some command failed, then succeeded on a retry (--retries) in this session. */
  succeededAfterRetry?: Retried;
  /** The resources each workers phase's pool should request (pool-sizing.ts); absent when nothing was measured. */
  sizing?: PoolSizing[];
  /** Who cancelled the run, when it was cancelled. */
  cancelled?: Cancellation;
  /** --priority (absent: a summary older than priorities). */
  priority?: Priority;
  /** Distributed runs: its share of its pool's slots at the last reading while a workers phase ran (fair-share.ts). */
  share?: { share: number; slots: number };
}

export function totalsOf(phases: readonly PhaseSummary[]): RunSummary['totals'] {
  const totals = { commands: 0, succeeded: 0, alreadyDone: 0, failed: 0, interrupted: 0, skipped: 0 };
  for (const phase of phases) {
    totals.commands += phase.total;
    totals.succeeded += phase.succeeded;
    totals.alreadyDone += phase.alreadyDone;
    totals.failed += phase.failed;
    totals.interrupted += phase.interrupted;
    totals.skipped += phase.skipped;
  }
  return totals;
}

/** How a session's phases ended, as the phase loop reports it. */
export interface PhasesOutcome {
  phases: PhaseSummary[];
  failed: FailedCommand[];
  interrupted: boolean;
  ranAgain?: RanAgain;
  succeededAfterRetry?: Retried;
  /** Set when what stopped the run was a cancel (then `interrupted` is true too). */
  cancelled?: Cancellation | undefined;
}

/**
 * Distributed runs: commands whose attempt started more than once (a worker was lost or frozen
 * while running it, so it ran again elsewhere; still counted once). `commands` lists the first 100.
 */
export interface RanAgain {
  count: number;
  commands: { id: string; phase: string; starts: number }[];
}

/** Commands that failed and then succeeded on a retry (--retries); `commands` lists the first 100. */
export interface Retried {
  count: number;
  commands: { id: string; phase: string; attempts: number }[];
}

/** The session's summary: a failed command or a skipped phase makes the run failed. */
export function summarizeRun(input: { runId: string; workdir: string; mode: RunMode; startedAtMs: number; finishedAtMs: number; outcome: PhasesOutcome; priority?: Priority; share?: RunSummary['share'] }): RunSummary {
  const { outcome } = input;
  const totals = totalsOf(outcome.phases);
  const status = outcome.cancelled !== undefined ? 'cancelled' : outcome.interrupted ? 'interrupted' : totals.failed > 0 || outcome.phases.some((p) => p.status === 'skipped') ? 'failed' : 'succeeded';
  const exitCode = { cancelled: ExitCode.cancelled, interrupted: ExitCode.interrupted, failed: ExitCode.commandsFailed, succeeded: ExitCode.ok }[status];
  return {
    runId: input.runId,
    status,
    exitCode,
    workdir: input.workdir,
    mode: input.mode,
    startedAt: new Date(input.startedAtMs).toISOString(),
    finishedAt: new Date(input.finishedAtMs).toISOString(),
    durationMs: input.finishedAtMs - input.startedAtMs,
    totals,
    phases: outcome.phases,
    failed: outcome.failed,
    ...(outcome.ranAgain !== undefined && outcome.ranAgain.count > 0 ? { ranAgain: outcome.ranAgain } : {}),
    ...(outcome.succeededAfterRetry !== undefined && outcome.succeededAfterRetry.count > 0 ? { succeededAfterRetry: outcome.succeededAfterRetry } : {}),
    ...(outcome.cancelled === undefined ? {} : { cancelled: outcome.cancelled }),
    ...(input.priority === undefined ? {} : { priority: input.priority }),
    ...(input.share === undefined ? {} : { share: input.share }),
  };
}
