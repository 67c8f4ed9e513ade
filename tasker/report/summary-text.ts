import { formatDuration } from '../../shared/config/duration.js';
import { formatShare } from '../../shared/state/fair-share.js';
import { defaultPool } from '../../shared/config/names.js';
import { sizingLines } from './pool-sizing.js';
import type { FailedCommand, PhaseSummary, RanAgain, Retried, RunMode, RunSummary } from './summary.js';

/**
 * The summary printed at the end of `tasker run` (and by `tasker status --workdir`), from
 * summary.json's data (summary.ts). Pure. Its words: "not run" for commands that never started
 * (summary.json's `skipped`), "already done" for those done in an earlier session of the run.
 */

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

/** The commands a retry rescued: they failed, then succeeded on a later attempt of this session. */
function retriedLines(retried: Retried | undefined): string[] {
  if (retried === undefined || retried.count === 0) return [];
  const named = retried.commands.slice(0, 10).map((c) => `${c.id} (${c.attempts} attempts)`);
  const more = retried.count > named.length ? `, … ${retried.count - named.length} more in summary.json` : '';
  return ['', `Succeeded after a retry (--retries): ${counted(retried.count, 'command')}: ${named.join(', ')}${more}`];
}

/**
 * A phase's status as printed: "not run" for a phase that never started (an earlier phase failed,
 * or the run stopped first), "already done" for one done entirely in an earlier session.
 */
export function phaseStatusLabel(phase: PhaseSummary): string {
  if (phase.status === 'skipped' || phase.status === 'not-started') return 'not run';
  if (phase.status === 'succeeded' && phase.total > 0 && phase.alreadyDone === phase.total) return 'already done';
  return phase.status;
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

/** "1 command", "2 commands". */
export function counted(count: number, noun: string): string {
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
    totals.skipped > 0 ? `${totals.skipped} not run` : '',
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
  if (phase.runsOn === 'tasker') return phase.runsOn;
  if (mode === 'local') return 'local slots';
  return phase.pool === undefined || phase.pool === defaultPool ? 'workers' : `workers (${phase.pool})`;
}

/**
 * One row per phase; "done" counts this session's, "already done" (only after a resume) those of
 * earlier sessions, "interrupted" (only when one was) those stopped while running.
 */
function phaseTable(summary: RunSummary): string[] {
  const nameWidth = Math.max(5, ...summary.phases.map((phase) => phase.name.length));
  const runsOnWidth = Math.max(7, ...summary.phases.map((phase) => runsOnLabel(phase, summary.mode).length));
  const withInterrupted = summary.totals.interrupted > 0;
  const withAlreadyDone = summary.totals.alreadyDone > 0;
  const row = (cells: { name: string; runsOn: string; status: string; counts: string[]; duration: string }): string =>
    [`  ${pad(cells.name, nameWidth)}`, pad(cells.runsOn, runsOnWidth), pad(cells.status, 12), ...cells.counts, pad(cells.duration, 8, true)].join('  ');
  const countHeads = ['done', ...(withAlreadyDone ? ['already done'] : []), 'failed', ...(withInterrupted ? ['interrupted'] : []), 'not run'];
  const out = [row({ name: 'phase', runsOn: 'runs on', status: 'status', counts: countHeads.map((head) => pad(head, Math.max(7, head.length), true)), duration: 'duration' })];
  for (const phase of summary.phases) {
    const counts = [phase.succeeded, ...(withAlreadyDone ? [phase.alreadyDone] : []), phase.failed, ...(withInterrupted ? [phase.interrupted] : []), phase.skipped];
    out.push(
      row({
        name: phase.name,
        runsOn: runsOnLabel(phase, summary.mode),
        status: phaseStatusLabel(phase),
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
    out.push(`  (already done: ${counted(summary.totals.alreadyDone, 'command')} succeeded in an earlier session of this run, kept)`);
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
  out.push(...retriedLines(summary.succeededAfterRetry));
  out.push(...ranAgainLines(summary.ranAgain));
  out.push(...sizingLines(summary.sizing));
  if (options.records !== undefined) {
    if (summary.failed.length > 0 || summary.ranAgain !== undefined || summary.succeededAfterRetry !== undefined || (summary.sizing?.length ?? 0) > 0) out.push('');
    if (options.records.report !== undefined) out.push(`Report:  ${options.records.report}`);
    out.push(`Results: ${options.records.results}`, `Logs:    ${options.records.logs}`);
  }
  return `${out.join('\n')}\n`;
}
