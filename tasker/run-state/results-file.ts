import { closeSync, createReadStream, existsSync, openSync, writeSync } from 'node:fs';
import split2 from 'split2';
import { parseResultLine, type ResultRecord } from '../../shared/state/results.js';
import type { PriorStatus } from '../jobs/rerun-diff.js';

/** results.jsonl, a run's record of every finished attempt: appended by the tasker, read back on resume and by `tasker runs` and `tasker status`. */

export interface ResultsWriter {
  /** Resolves once the record is in the file: the records appended in one turn of the event loop go in one write. */
  append(record: ResultRecord): Promise<void>;
  /** Writes what is pending, then closes the file. */
  close(): void;
}

/**
 * One line per finished attempt. The lines appended in one turn of the event loop (a bundle's
 * results arrive together) are written together, with one synchronous write, before the next
 * turn; `append` resolves once they are in the file, so a result is acked only after that. A crash
 * can at worst tear the last line, which the reader skips, or lose the lines of the turn it hit:
 * their attempts were not acked, and run again (or are found in Redis).
 */
export function openResultsWriter(path: string): ResultsWriter {
  let fd: number | undefined = openSync(path, 'a');
  let pending = '';
  let batch: Promise<void> | undefined;
  const flush = (): void => {
    batch = undefined;
    if (pending === '') return;
    if (fd === undefined) throw new Error(`results file ${path} is closed`);
    const lines = pending;
    pending = '';
    writeSync(fd, lines);
  };
  return {
    append(record) {
      if (fd === undefined) return Promise.reject(new Error(`results file ${path} is closed`));
      pending += `${JSON.stringify(record)}\n`;
      batch ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flush);
      return batch;
    },
    close() {
      flush();
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** What an earlier session of a run achieved, read back from its results.jsonl. */
export interface PriorResults {
  succeeded: Set<string>;
  /** Attempts made so far per command, so new attempts get new numbers (and new log files). */
  attempts: Map<string, number>;
  /**
   * The highest attempt per command that ended with its result. An attempt recorded as
   * `interrupted` is left out: in a distributed run it may still be queued or running on a
   * worker, and a resumed run awaits it rather than publishing the command a second time.
   */
  resultAttempts: Map<string, number>;
  succeededByPhase: Map<number, number>;
}

/** The records of a results.jsonl, streamed; none when it does not exist. A torn line (a crash mid-write) is skipped. */
export async function* readResultRecords(path: string): AsyncGenerator<ResultRecord> {
  if (!existsSync(path)) return;
  for await (const line of createReadStream(path).pipe(split2()) as AsyncIterable<string>) {
    const record = parseResultLine(line);
    if (record !== undefined) yield record;
  }
}

export async function readPriorResults(path: string): Promise<PriorResults> {
  const prior: PriorResults = { succeeded: new Set(), attempts: new Map(), resultAttempts: new Map(), succeededByPhase: new Map() };
  for await (const record of readResultRecords(path)) {
    prior.attempts.set(record.id, Math.max(prior.attempts.get(record.id) ?? 0, record.attempt));
    if (record.outcome !== 'interrupted') prior.resultAttempts.set(record.id, Math.max(prior.resultAttempts.get(record.id) ?? 0, record.attempt));
    if (record.outcome === 'succeeded' && !prior.succeeded.has(record.id)) {
      prior.succeeded.add(record.id);
      prior.succeededByPhase.set(record.phaseIndex, (prior.succeededByPhase.get(record.phaseIndex) ?? 0) + 1);
    }
  }
  return prior;
}

/** Per command id, how it ended so far: succeeded (any attempt), else its latest attempt's outcome (interrupted: unfinished). */
export async function readPriorStatuses(path: string): Promise<Map<string, PriorStatus>> {
  const latest = new Map<string, { attempt: number; status: PriorStatus }>();
  for await (const record of readResultRecords(path)) {
    const before = latest.get(record.id);
    if (before?.status === 'succeeded') continue;
    const status: PriorStatus = record.outcome === 'succeeded' ? 'succeeded' : record.outcome === 'interrupted' ? 'unfinished' : 'failed';
    if (before === undefined || status === 'succeeded' || record.attempt >= before.attempt) latest.set(record.id, { attempt: record.attempt, status });
  }
  return new Map([...latest].map(([id, entry]) => [id, entry.status]));
}

/** The highest attempt per command id in these results files (the run's earlier revisions): new attempts get higher numbers, so no log is overwritten. */
export async function readEarlierAttempts(paths: readonly string[], into: Map<string, number>): Promise<void> {
  for (const path of paths) {
    for await (const record of readResultRecords(path)) into.set(record.id, Math.max(into.get(record.id) ?? 0, record.attempt));
  }
}
