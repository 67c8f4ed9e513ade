import { promises as fs } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import { reportAssets } from './report-assets.js';
import { aggregateResults, readRunFile, readSummaryFile, scanTimeSpan } from './report-input.js';
import type { ReportData } from './report-data.js';
import { reportModel, type LiveState, type ReportLinks } from './report-model.js';
import { renderReportData, renderReportPage } from './report-page.js';
import { runState } from './run-overview.js';
import type { RunSummary } from './summary.js';

/** Writes a run's HTML report: `tasker report`, the end of every run, and the refreshes while it runs. */

/** Where the report of a run goes by default: next to its results. */
export function reportPathOf(layout: RunLayout): string {
  return join(layout.runDir, 'report.html');
}

/**
 * The live report's data, next to report.html: `taskerReportUpdate({...});`. A page opened from
 * file:// may not fetch() a sibling file, but it may load it as a script: the page re-inserts
 * it every few seconds while the run goes (assets/report.js).
 */
export function reportDataPathOf(layout: RunLayout): string {
  return join(layout.runDir, 'report-data.js');
}

export interface ReportRequest {
  layout: RunLayout;
  /** Default: the run directory's report.html. */
  outPath?: string;
  /** Set while the run is going (the tasker's own refreshes): what runs now. */
  live?: LiveState;
  resumeCommand?: string;
  /** Also write report-data.js (the tasker's own writes, live and final: an open page picks up the end). Default false. */
  dataFile?: boolean;
  now: () => number;
  /** The run's results as readFinalResults read them, and its summary.json when the caller has it (the end of a run): not read again. Default: read. */
  final?: { data: ReportData; summary?: RunSummary };
}

export interface WrittenReport {
  path: string;
  bytes: number;
  attempts: number;
}

export async function writeRunReport(request: ReportRequest): Promise<WrittenReport> {
  const { layout, final } = request;
  const nowMs = request.now();
  const [record, summaryFile, data] = await Promise.all([readRunFile(layout), final?.summary ?? readSummaryFile(layout), final?.data ?? aggregated(layout, request.live, nowMs)]);
  const path = request.outPath ?? reportPathOf(layout);
  const lastFinishedAt = data.lastFinishMs === undefined ? undefined : new Date(data.lastFinishMs).toISOString();
  // A summary counts only when it describes the latest session (the same rule as `tasker runs`).
  const summary = request.live === undefined && summaryFile !== undefined && runState(summaryFile, lastFinishedAt) !== 'unfinished' ? summaryFile : undefined;
  const model = reportModel({
    runId: layout.runId,
    workdir: layout.workdir,
    record,
    summary,
    data,
    live: request.live,
    resumeCommand: request.resumeCommand,
    nowMs,
    links: linksOf(layout.workdir, dirname(path)),
  });
  const html = renderReportPage(`tasker run ${layout.runId}`, model, await reportAssets());
  // The data first: a page the new HTML tells to poll finds it.
  if (request.dataFile === true) await writeAtomically(reportDataPathOf(layout), renderReportData(model));
  await writeAtomically(path, html);
  return { path, bytes: Buffer.byteLength(html), attempts: data.attempts };
}

/** results.jsonl aggregated as the final report shows it: the end of a run and `tasker report` read it once for both the report and what the commands used. */
export function readFinalResults(layout: RunLayout, nowMs: number): Promise<ReportData> {
  return aggregated(layout, undefined, nowMs);
}

/** results.jsonl aggregated over the timelines' span: one pass for the span, one for the rest. */
async function aggregated(layout: RunLayout, live: LiveState | undefined, nowMs: number): Promise<ReportData> {
  const { fromMs, toMs } = timelineSpan(await scanTimeSpan(layout.resultsPath), live, nowMs);
  const running = live?.runningSinceMs === undefined ? undefined : { worker: live.worker ?? '?', sinceMs: live.runningSinceMs };
  return aggregateResults(layout.resultsPath, { fromMs, toMs, running });
}

/** A live report's timelines reach to now, from the first start of what is finished or running. */
function timelineSpan(span: { fromMs: number; toMs: number } | undefined, live: LiveState | undefined, nowMs: number): { fromMs: number; toMs: number } {
  if (live === undefined) return { fromMs: span?.fromMs ?? nowMs, toMs: span?.toMs ?? nowMs };
  const fromMs = Math.min(span?.fromMs ?? nowMs, live.phaseStartedMs ?? nowMs, ...(live.runningSinceMs ?? []));
  return { fromMs, toMs: Math.max(nowMs, span?.toMs ?? nowMs, fromMs + 1) };
}

/** URL paths (forward slashes) between the workdir and the report's directory. */
function linksOf(workdir: string, reportDir: string): ReportLinks {
  const posix = (path: string): string => path.split(sep).join('/');
  return { reportDir: posix(relative(workdir, reportDir)), toWorkdir: posix(relative(reportDir, workdir)) || '.' };
}

/** A reader (a browser reloading mid-run, the S3 upload) sees the old file or the new one, never half of one. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await fs.writeFile(temporary, text);
    await fs.rename(temporary, path);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw error;
  }
}
