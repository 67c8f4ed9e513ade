/**
 * Fixed-size summaries of a stream of attempts, for the HTML report: time bins over the run and
 * log-scale duration buckets. Their size does not grow with the number of attempts, so a million
 * attempts take as much memory as ten. Pure.
 */

/**
 * Busy time per time bin: the running-commands curve. An attempt adds its exact overlap with each
 * bin: partial bins directly, the full bins between them through a difference array (so a long
 * attempt costs two updates, not one per bin).
 */
export interface BusyBins {
  readonly fromMs: number;
  readonly binMs: number;
  readonly count: number;
  /** Adds the interval [startMs, endMs], clamped to the bins. */
  add(startMs: number, endMs: number): void;
  /** Busy milliseconds per bin. */
  totals(): Float64Array;
}

export function createBusyBins(fromMs: number, binMs: number, count: number): BusyBins {
  const partial = new Float64Array(count);
  // full[i] - full[i-1]: how many more attempts cover bin i entirely than bin i-1.
  const full = new Float64Array(count + 1);
  const toMs = fromMs + binMs * count;
  return {
    fromMs,
    binMs,
    count,
    add(startMs, endMs) {
      const start = Math.min(Math.max(startMs, fromMs), toMs);
      const end = Math.min(Math.max(endMs, start), toMs);
      if (end <= start) return;
      const first = Math.min(count - 1, Math.floor((start - fromMs) / binMs));
      const last = Math.min(count - 1, Math.floor((end - fromMs) / binMs));
      if (first === last) {
        partial[first]! += end - start;
        return;
      }
      partial[first]! += fromMs + (first + 1) * binMs - start;
      partial[last]! += end - (fromMs + last * binMs);
      if (last > first + 1) {
        full[first + 1]! += 1;
        full[last]! -= 1;
      }
    },
    totals() {
      const out = new Float64Array(count);
      let covering = 0;
      for (let i = 0; i < count; i++) {
        covering += full[i]!;
        out[i] = partial[i]! + covering * binMs;
      }
      return out;
    },
  };
}

/** The bin a time falls in, clamped to [0, count). */
export function binOf(atMs: number, fromMs: number, binMs: number, count: number): number {
  return Math.min(count - 1, Math.max(0, Math.floor((atMs - fromMs) / binMs)));
}

/** Counts per time bin (finished attempts, failures). */
export function countBins(count: number): Uint32Array {
  return new Uint32Array(count);
}

/**
 * A bin width for at most `count` bins over [fromMs, toMs]: a round number (50, 100, 200, 500 ms,
 * whole seconds, minutes, hours), so the axis reads well.
 */
export function niceBinMs(fromMs: number, toMs: number, count: number): number {
  const raw = Math.max(1, (toMs - fromMs) / count);
  // Below 50 ms a bin shows the jitter of starting processes, not the run.
  const steps = [50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];
  for (const step of steps) if (step >= raw) return step;
  return Math.ceil(raw / 3_600_000) * 3_600_000;
}

/**
 * Durations on a log scale: bucket i holds (γ^(i-1), γ^i] ms, γ = 1.05, so any quantile read from
 * it is within 2.5 % of the true value (the idea of DDSketch, with fixed buckets). Bucket 0 holds
 * 0–1 ms. 430 buckets reach past 11 days; longer durations land in the last one (max stays exact).
 */
export const durationGamma = 1.05;
const bucketCount = 430;
const logGamma = Math.log(durationGamma);

export interface DurationSketch {
  add(durationMs: number): void;
  readonly count: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly sumMs: number;
  /** The q-quantile (0 ≤ q ≤ 1), within 2.5 %; 0 when empty. */
  quantile(q: number): number;
  /** Non-empty range of buckets merged into at most `bars` bars: [lower edge ms, upper edge ms, count]. */
  histogram(bars: number): { fromMs: number; toMs: number; count: number }[];
}

function bucketOf(durationMs: number): number {
  if (durationMs <= 1) return 0;
  return Math.min(bucketCount - 1, Math.ceil(Math.log(durationMs) / logGamma));
}

function upperEdge(bucket: number): number {
  return bucket === 0 ? 1 : durationGamma ** bucket;
}

function lowerEdge(bucket: number): number {
  return bucket === 0 ? 0 : durationGamma ** (bucket - 1);
}

export function createDurationSketch(): DurationSketch {
  const buckets = new Uint32Array(bucketCount);
  let count = 0;
  let minMs = Number.POSITIVE_INFINITY;
  let maxMs = 0;
  let sumMs = 0;
  return {
    add(durationMs) {
      const d = Math.max(0, durationMs);
      buckets[bucketOf(d)]!++;
      count++;
      sumMs += d;
      if (d < minMs) minMs = d;
      if (d > maxMs) maxMs = d;
    },
    get count() {
      return count;
    },
    get minMs() {
      return count === 0 ? 0 : minMs;
    },
    get maxMs() {
      return maxMs;
    },
    get sumMs() {
      return sumMs;
    },
    quantile(q) {
      if (count === 0) return 0;
      const rank = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (let i = 0; i < bucketCount; i++) {
        seen += buckets[i]!;
        if (seen >= rank) {
          const middle = i === 0 ? 0.5 : (2 * upperEdge(i)) / (1 + durationGamma);
          return Math.min(maxMs, Math.max(minMs, middle));
        }
      }
      return maxMs;
    },
    histogram(bars) {
      if (count === 0) return [];
      const first = bucketOf(minMs);
      const last = bucketOf(maxMs);
      const per = Math.max(1, Math.ceil((last - first + 1) / bars));
      const out: { fromMs: number; toMs: number; count: number }[] = [];
      for (let start = first; start <= last; start += per) {
        const end = Math.min(last, start + per - 1);
        let n = 0;
        for (let i = start; i <= end; i++) n += buckets[i]!;
        out.push({ fromMs: lowerEdge(start), toMs: upperEdge(end), count: n });
      }
      return out;
    },
  };
}

/** Keeps the `limit` largest items seen (a min-heap by `key`), returned largest first. */
export interface TopN<T> {
  offer(key: number, make: () => T): void;
  sorted(): T[];
}

export function createTopN<T>(limit: number): TopN<T> {
  const heap: { key: number; item: T }[] = [];
  const swap = (a: number, b: number): void => {
    [heap[a], heap[b]] = [heap[b]!, heap[a]!];
  };
  const down = (start: number): void => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && heap[l]!.key < heap[smallest]!.key) smallest = l;
      if (r < heap.length && heap[r]!.key < heap[smallest]!.key) smallest = r;
      if (smallest === i) return;
      swap(i, smallest);
      i = smallest;
    }
  };
  return {
    offer(key, make) {
      if (heap.length < limit) {
        heap.push({ key, item: make() });
        for (let i = heap.length - 1; i > 0; ) {
          const parent = (i - 1) >> 1;
          if (heap[parent]!.key <= heap[i]!.key) break;
          swap(i, parent);
          i = parent;
        }
      } else if (limit > 0 && key > heap[0]!.key) {
        heap[0] = { key, item: make() };
        down(0);
      }
    },
    sorted() {
      return [...heap].sort((a, b) => b.key - a.key).map((entry) => entry.item);
    },
  };
}
