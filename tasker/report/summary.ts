import { formatDuration } from '../../shared/config/duration.js';
import { ExitCode } from '../../shared/errors.js';
import type { Outcome } from '../../shared/exec/executor.js';
import type { RunsOn } from '../jobs/plan.js';

/** What summary.json holds and the final report prints. Pure data, built by the tasker. */

export type PhaseStatus = 'succeeded' | 'failed' | 'skipped' | 'interrupted' | 'not-started';
export type RunStatus = 'succeeded' | 'failed' | 'interrupted';

export interface PhaseSummary {
  index: number;
  name: string;
  runsOn: RunsOn;
  status: PhaseStatus;
  total: number;
  /** Succeeded in this session. */
  succeeded: number;
  /** Succeeded in an earlier session of this run (resume); not run again. */
  alreadyDone: number;
  failed: number;
  /** Not run: an earlier phase failed, or the run was interrupted. */
  skipped: number;
  durationMs: number;
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
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  totals: { commands: number; succeeded: number; alreadyDone: number; failed: number; skipped: number };
  phases: PhaseSummary[];
  failed: FailedCommand[];
}

export function totalsOf(phases: readonly PhaseSummary[]): RunSummary['totals'] {
  const totals = { commands: 0, succeeded: 0, alreadyDone: 0, failed: 0, skipped: 0 };
  for (const phase of phases) {
    totals.commands += phase.total;
    totals.succeeded += phase.succeeded;
    totals.alreadyDone += phase.alreadyDone;
    totals.failed += phase.failed;
    totals.skipped += phase.skipped;
  }
  return totals;
}

/** How a session's phases ended, as the phase loop reports it. */
export interface PhasesOutcome {
  phases: PhaseSummary[];
  failed: FailedCommand[];
  interrupted: boolean;
}

/** The session's summary: a failed command or a skipped phase makes the run failed. */
export function summarizeRun(input: { runId: string; workdir: string; startedAtMs: number; finishedAtMs: number; outcome: PhasesOutcome }): RunSummary {
  const { outcome } = input;
  const totals = totalsOf(outcome.phases);
  const status = outcome.interrupted ? 'interrupted' : totals.failed > 0 || outcome.phases.some((p) => p.status === 'skipped') ? 'failed' : 'succeeded';
  const exitCode = status === 'interrupted' ? ExitCode.interrupted : status === 'failed' ? ExitCode.commandsFailed : ExitCode.ok;
  return {
    runId: input.runId,
    status,
    exitCode,
    workdir: input.workdir,
    startedAt: new Date(input.startedAtMs).toISOString(),
    finishedAt: new Date(input.finishedAtMs).toISOString(),
    durationMs: input.finishedAtMs - input.startedAtMs,
    totals,
    phases: outcome.phases,
    failed: outcome.failed,
  };
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
}

/** The human summary printed at the end of `tasker run`. */
export function formatSummary(summary: RunSummary, options: FormatOptions = {}): string {
  const maxFailures = options.maxFailures ?? 20;
  const tailLines = options.tailLines ?? 5;
  const logPath = options.logPath ?? ((relative: string) => relative);
  const out: string[] = [];
  const verdict =
    summary.status === 'succeeded'
      ? 'all commands succeeded'
      : summary.status === 'interrupted'
        ? 'interrupted'
        : `${summary.totals.failed} command${summary.totals.failed === 1 ? '' : 's'} failed`;
  out.push(`Run ${summary.runId}: ${verdict} (exit ${summary.exitCode}) in ${formatDuration(summary.durationMs)}`);
  const nameWidth = Math.max(5, ...summary.phases.map((phase) => phase.name.length));
  out.push(
    `  ${pad('phase', nameWidth)}  ${pad('runs on', 7)}  ${pad('status', 11)}  ${pad('done', 7, true)}  ${pad('failed', 7, true)}  ${pad('skipped', 7, true)}  ${pad('duration', 8, true)}`,
  );
  for (const phase of summary.phases) {
    const done = phase.succeeded + phase.alreadyDone;
    out.push(
      `  ${pad(phase.name, nameWidth)}  ${pad(phase.runsOn, 7)}  ${pad(phase.status, 11)}  ${pad(String(done), 7, true)}  ${pad(String(phase.failed), 7, true)}  ${pad(String(phase.skipped), 7, true)}  ${pad(formatDuration(phase.durationMs), 8, true)}`,
    );
  }
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
  return `${out.join('\n')}\n`;
}
