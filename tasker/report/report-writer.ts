import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import { reportAssets } from './report-assets.js';
import { aggregateResults, readRunFile, readSummaryFile, scanTimeSpan } from './report-input.js';
import { reportModel, type LiveState } from './report-model.js';
import { renderReportPage } from './report-page.js';
import { runState } from './run-overview.js';

/** Writes a run's HTML report: `tasker report`, the end of every run, and the refreshes while it runs. */

/** Where the report of a run goes by default: next to its results. */
export function reportPathOf(layout: RunLayout): string {
  return join(layout.runDir, 'report.html');
}

export interface ReportRequest {
  layout: RunLayout;
  /** Default: the run directory's report.html. */
  outPath?: string;
  /** Set while the run is going (the tasker's own refreshes): what runs now. */
  live?: LiveState;
  resumeCommand?: string;
  now: () => number;
}

export interface WrittenReport {
  path: string;
  bytes: number;
  attempts: number;
}

export async function writeRunReport(request: ReportRequest): Promise<WrittenReport> {
  const { layout } = request;
  const [record, summaryFile, span] = await Promise.all([readRunFile(layout), readSummaryFile(layout), scanTimeSpan(layout.resultsPath)]);
  const nowMs = request.now();
  const fromMs = span?.fromMs ?? nowMs;
  // A live report's timelines reach to now: the commands still running are not in the results yet.
  const toMs = request.live === undefined ? (span?.toMs ?? nowMs) : Math.max(nowMs, span?.toMs ?? nowMs);
  const data = await aggregateResults(layout.resultsPath, { fromMs, toMs });
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
  });
  const html = renderReportPage(`tasker run ${layout.runId}`, model, await reportAssets());
  const path = request.outPath ?? reportPathOf(layout);
  await writeAtomically(path, html);
  return { path, bytes: Buffer.byteLength(html), attempts: data.attempts };
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
