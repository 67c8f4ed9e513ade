import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { collectProblems } from '../../shared/config/config-values.js';
import { InputError } from '../../shared/errors.js';
import { readMetricsHost, readMetricsPort } from '../../shared/observe/metrics-config.js';
import { createMetricsServer, type MetricsServer } from '../../shared/observe/metrics-server.js';
import { createCommandMetrics } from '../../shared/observe/metrics-registry.js';
import { loadRunConfig } from '../../tasker/config.js';
import { loadWorkerConfig } from '../../worker/config.js';

const logger = pino({ level: 'silent' });
const servers: MetricsServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(): Promise<MetricsServer> {
  const server = await createMetricsServer({ port: 0, host: '127.0.0.1', logger });
  servers.push(server);
  return server;
}

async function get(server: MetricsServer, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

/** The value of one sample line of the Prometheus text format, e.g. `tasker_commands_total{outcome="failed"}`. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('metrics server', () => {
  it('answers /livez at once, and /healthz with the readiness it is given (503 until then)', async () => {
    const server = await start();
    expect(await get(server, '/livez')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(server, '/healthz')).toMatchObject({ status: 503, body: 'starting\n' });
    let ready = { ok: false, detail: 'not connected to RabbitMQ (reconnecting)' };
    server.setReadiness(() => ready);
    expect(await get(server, '/healthz')).toMatchObject({ status: 503, body: 'not connected to RabbitMQ (reconnecting)\n' });
    ready = { ok: true, detail: 'ok: consuming t.commands' };
    expect(await get(server, '/healthz')).toMatchObject({ status: 200, body: 'ok: consuming t.commands\n' });
    server.setReadiness(() => {
      throw new Error('boom');
    });
    expect(await get(server, '/healthz')).toMatchObject({ status: 503, body: 'health check failed: boom\n' });
    expect((await get(server, '/nope')).status).toBe(404);
  });

  it('exposes the commands by outcome, their durations, the in-flight count and the queue lag', async () => {
    const server = await start();
    let running = 3;
    server.metrics.trackInFlight(() => running);
    server.metrics.commandFinished('succeeded', 1500);
    server.metrics.commandFinished('succeeded', 200);
    server.metrics.commandFinished('failed', 70_000);
    server.metrics.messagePickedUp(2500);
    server.metrics.messagePickedUp(-40); // clock skew: counted as 0
    const first = await get(server, '/metrics');
    expect(first.status).toBe(200);
    expect(first.type).toContain('text/plain');
    const text = first.body;
    expect(sample(text, 'tasker_commands_total{outcome="succeeded"}')).toBe(2);
    expect(sample(text, 'tasker_commands_total{outcome="failed"}')).toBe(1);
    expect(sample(text, 'tasker_command_duration_seconds_count{outcome="succeeded"}')).toBe(2);
    expect(sample(text, 'tasker_command_duration_seconds_sum{outcome="succeeded"}')).toBeCloseTo(1.7);
    expect(sample(text, 'tasker_command_duration_seconds_bucket{le="60",outcome="failed"}')).toBe(0);
    expect(sample(text, 'tasker_command_duration_seconds_bucket{le="300",outcome="failed"}')).toBe(1);
    expect(sample(text, 'tasker_commands_in_flight')).toBe(3);
    expect(sample(text, 'tasker_queue_lag_seconds_count')).toBe(2);
    expect(sample(text, 'tasker_queue_lag_seconds_sum')).toBeCloseTo(2.5);
    expect(text).toContain('process_cpu_user_seconds_total');
    running = 0;
    expect(sample((await get(server, '/metrics')).body, 'tasker_commands_in_flight')).toBe(0);
  });

  it('keeps each registry apart (a tasker and a worker in one process, as in tests)', async () => {
    const a = createCommandMetrics();
    const b = createCommandMetrics();
    a.metrics.commandFinished('succeeded', 1);
    expect(sample(await a.registry.metrics(), 'tasker_commands_total{outcome="succeeded"}')).toBe(1);
    expect(sample(await b.registry.metrics(), 'tasker_commands_total{outcome="succeeded"}')).toBeUndefined();
  });

  it('refuses a port in use, saying which setting to change', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await createMetricsServer({ port, host: '127.0.0.1', logger }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).message).toBe(`metrics port ${port} is already in use; set METRICS_PORT (or --metrics-port) to a free port`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('close() is idempotent and drops keep-alive connections', async () => {
    const server = await createMetricsServer({ port: 0, host: '127.0.0.1', logger });
    await get(server, '/metrics'); // fetch keeps the connection alive
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await expect(fetch(`http://127.0.0.1:${server.port}/livez`)).rejects.toThrow();
  });
});

describe('METRICS_PORT', () => {
  const parse = (flag: string | undefined, env: Record<string, string>) => {
    const problems = collectProblems();
    const port = readMetricsPort(flag, env, problems);
    problems.done();
    return port;
  };

  it('is off unless set; the flag wins; 0 means any free port', () => {
    expect(parse(undefined, {})).toBeUndefined();
    expect(parse(undefined, { METRICS_PORT: '' })).toBeUndefined();
    expect(parse(undefined, { METRICS_PORT: '9090' })).toBe(9090);
    expect(parse('9191', { METRICS_PORT: '9090' })).toBe(9191);
    expect(parse(undefined, { METRICS_PORT: '0' })).toBe(0);
  });

  it('reports a bad value with the name the user set', () => {
    expect(() => parse(undefined, { METRICS_PORT: 'http' })).toThrow('METRICS_PORT must be a whole number, got "http"');
    expect(() => parse('70000', {})).toThrow('--metrics-port must be a port number from 0 to 65535, got 70000');
  });

  it('reaches the tasker and worker configurations', () => {
    expect(loadRunConfig(['jobs.sh'], {}, { METRICS_PORT: '9090' }, '/cwd').metricsPort).toBe(9090);
    expect(loadRunConfig(['jobs.sh'], { metricsPort: '9091' }, {}, '/cwd').metricsPort).toBe(9091);
    expect(loadRunConfig(['jobs.sh'], {}, {}, '/cwd').metricsPort).toBeUndefined();
    const worker = { AMQP_URL: 'amqp://localhost', TASKER_SIGNING_KEY: 'k'.repeat(32) };
    expect(loadWorkerConfig({}, { ...worker, METRICS_PORT: '9090' }, '/cwd').metricsPort).toBe(9090);
    expect(loadWorkerConfig({ metricsPort: '0' }, worker, '/cwd').metricsPort).toBe(0);
    expect(() => loadWorkerConfig({}, { ...worker, METRICS_PORT: '-1' }, '/cwd')).toThrow('METRICS_PORT');
  });
});

describe('METRICS_HOST', () => {
  const parse = (flag: string | undefined, env: Record<string, string>) => {
    const problems = collectProblems();
    const host = readMetricsHost(flag, env, problems);
    problems.done();
    return host;
  };

  it('is every interface unless set; the flag wins; an address or a host name', () => {
    expect(parse(undefined, {})).toBeUndefined();
    expect(parse(undefined, { METRICS_HOST: '' })).toBeUndefined();
    expect(parse(undefined, { METRICS_HOST: '127.0.0.1' })).toBe('127.0.0.1');
    expect(parse('::1', { METRICS_HOST: '0.0.0.0' })).toBe('::1');
    expect(parse(undefined, { METRICS_HOST: 'localhost' })).toBe('localhost');
    expect(() => parse(undefined, { METRICS_HOST: 'http://0.0.0.0:9090' })).toThrow('METRICS_HOST must be an address such as 127.0.0.1, ::1 or 0.0.0.0 (or a host name), got "http://0.0.0.0:9090"');
    expect(loadRunConfig(['jobs.sh'], { metricsHost: '127.0.0.1' }, {}, '/cwd').metricsHost).toBe('127.0.0.1');
    expect(loadRunConfig(['jobs.sh'], {}, {}, '/cwd').metricsHost).toBeUndefined();
    const worker = { AMQP_URL: 'amqp://localhost', TASKER_SIGNING: 'off' };
    expect(loadWorkerConfig({ metricsHost: '127.0.0.1' }, worker, '/cwd').metricsHost).toBe('127.0.0.1');
    expect(loadWorkerConfig({}, { ...worker, METRICS_HOST: '::1' }, '/cwd').metricsHost).toBe('::1');
    expect(loadWorkerConfig({}, worker, '/cwd').metricsHost).toBeUndefined();
  });

  it('bound to 127.0.0.1, the server answers there and not on the machine’s other addresses', async () => {
    const server = await start();
    expect((await get(server, '/livez')).status).toBe(200);
    const outside = Object.values(networkInterfaces())
      .flat()
      .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;
    if (outside !== undefined) await expect(fetch(`http://${outside}:${server.port}/livez`)).rejects.toThrow();
  });

  it('an address that is not this machine’s is a configuration error naming METRICS_HOST', async () => {
    const error = await createMetricsServer({ port: 0, host: '192.0.2.1', logger }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/^metrics address 192\.0\.2\.1 is not one of this machine's \(EADDRNOTAVAIL\); set METRICS_HOST \(or --metrics-host\)/);
  });
});
