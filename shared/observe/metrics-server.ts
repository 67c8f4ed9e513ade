import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InputError } from '../errors.js';
import type { Logger } from './logger.js';

/**
 * The one HTTP adapter: health and Prometheus metrics of a tasker or worker process.
 *
 *   GET /livez    200 while the process answers (liveness: restart only a hung process)
 *   GET /healthz  200 when ready, 503 otherwise (readiness: the worker is connected and consuming)
 *   GET /metrics  Prometheus text format
 *
 * The programs never touch prom-client: they record through `CommandMetrics`, a narrow port.
 */

export interface CommandMetrics {
  /** An attempt finished with this outcome (`succeeded`, `failed`, ..., `requeued` for a worker's drain). */
  commandFinished(outcome: string, durationMs: number): void;
  /** A command message was taken from the work queue `lagMs` after it was published. */
  messagePickedUp(lagMs: number): void;
  /** Where the in-flight gauge reads from at each scrape (commands running, or dispatched and unfinished). */
  trackInFlight(read: () => number): void;
  /** Where the per-pool queue gauges read from at each scrape (the tasker: its run's pools). */
  trackPools(read: () => Promise<readonly PoolDepth[]>): void;
}

/** One worker pool's queue, as the broker reports it (undefined: not declared). */
export interface PoolDepth {
  pool: string;
  queue: string;
  ready: number | undefined;
  consumers: number | undefined;
}

export interface Readiness {
  ok: boolean;
  /** Why not ready (or "ok"): shown in the /healthz body and in `kubectl describe pod`. */
  detail: string;
}

export interface MetricsServer {
  /** The bound port (the configured one, or the one picked for port 0). */
  port: number;
  metrics: CommandMetrics;
  /** What /healthz answers from now on. Until set: 503 "starting". */
  setReadiness(check: () => Readiness): void;
  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  /** METRICS_HOST. Default: every interface (probes and scrapes come from outside the pod). */
  host?: string | undefined;
  logger: Logger;
}

/** Seconds: from sub-second stand-ins to day-long simulations. */
const durationBuckets = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600];
/** Seconds a message waited in the queue: a backlog of a big phase drains over hours. */
const lagBuckets = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600];

/** The registry and the recording functions, without a server (unit tests read `registry`). */
export function createCommandMetrics(): { registry: Registry; metrics: CommandMetrics } {
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
  const lag = new Histogram({
    name: 'tasker_queue_lag_seconds',
    help: 'Time from publishing a command message to a worker taking it from the work queue (worker only).',
    buckets: lagBuckets,
    registers: [registry],
  });
  let readInFlight: () => number = () => 0;
  new Gauge({
    name: 'tasker_commands_in_flight',
    help: 'Commands running now (worker), or dispatched and not finished (tasker).',
    registers: [registry],
    collect() {
      this.set(readInFlight());
    },
  });
  const trackPools = createPoolGauges(registry);
  return {
    registry,
    metrics: {
      trackPools,
      commandFinished(outcome, durationMs) {
        commands.inc({ outcome });
        duration.observe({ outcome }, Math.max(0, durationMs) / 1000);
      },
      messagePickedUp(lagMs) {
        // Tasker and worker clocks differ a little: a negative lag is a skew, not time travel.
        lag.observe(Math.max(0, lagMs) / 1000);
      },
      trackInFlight(read) {
        readInFlight = read;
      },
    },
  };
}

/**
 * tasker_pool_messages_ready{pool,queue} and tasker_pool_consumers{pool,queue}: a pool whose
 * queue fills with no consumer needs workers (the tasker warns of it too; an alert can as well).
 */
function createPoolGauges(registry: Registry): CommandMetrics['trackPools'] {
  let readPools: () => Promise<readonly PoolDepth[]> = () => Promise.resolve([]);
  let latest: Promise<readonly PoolDepth[]> | undefined;
  // One broker round per scrape for both gauges: the first to collect reads, the second reuses it.
  const read = (): Promise<readonly PoolDepth[]> => (latest ??= readPools().finally(() => setImmediate(() => (latest = undefined))));
  const gauge = (name: string, help: string, value: (pool: PoolDepth) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'queue'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const pool of await read().catch(() => [])) {
          const current = value(pool);
          if (current !== undefined) this.set({ pool: pool.pool, queue: pool.queue }, current);
        }
      },
    });
  };
  gauge('tasker_pool_messages_ready', "Messages waiting in a worker pool's queue (a bundle counts once) (tasker only).", (pool) => pool.ready);
  gauge('tasker_pool_consumers', "Consumers of a worker pool's queue; 0 while commands wait means no worker serves the pool (tasker only).", (pool) => pool.consumers);
  return (reader) => {
    readPools = reader;
  };
}

export async function createMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, metrics } = createCommandMetrics();
  let readiness: () => Readiness = () => ({ ok: false, detail: 'starting' });

  const send = (response: ServerResponse, status: number, contentType: string, body: string): void => {
    response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
    response.end(body);
  };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'text/plain', 'method not allowed\n');
    if (path === '/livez') return send(response, 200, 'text/plain', 'ok\n');
    if (path === '/healthz') {
      let state: Readiness;
      try {
        state = readiness();
      } catch (error) {
        state = { ok: false, detail: `health check failed: ${(error as Error).message}` };
      }
      return send(response, state.ok ? 200 : 503, 'text/plain', `${state.detail}\n`);
    }
    if (path === '/metrics') return send(response, 200, registry.contentType, await registry.metrics());
    return send(response, 404, 'text/plain', 'not found: try /healthz, /livez or /metrics\n');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.logger.warn({ err: error }, 'metrics request failed');
      if (!response.headersSent) send(response, 500, 'text/plain', 'internal error\n');
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      if (options.host !== undefined && (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN')) {
        reject(new InputError('config', `metrics address ${options.host} is not one of this machine's (${error.code}); set METRICS_HOST (or --metrics-host) to one, e.g. 127.0.0.1, or leave it unset for every interface`, { cause: error }));
        return;
      }
      const why = error.code === 'EADDRINUSE' ? 'is already in use' : error.code === 'EACCES' ? 'needs privileges (use a port above 1023)' : `cannot be opened: ${error.message}`;
      reject(new InputError('config', `metrics port ${options.port} ${why}; set METRICS_PORT (or --metrics-port) to a free port`, { cause: error }));
    };
    server.once('error', onError);
    server.listen({ port: options.port, host: options.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error: Error) => options.logger.warn({ err: error }, 'metrics server error'));
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ port, host: options.host ?? 'every interface' }, 'metrics server listening: /healthz, /livez, /metrics');

  let closing: Promise<void> | undefined;
  return {
    port,
    metrics,
    setReadiness(check) {
      readiness = check;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper's keep-alive connection must not hold the process open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
