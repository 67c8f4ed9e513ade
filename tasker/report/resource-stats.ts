import type { ResultRecord } from '../../shared/state/results.js';

/**
 * What a run's commands used, per phase (pure): distributions of CPU time, peak memory, wall time
 * and CPU per second of wall, the OOM kills, and the commands that used the most. Fed every record
 * of results.jsonl (every attempt that ran); summary.json, the printed sizes and the report read it.
 */

/** Percentiles of one measure over a phase's measured attempts. */
export interface Distribution {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** How many attempts it rests on. */
  n: number;
}

/** One of the attempts that used the most. */
export interface TopAttempt {
  id: string;
  attempt: number;
  value: number;
  /** Relative to the workdir. */
  log: string;
}

export interface PhaseResources {
  phase: string;
  /** Attempts that ran (with a start and an end). */
  attempts: number;
  cpuMs?: Distribution;
  peakRssBytes?: Distribution;
  wallMs?: Distribution;
  /** CPU time per second of wall time (1 = one core busy) of attempts that ran at least 100 ms. */
  cpuPerWall?: Distribution;
  /** The most concurrent commands per worker seen (records' `slots`). */
  slots?: number;
  /** The workers' memory limit seen, when they had one. */
  memoryLimitBytes?: number;
  oomKilled: number;
  /** The attempts that used the most memory and CPU (five each). */
  topMemory: TopAttempt[];
  topCpu: TopAttempt[];
  /** The first OOM-killed attempts (at most ten). */
  oomKills: TopAttempt[];
}

const topCount = 5;

class PhaseTally {
  attempts = 0;
  readonly cpu: number[] = [];
  readonly rss: number[] = [];
  readonly wall: number[] = [];
  readonly rate: number[] = [];
  slots = 0;
  limit: number | undefined;
  oomKilled = 0;
  readonly topMemory: TopAttempt[] = [];
  readonly topCpu: TopAttempt[] = [];
  readonly oomKills: TopAttempt[] = [];
}

/** Keeps `list` the `topCount` largest, largest first. */
function keepTop(list: TopAttempt[], entry: TopAttempt): void {
  if (list.length === topCount && list[topCount - 1]!.value >= entry.value) return;
  list.push(entry);
  list.sort((a, b) => b.value - a.value);
  if (list.length > topCount) list.pop();
}

/** The value at quantile `q` of sorted `values` (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function distributionOf(values: number[]): Distribution | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return { p50: quantile(list, 0.5), p90: quantile(list, 0.9), p99: quantile(list, 0.99), max: list[list.length - 1]!, n: list.length };
}

export interface ResourceTally {
  add(record: ResultRecord): void;
  /** Per phase, in the order first seen. */
  phases(): PhaseResources[];
}

export function createResourceTally(): ResourceTally {
  const byPhase = new Map<string, PhaseTally>();
  return {
    add(record) {
      if (record.outcome === 'dead-lettered' && record.peakRssBytes === undefined) return; // never ran to an end
      const tally = byPhase.get(record.phase) ?? new PhaseTally();
      byPhase.set(record.phase, tally);
      addRecord(tally, record);
    },
    phases: () => [...byPhase].map(([phase, tally]) => phaseResources(phase, tally)),
  };
}

function addRecord(tally: PhaseTally, record: ResultRecord): void {
  tally.attempts++;
  tally.wall.push(record.durationMs);
  const ref = { id: record.id, attempt: record.attempt, log: record.log };
  if (typeof record.cpuMs === 'number') {
    tally.cpu.push(record.cpuMs);
    keepTop(tally.topCpu, { ...ref, value: record.cpuMs });
    if (record.durationMs >= 100) tally.rate.push(record.cpuMs / record.durationMs);
  }
  if (typeof record.peakRssBytes === 'number') {
    tally.rss.push(record.peakRssBytes);
    keepTop(tally.topMemory, { ...ref, value: record.peakRssBytes });
  }
  if (record.slots !== undefined) tally.slots = Math.max(tally.slots, record.slots);
  if (record.memoryLimitBytes !== undefined) tally.limit = record.memoryLimitBytes;
  if (record.oomKilled === true) {
    tally.oomKilled++;
    if (tally.oomKills.length < 10) tally.oomKills.push({ ...ref, value: record.peakRssBytes ?? 0 });
  }
}

function phaseResources(phase: string, tally: PhaseTally): PhaseResources {
  const out: PhaseResources = { phase, attempts: tally.attempts, oomKilled: tally.oomKilled, topMemory: tally.topMemory, topCpu: tally.topCpu, oomKills: tally.oomKills };
  const cpu = distributionOf(tally.cpu);
  const rss = distributionOf(tally.rss);
  const wall = distributionOf(tally.wall);
  const rate = distributionOf(tally.rate);
  if (cpu !== undefined) out.cpuMs = cpu;
  if (rss !== undefined) out.peakRssBytes = rss;
  if (wall !== undefined) out.wallMs = wall;
  if (rate !== undefined) out.cpuPerWall = rate;
  if (tally.slots > 0) out.slots = tally.slots;
  if (tally.limit !== undefined) out.memoryLimitBytes = tally.limit;
  return out;
}
