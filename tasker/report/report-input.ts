import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import split2 from 'split2';
import { parseResultLine } from '../../shared/state/results.js';
import type { RunLayout } from '../../shared/state/run-layout.js';
import { createReportAggregator, type AggregateOptions, type ReportData } from './report-data.js';
import type { RunSummary } from './summary.js';

/**
 * Reads what the HTML report shows from a run's files: run.json (the plan's phases),
 * summary.json (how the last session ended) and results.jsonl, streamed twice: a cheap pass for
 * the time span, then the aggregation. Memory stays bounded whatever the number of attempts.
 */

/** The part of run.json the report reads (tasker/commands/run-record.ts writes it). */
export interface RunFileRecord {
  runId: string;
  createdAt: string;
  files: { path: string }[];
  phases: { index: number; name: string; runsOn: string; commandCount: number }[];
}

async function readJsonFile<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as T;
  } catch (error) {
    // Missing (not written yet) or torn by a crash mid-write: the report shows what the other files say.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

export function readRunFile(layout: RunLayout): Promise<RunFileRecord | undefined> {
  return readJsonFile<RunFileRecord>(join(layout.runDir, 'run.json'));
}

export function readSummaryFile(layout: RunLayout): Promise<RunSummary | undefined> {
  return readJsonFile<RunSummary>(layout.summaryPath);
}

function lines(path: string): AsyncIterable<string> {
  // 1 MiB reads: a results.jsonl of a million attempts is a few hundred megabytes.
  return createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(split2()) as AsyncIterable<string>;
}

/** The time a field holds in a raw results line, without parsing the line: `"startedAt":"…"`. */
function timeField(line: string, field: string): number {
  const at = line.indexOf(field);
  if (at < 0) return Number.NaN;
  const start = at + field.length;
  const end = line.indexOf('"', start);
  return end < 0 ? Number.NaN : Date.parse(line.slice(start, end));
}

/** First start and last finish in results.jsonl (the timelines' span); undefined when there is no result. */
export async function scanTimeSpan(resultsPath: string): Promise<{ fromMs: number; toMs: number } | undefined> {
  if (!existsSync(resultsPath)) return undefined;
  let fromMs = Number.POSITIVE_INFINITY;
  let toMs = Number.NEGATIVE_INFINITY;
  for await (const line of lines(resultsPath)) {
    const started = timeField(line, '"startedAt":"');
    const finished = timeField(line, '"finishedAt":"');
    if (Number.isFinite(started)) fromMs = Math.min(fromMs, started);
    if (Number.isFinite(finished)) toMs = Math.max(toMs, finished);
  }
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) return undefined;
  return { fromMs, toMs: Math.max(toMs, fromMs + 1) };
}

/** Aggregates results.jsonl (missing: no attempts) over the given span. */
export async function aggregateResults(resultsPath: string, options: AggregateOptions): Promise<ReportData> {
  const aggregator = createReportAggregator(options);
  if (existsSync(resultsPath)) {
    for await (const line of lines(resultsPath)) {
      if (line.trim() === '') continue;
      const record = parseResultLine(line);
      if (record === undefined) aggregator.skip();
      else aggregator.add(record);
    }
  }
  return aggregator.finish();
}
