import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isValidPoolName, defaultPool } from '../config/names.js';
import { InputError } from '../errors.js';
import { demandAnswer } from '../state/pool-demand.js';
import type { Logger } from './logger.js';
import { createCommandMetrics, type CommandMetrics, type DemandSource, type MetricsRole } from './metrics-registry.js';

/**
 * The one HTTP adapter: health and Prometheus metrics of a tasker or worker process.
 *
 *   GET /livez    200 while the process answers (liveness: restart only a hung process)
 *   GET /healthz  200 when ready, 503 otherwise (readiness: the worker is connected and consuming)
 *   GET /metrics  Prometheus text format (metrics-registry.ts)
 *   GET /demand?pool=POOL  the pool's demand as JSON, from Redis: what KEDA scales the pool's
 *                 workers on (`commands`), the same from every tasker and worker (pool-demand.ts)
 *
 * The programs never touch prom-client: they record through `CommandMetrics`, a narrow port.
 */

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
  /** Which metrics exist (the queue lag: workers only). Default: worker. */
  role?: MetricsRole;
}

/** `GET /demand?pool=POOL`: 200 with the JSON, 400 for a bad pool name, 503 without Redis (yet). */
async function demandResponse(source: DemandSource | undefined, pool: string): Promise<{ status: number; body: string }> {
  if (!isValidPoolName(pool)) return { status: 400, body: `not a pool name: ${JSON.stringify(pool.slice(0, 64))}\n` };
  if (source === undefined) return { status: 503, body: 'not connected to Redis yet\n' };
  try {
    return { status: 200, body: `${JSON.stringify(demandAnswer(await source.read(pool)))}\n` };
  } catch (error) {
    return { status: 503, body: `cannot read the demand from Redis: ${(error as Error).message}\n` };
  }
}

export async function createMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, metrics, demand } = createCommandMetrics(options.role);
  let readiness: () => Readiness = () => ({ ok: false, detail: 'starting' });

  const send = (response: ServerResponse, status: number, contentType: string, body: string): void => {
    response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
    response.end(body);
  };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const [path, query] = (request.url ?? '/').split('?');
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
    if (path === '/demand') {
      const answer = await demandResponse(demand(), new URLSearchParams(query ?? '').get('pool') ?? defaultPool);
      return send(response, answer.status, answer.status === 200 ? 'application/json' : 'text/plain', answer.body);
    }
    return send(response, 404, 'text/plain', 'not found: try /healthz, /livez, /metrics or /demand?pool=POOL\n');
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
  options.logger.info({ port, host: options.host ?? 'every interface' }, 'metrics server listening: /healthz, /livez, /metrics, /demand');

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
