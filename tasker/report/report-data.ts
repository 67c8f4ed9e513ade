import type { ResultRecord } from '../../shared/state/results.js';
import { binOf, countBins, createBusyBins, createDurationSketch, createTopN, niceBinMs, type DurationSketch, type TopN } from './report-bins.js';
import { createFailureTracker, type FailureReport } from './report-failures.js';
import { createWorkerTracker, type WorkerReport } from './report-workers.js';
import type { PhaseResources } from './resource-stats.js';

/**
 * The numbers of the HTML report, aggregated from results.jsonl one record at a time in fixed-size
 * structures (time bins, log-scale duration buckets, top-N heaps, capped tables), so a run of a
 * million attempts is summarised in the memory of one of ten. Pure: records in, data out.
 */

export interface SlowAttempt {
  id: string;
  command: string;
  durationMs: number;
  worker: string;
  attempt: number;
  outcome: string;
  log: string;
}

export interface PhaseData {
  index: number;
  name: string;
  attempts: number;
  /** Attempts per outcome: succeeded, failed, timed-out, ... */
  outcomes: Record<string, number>;
  /** Epoch ms; undefined when nothing of the phase has finished. */
  firstStartMs: number | undefined;
  /** The last attempt to start: from there on, the phase waits at its barrier for the slowest. */
  lastStartMs: number | undefined;
  lastFinishMs: number | undefined;
  durations: { count: number; minMs: number; meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  histogram: { fromMs: number; toMs: number; count: number }[];
  slowest: SlowAttempt[];
}

export interface ReportData {
  attempts: number;
  /** Attempts that succeeded: each command succeeds at most once, so also the commands done. */
  succeeded: number;
  outcomes: Record<string, number>;
  firstStartMs: number | undefined;
  lastFinishMs: number | undefined;
  /** The time bins of every timeline: bin i covers [fromMs + i·binMs, fromMs + (i+1)·binMs); the last one ends at `toMs`. */
  bins: { fromMs: number; binMs: number; count: number; toMs: number };
  /** Per bin: average commands running (the last bin: over its part before `toMs`), attempts finished, attempts failed, workers busy. */
  running: number[];
  finished: number[];
  failed: number[];
  liveWorkers: number[];
  phases: PhaseData[];
  workers: WorkerReport['workers'];
  timeline: WorkerReport['timeline'];
  failures: FailureReport;
  /** Lines of results.jsonl that were not result records (torn by a crash, or foreign). */
  skippedLines: number;
  /** What each phase's attempts used (resource-stats.ts); absent: not aggregated. */
  resources?: PhaseResources[];
}

export interface AggregateOptions {
  /** The time span the timelines cover (the run's first start to its last finish); records outside are clamped. */
  fromMs: number;
  toMs: number;
  /** The attempts running at `toMs` (a live report), on which worker and since when: busy up to `toMs`. Default: none. */
  running?: { worker: string; sinceMs: readonly number[] };
  /** Time bins of the timelines, at most (fewer for a short run: a bin lasts 50 ms at least). Default 600. */
  bins?: number;
  /** Time bins per column of the per-worker timeline. Default 3. */
  binsPerColumn?: number;
  /** Workers tracked one by one; the rest share a row. Default 2000. */
  maxWorkers?: number;
  /** Worker rows in the timeline, the busiest. Default 64. */
  timelineRows?: number;
  /** Failing commands listed in full. Default 500. */
  failureRows?: number;
  /** Slowest attempts listed per phase. Default 10. */
  slowest?: number;
  /** Bars of each phase's duration histogram. Default 40. */
  histogramBars?: number;
}

export interface ReportAggregator {
  add(record: ResultRecord): void;
  /** A line that was not a record (counted, shown as a warning). */
  skip(): void;
  finish(): ReportData;
}

interface PhaseAcc {
  index: number;
  name: string;
  attempts: number;
  outcomes: Record<string, number>;
  firstStartMs: number;
  lastStartMs: number;
  lastFinishMs: number;
  sketch: DurationSketch;
  slowest: TopN<SlowAttempt>;
}

const maxSlowCommandChars = 300;

/** A record's start and end in epoch ms; a missing or broken time falls back to the other, then to `fallbackMs`. */
function timesOf(record: ResultRecord, fallbackMs: number): { startMs: number; endMs: number } {
  const finished = Date.parse(record.finishedAt);
  const started = Date.parse(record.startedAt);
  const endMs = Number.isFinite(finished) ? finished : Number.isFinite(started) ? started + (record.durationMs || 0) : fallbackMs;
  const startMs = Number.isFinite(started) ? Math.min(started, endMs) : endMs - (record.durationMs || 0);
  return { startMs, endMs };
}

export function createReportAggregator(options: AggregateOptions): ReportAggregator {
  const fromMs = options.fromMs;
  const spanMs = Math.max(options.toMs - fromMs, 1);
  const binMs = niceBinMs(fromMs, fromMs + spanMs, options.bins ?? 600);
  const count = Math.max(1, Math.ceil(spanMs / binMs));
  const busy = createBusyBins(fromMs, binMs, count);
  const finished = countBins(count);
  const failed = countBins(count);
  const workers = createWorkerTracker({ fromMs, binMs, bins: count, binsPerColumn: options.binsPerColumn ?? 3, maxWorkers: options.maxWorkers ?? 2000 });
  const failures = createFailureTracker(options.failureRows ?? 500);
  const phases = new Map<number, PhaseAcc>();
  const outcomes: Record<string, number> = {};
  let attempts = 0;
  let succeeded = 0;
  let skippedLines = 0;
  let firstStartMs = Number.POSITIVE_INFINITY;
  let lastFinishMs = Number.NEGATIVE_INFINITY;

  const phaseOf = (record: ResultRecord): PhaseAcc => {
    const index = typeof record.phaseIndex === 'number' ? record.phaseIndex : 0;
    let acc = phases.get(index);
    if (acc === undefined) {
      acc = newPhase(index, String(record.phase ?? ''), options.slowest ?? 10);
      phases.set(index, acc);
    }
    return acc;
  };

  return {
    add(record) {
      const { startMs, endMs } = timesOf(record, fromMs);
      const durationMs = typeof record.durationMs === 'number' ? record.durationMs : endMs - startMs;
      attempts++;
      outcomes[record.outcome] = (outcomes[record.outcome] ?? 0) + 1;
      if (record.outcome === 'succeeded') succeeded++;
      // A dead-lettered record without a run of its own has no duration: it adds no busy time.
      busy.add(startMs, endMs);
      const bin = binOf(endMs, fromMs, binMs, count);
      finished[bin]!++;
      if (record.outcome !== 'succeeded' && record.outcome !== 'interrupted') failed[bin]!++;
      firstStartMs = Math.min(firstStartMs, startMs);
      lastFinishMs = Math.max(lastFinishMs, endMs);
      addToPhase(phaseOf(record), record, startMs, endMs, durationMs);
      workers.add(record, startMs, endMs);
      failures.add(record);
    },
    skip() {
      skippedLines++;
    },
    finish() {
      const running = options.running;
      for (const startMs of running?.sinceMs ?? []) {
        busy.add(startMs, options.toMs);
        workers.busy(running?.worker ?? '?', startMs, options.toMs);
      }
      const worker = workers.report(options.timelineRows ?? 64);
      return {
        attempts,
        succeeded,
        outcomes,
        firstStartMs: attempts === 0 ? undefined : firstStartMs,
        lastFinishMs: attempts === 0 ? undefined : lastFinishMs,
        bins: { fromMs, binMs, count, toMs: fromMs + spanMs },
        running: runningAverages(busy.totals(), binMs, spanMs - (count - 1) * binMs),
        finished: [...finished],
        failed: [...failed],
        liveWorkers: worker.live,
        phases: [...phases.values()].sort((a, b) => a.index - b.index).map((phase) => phaseData(phase, options.histogramBars ?? 40)),
        workers: worker.workers,
        timeline: worker.timeline,
        failures: failures.report(),
        skippedLines,
      };
    },
  };
}

/** Busy ms per bin as commands running on average; the last bin only over its part before the end (else a run would seem to stall there). */
function runningAverages(totals: Float64Array, binMs: number, lastBinMs: number): number[] {
  return [...totals].map((ms, i) => Math.round((ms / (i === totals.length - 1 ? Math.max(1, lastBinMs) : binMs)) * 100) / 100);
}

function newPhase(index: number, name: string, slowest: number): PhaseAcc {
  return {
    index,
    name,
    attempts: 0,
    outcomes: {},
    firstStartMs: Number.POSITIVE_INFINITY,
    lastStartMs: Number.NEGATIVE_INFINITY,
    lastFinishMs: Number.NEGATIVE_INFINITY,
    sketch: createDurationSketch(),
    slowest: createTopN(slowest),
  };
}

function addToPhase(phase: PhaseAcc, record: ResultRecord, startMs: number, endMs: number, durationMs: number): void {
  phase.attempts++;
  phase.outcomes[record.outcome] = (phase.outcomes[record.outcome] ?? 0) + 1;
  phase.firstStartMs = Math.min(phase.firstStartMs, startMs);
  phase.lastStartMs = Math.max(phase.lastStartMs, startMs);
  phase.lastFinishMs = Math.max(phase.lastFinishMs, endMs);
  phase.sketch.add(durationMs);
  phase.slowest.offer(durationMs, () => ({
    id: record.id,
    command: record.command.length > maxSlowCommandChars ? `${record.command.slice(0, maxSlowCommandChars)}…` : record.command,
    durationMs,
    worker: record.worker,
    attempt: record.attempt,
    outcome: record.outcome,
    log: record.log,
  }));
}

function phaseData(phase: PhaseAcc, bars: number): PhaseData {
  const { sketch } = phase;
  const seen = phase.attempts > 0;
  return {
    index: phase.index,
    name: phase.name,
    attempts: phase.attempts,
    outcomes: phase.outcomes,
    firstStartMs: seen ? phase.firstStartMs : undefined,
    lastStartMs: seen ? phase.lastStartMs : undefined,
    lastFinishMs: seen ? phase.lastFinishMs : undefined,
    durations: {
      count: sketch.count,
      minMs: sketch.minMs,
      meanMs: sketch.count === 0 ? 0 : sketch.sumMs / sketch.count,
      p50Ms: sketch.quantile(0.5),
      p90Ms: sketch.quantile(0.9),
      p99Ms: sketch.quantile(0.99),
      maxMs: sketch.maxMs,
    },
    histogram: sketch.histogram(bars),
    slowest: phase.slowest.sorted(),
  };
}
