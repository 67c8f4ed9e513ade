import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolDemand } from '../state/pool-demand.js';

/**
 * The Prometheus metrics of a tasker or worker process, behind the narrow ports the programs
 * record through (`CommandMetrics`). Labels: `outcome`, `pool`, `queue`, and on the per-run gauges
 * `run` and `phase`: a handful of live runs per pool, each gone from the gauges once its entry
 * leaves the demand table (no series per command or per worker). Nothing is exported empty: a
 * gauge reads its source at each scrape, and the queue-lag histogram exists on workers only.
 */

export type MetricsRole = 'tasker' | 'worker';

export interface CommandMetrics {
  /** An attempt finished with this outcome (`succeeded`, `failed`, ..., `requeued` for a worker's drain). */
  commandFinished(outcome: string, durationMs: number): void;
  /** A command message was taken from the work queue `lagMs` after it was published (worker only: a no-op on a tasker). */
  messagePickedUp(lagMs: number): void;
  /** Where the in-flight gauge reads from at each scrape (commands running, or dispatched and unfinished). */
  trackInFlight(read: () => number): void;
  /** Where the per-pool queue gauges read from at each scrape (the tasker: its run's pools; a worker: its own). */
  trackPools(read: () => Promise<readonly PoolDepth[]>): void;
  /** Where the pools' demand (the pool and per-run gauges, and `/demand`) is read from. */
  trackDemand(source: DemandSource): void;
}

/** One worker pool's queue, as the broker reports it (undefined: not declared). */
export interface PoolDepth {
  pool: string;
  queue: string;
  ready: number | undefined;
  consumers: number | undefined;
}

/** A pool's demand, read from Redis (shared/state/pool-demand.ts) at each scrape or `/demand` request. */
export interface DemandSource {
  /** The pools whose gauges this process exports: a worker's own, a tasker's run's. */
  pools(): readonly string[];
  read(pool: string): Promise<PoolDemand>;
}

/** Seconds: from sub-second stand-ins to day-long simulations. */
const durationBuckets = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600];
/** Seconds a message waited in the queue: a backlog of a big phase drains over hours. */
const lagBuckets = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600];

/** The registry and the recording functions, without a server (unit tests read `registry`). */
export function createCommandMetrics(role: MetricsRole = 'worker'): { registry: Registry; metrics: CommandMetrics; demand: () => DemandSource | undefined } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const commands = new Counter({
    name: 'tasker_commands_total',
    help: 'Command attempts finished, by outcome (a worker counts what it ran; the tasker counts every attempt of its run).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tasker_command_duration_seconds',
    help: 'Run time of finished command attempts, by outcome.',
    labelNames: ['outcome'],
    buckets: durationBuckets,
    registers: [registry],
  });
  // Observed by workers only: a tasker would export it empty.
  const lag =
    role === 'worker'
      ? new Histogram({ name: 'tasker_queue_lag_seconds', help: 'Time from publishing a command message to a worker taking it from the work queue (once per message: a message handed back counts where it is settled).', buckets: lagBuckets, registers: [registry] })
      : undefined;
  let readInFlight: () => number = () => 0;
  new Gauge({
    name: 'tasker_commands_in_flight',
    help: 'Commands running now (worker), or dispatched and not finished (tasker).',
    registers: [registry],
    collect() {
      this.set(readInFlight());
    },
  });
  // Registered with their first source: a process that has none (a local run) exports none.
  let readPools: (() => Promise<readonly PoolDepth[]>) | undefined;
  let demandSource: DemandSource | undefined;
  return {
    registry,
    demand: () => demandSource,
    metrics: {
      trackPools(read) {
        if (readPools === undefined) createPoolGauges(registry, () => readPools?.() ?? Promise.resolve([]));
        readPools = read;
      },
      commandFinished(outcome, durationMs) {
        commands.inc({ outcome });
        duration.observe({ outcome }, Math.max(0, durationMs) / 1000);
      },
      messagePickedUp(lagMs) {
        // Tasker and worker clocks differ a little: a negative lag is a skew, not time travel.
        lag?.observe(Math.max(0, lagMs) / 1000);
      },
      trackInFlight(read) {
        readInFlight = read;
      },
      trackDemand(source) {
        if (demandSource === undefined) createDemandGauges(registry, () => demandSource);
        demandSource = source;
      },
    },
  };
}

/** One read per scrape for several gauges: a reading is reused for `maxAgeMs`. */
function cached<T>(read: () => Promise<T>, maxAgeMs = 500): () => Promise<T> {
  let latest: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (latest === undefined || now - latest.at > maxAgeMs) latest = { at: now, value: read() };
    return latest.value;
  };
}

/**
 * tasker_pool_messages_ready{pool,queue} and tasker_pool_consumers{pool,queue}: a pool whose
 * queue fills with no consumer needs workers (the tasker warns of it too; an alert can as well).
 */
function createPoolGauges(registry: Registry, readPools: () => Promise<readonly PoolDepth[]>): void {
  const read = cached(() => readPools().catch((): PoolDepth[] => []));
  const gauge = (name: string, help: string, value: (pool: PoolDepth) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'queue'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const pool of await read()) {
          const current = value(pool);
          if (current !== undefined) this.set({ pool: pool.pool, queue: pool.queue }, current);
        }
      },
    });
  };
  gauge('tasker_pool_messages_ready', "Messages waiting in a worker pool's queue (a bundle counts once; a run keeps only about two bundles per slot of its share there: the backlog is tasker_pool_commands_waiting).", (pool) => pool.ready);
  gauge('tasker_pool_consumers', "Consumers of a worker pool's queue; 0 while commands wait means no worker serves the pool.", (pool) => pool.consumers);
}

/**
 * The pools' demand, from Redis: the same numbers from every tasker and worker that sees a pool
 * (aggregate with max by (pool), not sum). Pools are those of `source.pools()`.
 */
function createDemandGauges(registry: Registry, source: () => DemandSource | undefined): void {
  const read = cached(async (): Promise<PoolDemand[]> => {
    const current = source();
    if (current === undefined) return [];
    const readings = await Promise.all(current.pools().map((pool) => current.read(pool).catch(() => undefined)));
    return readings.filter((reading): reading is PoolDemand => reading !== undefined);
  });
  const gauge = (name: string, help: string, labelNames: string[], set: (gauge: Gauge, pool: PoolDemand) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const pool of await read()) set(this, pool);
      },
    });
  };
  gauge('tasker_pool_slots', "Command slots of a pool's live workers (the sum of their concurrency).", ['pool'], (g, p) => g.set({ pool: p.pool }, p.slots));
  gauge('tasker_pool_commands_waiting', "Commands of a pool's live runs not running yet: queued, or held back by the tasker under fair share.", ['pool'], (g, p) => g.set({ pool: p.pool }, p.waiting));
  gauge('tasker_run_commands', "A live run's commands in a pool: waiting (not started) or running.", ['run', 'pool', 'phase', 'state'], (g, p) => {
    for (const run of p.perRun) {
      g.set({ run: run.runId, pool: p.pool, phase: run.phase, state: 'waiting' }, run.waiting);
      g.set({ run: run.runId, pool: p.pool, phase: run.phase, state: 'running' }, run.running);
    }
  });
  gauge('tasker_run_share', "A live run's fair share of its pool's slots (may be fractional).", ['run', 'pool'], (g, p) => {
    for (const run of p.perRun) g.set({ run: run.runId, pool: p.pool }, Math.round(run.share * 100) / 100);
  });
}
