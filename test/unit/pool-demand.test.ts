import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunDemand } from '../../shared/state/fair-share.js';
import { demandAnswer, poolDemand } from '../../shared/state/pool-demand.js';
import type { WorkerInfo } from '../../shared/state/run-store.js';
import { createCommandMetrics } from '../../shared/observe/metrics-registry.js';
import { createMetricsServer, type MetricsServer } from '../../shared/observe/metrics-server.js';

function worker(id: string, concurrency: number, pools: string[] | undefined, running: string[]): WorkerInfo {
  return {
    id,
    host: 'h',
    pid: 1,
    concurrency,
    ...(pools === undefined ? {} : { pools }),
    startedAt: '2026-01-01T00:00:00Z',
    running: running.map((runId, index) => ({ runId, id: `f1-L${index + 1}`, attempt: 1, command: 'sleep 1', since: '2026-01-01T00:00:00Z' })),
  };
}

function entry(runId: string, demand: number, priority: RunDemand['priority'] = 'normal'): RunDemand {
  return { runId, priority, demand, inFlight: Math.min(demand, 8), phase: 'sims', at: Date.now() };
}

const workers = [worker('w1', 4, undefined, ['a', 'a', 'b']), worker('w2', 4, ['default', 'gpu'], ['b', 'a']), worker('w3', 2, ['gpu'], ['c'])];

describe('pool demand', () => {
  it('sums what the live runs could run now, split into running (the workers say) and waiting', () => {
    const demand = poolDemand('default', [entry('a', 300), entry('b', 200)], workers);
    expect(demandAnswer(demand)).toEqual({ pool: 'default', slots: 8, commands: 500, waiting: 495, running: 5, runs: 2 });
    expect(demand.perRun.map((run) => [run.runId, run.waiting, run.running, run.share])).toEqual([
      ['a', 297, 3, 4],
      ['b', 198, 2, 4],
    ]);
  });

  it('counts a worker of several pools in each, and a run never runs more than its demand', () => {
    const demand = poolDemand('gpu', [entry('c', 0), entry('a', 1, 'high')], workers);
    expect(demand.slots).toBe(6);
    expect(demand.perRun.find((run) => run.runId === 'c')).toMatchObject({ commands: 0, running: 0, waiting: 0 });
    expect(demand.perRun.find((run) => run.runId === 'a')).toMatchObject({ commands: 1, running: 1, waiting: 0, share: 1 });
  });

  it('is zero for a pool without runs or workers', () => {
    expect(demandAnswer(poolDemand('big', [], workers))).toEqual({ pool: 'big', slots: 0, commands: 0, waiting: 0, running: 0, runs: 0 });
  });
});

describe('demand gauges and /demand', () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });
  const source = { pools: () => ['default'], read: (pool: string) => Promise.resolve(poolDemand(pool, [entry('a', 300), entry('b', 200)], workers)) };

  it('exports the pool and per-run gauges once there is a source, and no empty metric before', async () => {
    const { registry, metrics } = createCommandMetrics('tasker');
    const before = await registry.metrics();
    for (const name of ['tasker_queue_lag_seconds', 'tasker_pool_slots', 'tasker_pool_messages_ready', 'tasker_run_commands']) expect(before).not.toContain(name);
    metrics.trackDemand(source);
    const text = await registry.metrics();
    expect(text).toContain('tasker_pool_slots{pool="default"} 8');
    expect(text).toContain('tasker_pool_commands_waiting{pool="default"} 495');
    expect(text).toContain('tasker_run_commands{run="a",pool="default",phase="sims",state="waiting"} 297');
    expect(text).toContain('tasker_run_commands{run="b",pool="default",phase="sims",state="running"} 2');
    expect(text).toContain('tasker_run_share{run="a",pool="default"} 4');
    expect(await createCommandMetrics('worker').registry.metrics()).toContain('tasker_queue_lag_seconds');
  });

  it('answers /demand?pool=POOL with the JSON, 400 for a bad pool, 503 without a source', async () => {
    const server = await createMetricsServer({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    servers.push(server);
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    expect((await get('/demand')).status).toBe(503);
    server.metrics.trackDemand(source);
    expect(JSON.parse((await get('/demand?pool=default')).body)).toEqual({ pool: 'default', slots: 8, commands: 500, waiting: 495, running: 5, runs: 2 });
    expect(JSON.parse((await get('/demand')).body)).toMatchObject({ pool: 'default', commands: 500 });
    expect((await get('/demand?pool=Bad..Name')).status).toBe(400);
  });
});
