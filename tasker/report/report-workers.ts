import type { ResultRecord } from '../../shared/state/results.js';
import { binOf, createBusyBins, type BusyBins } from './report-bins.js';

/**
 * Per worker, for the HTML report: commands run, busy time, failures, and its busy slots over time
 * (the rows of the work timeline), with one attempt per timeline cell to show on hover. Pure.
 * Past `maxWorkers` distinct workers, the rest share one row, so memory stays bounded.
 */

export interface WorkerSummary {
  worker: string;
  attempts: number;
  succeeded: number;
  failed: number;
  busyMs: number;
}

/** One attempt shown when hovering a cell: the longest that started in it. */
export interface CellSample {
  id: string;
  command: string;
  startMs: number;
  durationMs: number;
  outcome: string;
  attempt: number;
}

export interface TimelineRow {
  worker: string;
  /** Average busy slots per column. */
  busy: number[];
  /** [column, sample] pairs, sorted by column. */
  samples: [number, CellSample][];
}

export interface WorkerReport {
  workers: WorkerSummary[];
  /** Workers with a command running, per time bin. */
  live: number[];
  timeline: { columns: number; columnMs: number; rows: TimelineRow[]; hiddenWorkers: number };
}

export interface WorkerTracker {
  add(record: ResultRecord, startMs: number, endMs: number): void;
  /** An attempt still running on `worker` (a live report): busy, not counted as an attempt. */
  busy(worker: string, startMs: number, endMs: number): void;
  report(maxRows: number): WorkerReport;
}

interface WorkerAcc extends WorkerSummary {
  bins: BusyBins;
  samples: (CellSample | undefined)[];
}

export const otherWorkers = '(other workers)';
const maxSampleCommandChars = 200;

export interface WorkerTrackerOptions {
  fromMs: number;
  binMs: number;
  bins: number;
  /** Time bins per column of the worker timeline. */
  binsPerColumn: number;
  maxWorkers: number;
}

export function createWorkerTracker(options: WorkerTrackerOptions): WorkerTracker {
  const { fromMs, binMs, bins, maxWorkers } = options;
  const perColumn = Math.max(1, options.binsPerColumn);
  const columns = Math.ceil(bins / perColumn);
  const columnMs = binMs * perColumn;
  const accs = new Map<string, WorkerAcc>();
  const accOf = (name: string): WorkerAcc => {
    const key = accs.has(name) || accs.size < maxWorkers ? name : otherWorkers;
    let acc = accs.get(key);
    if (acc === undefined) {
      acc = { worker: key, attempts: 0, succeeded: 0, failed: 0, busyMs: 0, bins: createBusyBins(fromMs, binMs, bins), samples: new Array(columns) };
      accs.set(key, acc);
    }
    return acc;
  };
  return {
    add(record, startMs, endMs) {
      const acc = accOf(typeof record.worker === 'string' ? record.worker : '?');
      acc.attempts++;
      if (record.outcome === 'succeeded') acc.succeeded++;
      else if (record.outcome !== 'interrupted') acc.failed++;
      acc.busyMs += Math.max(0, endMs - startMs);
      acc.bins.add(startMs, endMs);
      const column = binOf(startMs, fromMs, columnMs, columns);
      const durationMs = Math.max(0, endMs - startMs);
      const current = acc.samples[column];
      if (current === undefined || durationMs > current.durationMs) {
        const command = record.command.length > maxSampleCommandChars ? `${record.command.slice(0, maxSampleCommandChars)}…` : record.command;
        acc.samples[column] = { id: record.id, command, startMs, durationMs, outcome: record.outcome, attempt: record.attempt };
      }
    },
    busy(worker, startMs, endMs) {
      accOf(worker).bins.add(startMs, endMs);
    },
    report(maxRows) {
      const all = [...accs.values()];
      const totals = all.map((acc) => acc.bins.totals());
      const live = new Array<number>(bins).fill(0);
      for (const busy of totals) for (let i = 0; i < bins; i++) if (busy[i]! > 0) live[i]!++;
      const shown = [...all.keys()].sort((a, b) => all[b]!.busyMs - all[a]!.busyMs).slice(0, maxRows);
      shown.sort((a, b) => all[a]!.worker.localeCompare(all[b]!.worker, undefined, { numeric: true }));
      const rows = shown.map((i) => timelineRow(all[i]!, totals[i]!, perColumn, columns, columnMs));
      return {
        workers: all.map(({ worker, attempts, succeeded, failed, busyMs }) => ({ worker, attempts, succeeded, failed, busyMs })).sort((a, b) => a.worker.localeCompare(b.worker, undefined, { numeric: true })),
        live,
        timeline: { columns, columnMs, rows, hiddenWorkers: all.length - rows.length },
      };
    },
  };
}

function timelineRow(acc: WorkerAcc, busy: Float64Array, perColumn: number, columns: number, columnMs: number): TimelineRow {
  const out = new Array<number>(columns).fill(0);
  for (let i = 0; i < busy.length; i++) {
    const column = Math.min(columns - 1, Math.floor(i / perColumn));
    out[column]! += busy[i]!;
  }
  const samples: [number, CellSample][] = [];
  acc.samples.forEach((sample, column) => {
    if (sample !== undefined) samples.push([column, sample]);
  });
  return { worker: acc.worker, busy: out.map((ms) => Math.round((ms / columnMs) * 100) / 100), samples };
}
