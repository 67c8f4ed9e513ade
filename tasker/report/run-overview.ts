import { formatDuration } from '../../shared/config/duration.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { markerDirName } from '../../shared/run-dir/run-layout.js';

/**
 * What `tasker runs` and `tasker status --workdir` show of the runs in a workdir, from their files
 * alone (run.json, results.jsonl, summary.json, read by local-runs.ts): no broker, no Redis. Pure.
 */

/** `unfinished`: no summary was written after the last result: still running, or its tasker was killed. `cancelled`: by `tasker cancel`. */
export type LocalRunState = 'succeeded' | 'failed' | 'interrupted' | 'cancelled' | 'unfinished';

const summaryStates: readonly string[] = ['succeeded', 'failed', 'interrupted', 'cancelled'] satisfies LocalRunState[];

/** The commands of a run as results.jsonl has them, each counted once, by its latest attempt. */
export interface ResultTally {
  succeeded: number;
  /** Latest attempt did not succeed (failed, timed out, killed...), not counting the two below. */
  failed: number;
  interrupted: number;
  /** Dead-lettered commands (poison: they kept killing their workers), in the order they were given up. */
  deadLettered: ResultRecord[];
  attempts: number;
  lastFinishedAt: string | undefined;
}

export interface ResultTallier {
  add(record: ResultRecord): void;
  tally(): ResultTally;
}

export function createResultTallier(): ResultTallier {
  // Per command: its latest attempt's outcome, and whether any attempt succeeded (a resumed run
  // never runs a succeeded command again).
  const latest = new Map<string, { attempt: number; outcome: string; succeeded: boolean }>();
  const dead = new Map<string, ResultRecord>();
  let attempts = 0;
  let lastFinishedAt: string | undefined;
  return {
    add(record) {
      attempts++;
      if (lastFinishedAt === undefined || record.finishedAt > lastFinishedAt) lastFinishedAt = record.finishedAt;
      const before = latest.get(record.id);
      const succeeded = (before?.succeeded ?? false) || record.outcome === 'succeeded';
      if (before === undefined || record.attempt >= before.attempt) latest.set(record.id, { attempt: record.attempt, outcome: record.outcome, succeeded });
      else before.succeeded = succeeded;
      if (record.outcome === 'dead-lettered') dead.set(record.id, record);
    },
    tally() {
      const tally: ResultTally = { succeeded: 0, failed: 0, interrupted: 0, deadLettered: [], attempts, lastFinishedAt };
      for (const [id, entry] of latest) {
        if (entry.succeeded) tally.succeeded++;
        else if (entry.outcome === 'dead-lettered') tally.deadLettered.push(dead.get(id)!);
        else if (entry.outcome === 'interrupted') tally.interrupted++;
        else tally.failed++;
      }
      return tally;
    },
  };
}

export interface RunOverview {
  runId: string;
  createdAt: string;
  files: string[];
  commands: number;
  state: LocalRunState;
  /** From summary.json, when the state comes from it. */
  finishedAt: string | undefined;
  exitCode: number | undefined;
  results: ResultTally;
}

/** A summary counts only when no result came after it (a later session that was killed writes none). */
export function runState(summary: { status: string; finishedAt: string } | undefined, lastFinishedAt: string | undefined): LocalRunState {
  if (summary === undefined) return 'unfinished';
  if (lastFinishedAt !== undefined && lastFinishedAt > summary.finishedAt) return 'unfinished';
  return summaryStates.includes(summary.status) ? (summary.status as LocalRunState) : 'unfinished';
}

function describeState(run: RunOverview): string {
  return run.state === 'unfinished' ? 'unfinished (running, or its tasker was stopped)' : run.state;
}

function notRun(run: RunOverview): number {
  const { succeeded, failed, interrupted, deadLettered } = run.results;
  return Math.max(0, run.commands - succeeded - failed - interrupted - deadLettered.length);
}

/** `tasker runs`: one line per run, newest first. */
export function formatRunsTable(workdir: string, runs: readonly RunOverview[]): string {
  if (runs.length === 0) return `No runs in ${workdir} (nothing under ${markerDirName}/runs/).\n`;
  const idWidth = Math.max(6, ...runs.map((run) => run.runId.length));
  const out = [
    `Runs in ${workdir}, newest first:`,
    `  ${'run id'.padEnd(idWidth)}  ${'state'.padEnd(11)}  ${'commands'.padStart(8)}  ${'done'.padStart(7)}  ${'failed'.padStart(7)}  ${'interrupted'.padStart(11)}  ${'not run'.padStart(7)}  created`,
  ];
  for (const run of runs) {
    // Interrupted (stopped while running) is neither a failure nor a command that never started.
    const failed = run.results.failed + run.results.deadLettered.length;
    out.push(
      `  ${run.runId.padEnd(idWidth)}  ${run.state.padEnd(11)}  ${String(run.commands).padStart(8)}  ${String(run.results.succeeded).padStart(7)}  ${String(failed).padStart(7)}  ${String(run.results.interrupted).padStart(11)}  ${String(notRun(run)).padStart(7)}  ${run.createdAt}`,
    );
  }
  if (runs.some((run) => run.state === 'unfinished')) out.push('', 'unfinished: running now, or its tasker was stopped before it wrote a summary; resume it with run --resume RUN_ID.');
  return `${out.join('\n')}\n`;
}

/** `tasker status RUN_ID --workdir DIR`: a run from its files. */
export function formatLocalStatus(run: RunOverview, now: number): string {
  const { results } = run;
  const since = results.lastFinishedAt === undefined ? 'no command finished yet' : `last result ${formatDuration(now - Date.parse(results.lastFinishedAt))} ago`;
  const out = [
    `Run ${run.runId}: ${describeState(run)}${run.exitCode === undefined ? '' : ` (exit ${run.exitCode})`}; created ${run.createdAt}; ${since}`,
    `  jobs files: ${run.files.join(', ')}`,
    `  ${run.commands} commands: ${results.succeeded} done, ${results.failed} failed, ${results.interrupted} interrupted, ${results.deadLettered.length} dead-lettered, ${notRun(run)} not run (${results.attempts} attempts)`,
  ];
  if (results.deadLettered.length > 0) {
    out.push('', `Dead-lettered (${results.deadLettered.length}): they kept killing their workers and were given up on; a resumed run tries them again`);
    for (const record of results.deadLettered) {
      out.push(`  ${record.id}  phase ${record.phase}, ${record.file}:${record.line}: ${record.reason ?? 'dead-lettered'}`);
      out.push(`    command: ${record.command.length > 200 ? `${record.command.slice(0, 200)}…` : record.command}`);
      out.push(`    log:     ${record.log}`);
    }
  }
  return `${out.join('\n')}\n`;
}
