import { formatDuration } from '../../shared/config/duration.js';
import { formatShare, type Priority } from '../../shared/state/fair-share.js';
import { ExitCode } from '../../shared/errors.js';
import type { Outcome } from '../../shared/exec/executor-contract.js';
import type { RunsOn } from '../jobs/plan.js';
import { defaultPool } from '../../shared/config/names.js';
import { sizingLines, type PoolSizing } from './pool-sizing.js';
import type { PhaseResources } from './resource-stats.js';
import type { Cancellation } from '../../shared/state/run-store.js';

/** What summary.json holds and the final report prints. Pure data, built by the tasker. */

export type PhaseStatus = 'succeeded' | 'failed' | 'skipped' | 'interrupted' | 'not-started';
/** `cancelled`: by an operator (`tasker cancel`): ended as an interrupt does, for good. */
export type RunStatus = 'succeeded' | 'failed' | 'interrupted' | 'cancelled';
/** Where workers phases ran: local slots of the tasker, or workers through RabbitMQ. */
export type RunMode = 'local' | 'rabbitmq';

export interface PhaseSummary {
  index: number;
  name: string;
  runsOn: RunsOn;
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
  /** Not run: an earlier phase failed, or the run was interrupted before they started. */
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
    ...(outcome.cancelled === undefined ? {} : { cancelled: outcome.cancelled }),
    ...(input.priority === undefined ? {} : { priority: input.priority }),
    ...(input.share === undefined ? {} : { share: input.share }),
  };
}

/** "Priority high; last share 4 of 8 slots": distributed runs only (a local run shares nothing). */
function priorityLine(summary: RunSummary): string[] {
  if (summary.mode !== 'rabbitmq' || summary.priority === undefined) return [];
  const { share } = summary;
  const slots = share === undefined ? '' : `; share at the last reading: ${formatShare(share.share, share.slots)}`;
  return [`  priority ${summary.priority}${slots}`];
}

/** The lines naming what ran more than once: commands must tolerate it (README, "What survives what"). */
function ranAgainLines(ranAgain: RanAgain | undefined): string[] {
  if (ranAgain === undefined || ranAgain.count === 0) return [];
  const named = ranAgain.commands.slice(0, 10).map((c) => `${c.id} (${c.starts}x)`);
  const more = ranAgain.count > named.length ? `, … ${ranAgain.count - named.length} more in summary.json` : '';
  return ['', `Started more than once (a worker was lost, frozen or drained mid-run; each counted once): ${ranAgain.count} command${ranAgain.count === 1 ? '' : 's'}: ${named.join(', ')}${more}`];
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function lastLines(text: string, count: number): string[] {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(-count);
}

function howItEnded(failure: FailedCommand): string {
  if (failure.exitCode !== null) return `exit ${failure.exitCode}`;
  return failure.signal !== null ? `killed by ${failure.signal}` : failure.outcome;
}

export interface FormatOptions {
  /** Failed commands listed in full; the rest are counted. Default 20. */
  maxFailures?: number;
  /** Lines of output shown per failed command. Default 5. */
  tailLines?: number;
  /** Turns a workdir-relative log path into what the reader can open. */
  logPath?: (relative: string) => string;
  /** The run's HTML report (when it was written), results.jsonl and logs directory, printed last whatever the outcome. Default: not printed. */
  records?: { report?: string; results: string; logs: string };
}

function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * The first line: how the commands ended, then the tasker's own exit code, said to be the
 * tasker's (a bare "(exit 1)" after "1 command failed" reads as that command's exit code).
 */
function headline(summary: RunSummary): string {
  const { totals } = summary;
  const took = formatDuration(summary.durationMs);
  const exit = `tasker exit code ${summary.exitCode}`;
  if (summary.status === 'succeeded') {
    return `Run ${summary.runId} finished in ${took}: ${totals.commands === 1 ? '1 command' : `all ${totals.commands} commands`} succeeded; ${exit}`;
  }
  if (summary.status === 'failed') {
    return `Run ${summary.runId} finished in ${took}: ${totals.failed} of ${counted(totals.commands, 'command')} failed; ${exit}`;
  }
  const parts = [
    totals.failed > 0 ? `${totals.failed} failed` : '',
    totals.interrupted > 0 ? `${totals.interrupted} interrupted while running` : '',
    totals.skipped > 0 ? `${totals.skipped} not started` : '',
  ].filter((part) => part !== '');
  const cancel = summary.cancelled;
  const how = cancel === undefined ? 'interrupted' : `cancelled by ${cancel.by}${cancel.reason === undefined ? '' : ` (${cancel.reason})`}`;
  return `Run ${summary.runId} ${how} after ${took}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}; ${exit}`;
}

/**
 * What the "runs on" column says: "local slots" in a local run (workers phases run on the
 * tasker's own slots), else "workers", or "workers (POOL)" for a pool other than the default.
 */
function runsOnLabel(phase: PhaseSummary, mode: RunMode): string {
  if (phase.runsOn !== 'workers') return phase.runsOn;
  if (mode === 'local') return 'local slots';
  return phase.pool === undefined || phase.pool === defaultPool ? 'workers' : `workers (${phase.pool})`;
}

/** One row per phase; the interrupted column only when a command was stopped while running. */
function phaseTable(summary: RunSummary): string[] {
  const nameWidth = Math.max(5, ...summary.phases.map((phase) => phase.name.length));
  const runsOnWidth = Math.max(7, ...summary.phases.map((phase) => runsOnLabel(phase, summary.mode).length));
  const withInterrupted = summary.totals.interrupted > 0;
  const row = (cells: { name: string; runsOn: string; status: string; counts: string[]; duration: string }): string =>
    [`  ${pad(cells.name, nameWidth)}`, pad(cells.runsOn, runsOnWidth), pad(cells.status, 11), ...cells.counts, pad(cells.duration, 8, true)].join('  ');
  const countHeads = ['done', 'failed', ...(withInterrupted ? ['interrupted'] : []), 'skipped'];
  const out = [row({ name: 'phase', runsOn: 'runs on', status: 'status', counts: countHeads.map((head) => pad(head, Math.max(7, head.length), true)), duration: 'duration' })];
  for (const phase of summary.phases) {
    const counts = [phase.succeeded + phase.alreadyDone, phase.failed, ...(withInterrupted ? [phase.interrupted] : []), phase.skipped];
    out.push(
      row({
        name: phase.name,
        runsOn: runsOnLabel(phase, summary.mode),
        status: phase.status,
        counts: counts.map((count, i) => pad(String(count), Math.max(7, countHeads[i]!.length), true)),
        duration: formatDuration(phase.durationMs),
      }),
    );
  }
  return out;
}

/** The human summary printed at the end of `tasker run`. */
export function formatSummary(summary: RunSummary, options: FormatOptions = {}): string {
  const maxFailures = options.maxFailures ?? 20;
  const tailLines = options.tailLines ?? 5;
  const logPath = options.logPath ?? ((relative: string) => relative);
  const out: string[] = [headline(summary), ...priorityLine(summary), ...phaseTable(summary)];
  if (summary.totals.alreadyDone > 0) {
    out.push(`  (${summary.totals.alreadyDone} done in an earlier session of this run, not run again)`);
  }
  if (summary.failed.length > 0) {
    out.push('', `Failed commands (${summary.failed.length}):`);
    for (const failure of summary.failed.slice(0, maxFailures)) {
      const how = howItEnded(failure);
      const why = failure.reason !== undefined && !failure.reason.startsWith('exit code') ? ` (${failure.reason})` : '';
      out.push(`  ${failure.id}  phase ${failure.phase}, ${failure.file}:${failure.line}: ${how}${why}, ${failure.attempts} attempt${failure.attempts === 1 ? '' : 's'}`);
      out.push(`    command: ${failure.command.length > 200 ? `${failure.command.slice(0, 200)}…` : failure.command}`);
      out.push(`    log:     ${logPath(failure.log)}`);
      if (failure.tail !== undefined && failure.tail.trim() !== '') {
        for (const line of lastLines(failure.tail, tailLines)) out.push(`    | ${line}`);
      }
    }
    const rest = summary.failed.slice(maxFailures);
    if (rest.length > 0) {
      // Every failure is listed; past the first ones, one line each (their output is in summary.json and the logs).
      out.push(`  … ${rest.length} more, one line each:`);
      for (const failure of rest) {
        const how = howItEnded(failure);
        out.push(`  ${failure.id}  ${how}  ${logPath(failure.log)}`);
      }
    }
  }
  out.push(...ranAgainLines(summary.ranAgain));
  out.push(...sizingLines(summary.sizing));
  if (options.records !== undefined) {
    if (summary.failed.length > 0 || summary.ranAgain !== undefined || (summary.sizing?.length ?? 0) > 0) out.push('');
    if (options.records.report !== undefined) out.push(`Report:  ${options.records.report}`);
    out.push(`Results: ${options.records.results}`, `Logs:    ${options.records.logs}`);
  }
  return `${out.join('\n')}\n`;
}
