import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aggregateResults, forEachLine, scanTimeSpan } from '../../tasker/report/report-input.js';

/** The report's reading of results.jsonl: whole lines across read pieces, any UTF-8, torn lines counted. */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tasker-report-input-'));
  dirs.push(dir);
  const path = join(dir, 'results.jsonl');
  writeFileSync(path, text);
  return path;
}

async function linesOf(path: string): Promise<string[]> {
  const lines: string[] = [];
  await forEachLine(path, (line) => lines.push(line));
  return lines;
}

describe('forEachLine', () => {
  it('gives whole lines across 4 MiB pieces, with multi-byte characters and a line longer than a piece', async () => {
    const long = 'é'.repeat(3 * 1024 * 1024); // 6 MiB of UTF-8
    const lines = ['a', 'ü'.repeat(2 * 1024 * 1024 + 1), long, '∑ last, no newline'];
    expect(await linesOf(file(lines.join('\n')))).toEqual(lines);
    expect(await linesOf(file('one\ntwo\n'))).toEqual(['one', 'two']);
    expect(await linesOf(file(''))).toEqual([]);
  });
});

describe('reading results.jsonl', () => {
  const line = (id: string, start: string, end: string): string =>
    JSON.stringify({ id, phase: 'p', phaseIndex: 1, command: 'true', file: 'j', line: 1, attempt: 1, outcome: 'succeeded', exitCode: 0, signal: null, startedAt: start, finishedAt: end, durationMs: Date.parse(end) - Date.parse(start), worker: 'w', log: 'l', extra: { unknown: 'field' } });

  it('finds the time span without parsing lines, and aggregates every record; a torn line is counted, not fatal', async () => {
    const path = file(
      [line('b', '2026-11-21T10:00:05.000Z', '2026-11-21T10:00:09.000Z'), line('a', '2026-11-21T10:00:01.000Z', '2026-11-21T10:00:02.000Z'), '{"id":"c","attempt":1,"outc', ''].join('\n'),
    );
    expect(await scanTimeSpan(path)).toEqual({ fromMs: Date.parse('2026-11-21T10:00:01.000Z'), toMs: Date.parse('2026-11-21T10:00:09.000Z') });
    const data = await aggregateResults(path, { fromMs: Date.parse('2026-11-21T10:00:01.000Z'), toMs: Date.parse('2026-11-21T10:00:09.000Z') });
    expect(data).toMatchObject({ attempts: 2, succeeded: 2, skippedLines: 1 });
  });

  it('reads no results from a file that is not there', async () => {
    expect(await scanTimeSpan('/nonexistent/results.jsonl')).toBeUndefined();
    expect((await aggregateResults('/nonexistent/results.jsonl', { fromMs: 0, toMs: 1 })).attempts).toBe(0);
  });
});
