import { isAscii } from 'node:buffer';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseResultLine } from '../../shared/state/results.js';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import { createReportAggregator, type AggregateOptions, type ReportData } from './report-data.js';
import { createResourceTally } from './resource-stats.js';
import type { RunSummary } from './summary.js';

/**
 * Reads what the HTML report shows from a run's files: run.json (the plan's phases),
 * summary.json (how the last session ended) and results.jsonl, streamed twice: a cheap pass for
 * the time span, then the aggregation. Memory stays bounded whatever the number of attempts.
 */

/** The part of run.json the report reads (tasker/run-state/run-record.ts writes it). */
export interface RunFileRecord {
  runId: string;
  createdAt: string;
  files: { path: string }[];
  phases: { index: number; name: string; runsOn: string; commandCount: number }[];
  /** Absent from runs recorded before modes were. */
  mode?: string;
}

/** A JSON file of the run, or undefined when it is missing or torn by a crash mid-write; other errors throw. */
export async function readJsonFile<T>(path: string): Promise<T | undefined> {
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

/**
 * Calls `onLines` with the bytes of a file in pieces of about 4 MiB that end at a newline (the
 * last line may lack one). One buffer is reused: a piece is only valid during the call.
 */
async function forEachPiece(path: string, onLines: (bytes: Buffer) => void): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    let buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
    let kept = 0; // bytes of an unfinished line at the start of `buffer`
    for (;;) {
      if (kept === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]); // a line longer than the buffer
      const { bytesRead } = await handle.read(buffer, kept, buffer.length - kept, null);
      if (bytesRead === 0) break;
      const filled = kept + bytesRead;
      const lastNewline = buffer.lastIndexOf(10, filled - 1);
      if (lastNewline < 0) {
        kept = filled;
        continue;
      }
      onLines(buffer.subarray(0, lastNewline));
      buffer.copy(buffer, 0, lastNewline + 1, filled);
      kept = filled - lastNewline - 1;
    }
    if (kept > 0) onLines(buffer.subarray(0, kept));
  } finally {
    await handle.close();
  }
}

/**
 * Calls `onLine` with every line of a file. Each piece is decoded once (a newline byte never
 * occurs inside a UTF-8 character; pure ASCII, the usual case, is copied rather than decoded),
 * then cut with indexOf: a few times faster than a line-splitting stream on a million lines.
 */
export async function forEachLine(path: string, onLine: (line: string) => void): Promise<void> {
  await forEachPiece(path, (bytes) => {
    const text = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      onLine(text.slice(start, end));
      start = end + 1;
    }
    onLine(text.slice(start));
  });
}

const startedField = Buffer.from('"startedAt":"');
const finishedField = Buffer.from('"finishedAt":"');
const isoLength = '2026-11-21T10:39:55.123Z'.length;

/** Every time a field holds in the bytes (`"startedAt":"…"`), without decoding or parsing the lines. */
function eachTime(bytes: Buffer, field: Buffer, onTime: (ms: number) => void): void {
  for (let at = bytes.indexOf(field); at >= 0; at = bytes.indexOf(field, at + field.length)) {
    onTime(Date.parse(bytes.toString('latin1', at + field.length, at + field.length + isoLength)));
  }
}

/** First start and last finish in results.jsonl (the timelines' span); undefined when there is no result. */
export async function scanTimeSpan(resultsPath: string): Promise<{ fromMs: number; toMs: number } | undefined> {
  if (!existsSync(resultsPath)) return undefined;
  let fromMs = Number.POSITIVE_INFINITY;
  let toMs = Number.NEGATIVE_INFINITY;
  await forEachPiece(resultsPath, (bytes) => {
    // NaN (a torn time) compares false: ignored.
    eachTime(bytes, startedField, (ms) => {
      if (ms < fromMs) fromMs = ms;
    });
    eachTime(bytes, finishedField, (ms) => {
      if (ms > toMs) toMs = ms;
    });
  });
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) return undefined;
  return { fromMs, toMs: Math.max(toMs, fromMs + 1) };
}

/** Aggregates results.jsonl (missing: no attempts) over the given span. */
export async function aggregateResults(resultsPath: string, options: AggregateOptions): Promise<ReportData> {
  const aggregator = createReportAggregator(options);
  const resources = createResourceTally();
  if (existsSync(resultsPath)) {
    await forEachLine(resultsPath, (line) => {
      if (line.trim() === '') return;
      const record = parseResultLine(line);
      if (record === undefined) aggregator.skip();
      else {
        aggregator.add(record);
        resources.add(record);
      }
    });
  }
  return { ...aggregator.finish(), resources: resources.phases() };
}
