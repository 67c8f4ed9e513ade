import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readResults, repoRoot, type ResultLine } from '../helpers/cli.js';
import { declareRunQueue } from '../../shared/broker/amqp-topology.js';
import { names } from '../../shared/config/names.js';
import { freePort, queueCounts, readyWorker, spawnTasker, useTestNamespace, waitFor, watchOutput, withChannel, type Proc } from '../helpers/distributed.js';

/**
 * Worker pools end to end: the built tasker and workers started with --pool, against the real
 * RabbitMQ and Redis, each test in its own namespace. Which worker ran an attempt is in
 * results.jsonl (`worker`: host-pid), so each phase's pool is checked against the pids of the
 * workers started for it.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-pools-');

function jobs(name: string, lines: string[]): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Starts workers serving `pools` (none: the default pool); returns their worker ids. */
async function workers(count: number, pools: string[] | undefined, args: string[] = []): Promise<string[]> {
  for (const pool of pools ?? []) if (pool !== 'default' && !ctx.pools.includes(pool)) ctx.pools.push(pool);
  const poolArgs = pools === undefined ? [] : ['--pool', pools.join(',')];
  const started = await Promise.all(Array.from({ length: count }, () => readyWorker(ctx.env, ['--workdir', ctx.dir, ...poolArgs, ...args])));
  ctx.procs.push(...started.map((w) => w.proc));
  return started.map((w) => `${hostname()}-${w.proc.pid}`);
}

function tasker(runId: string, args: string[], pools: string[] = []): Proc {
  ctx.runIds.push(runId);
  for (const pool of pools) if (!ctx.pools.includes(pool)) ctx.pools.push(pool);
  const proc = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--progress-interval', '500ms', ...args]);
  ctx.procs.push(proc);
  return proc;
}

function workersOf(records: readonly ResultLine[], phase: string): Set<string> {
  return new Set(records.filter((record) => record.phase === phase).map((record) => record.worker));
}

function isSubset(inner: Set<string>, outer: readonly string[]): boolean {
  return [...inner].every((id) => outer.includes(id));
}

describe('worker pools', () => {
  it("runs each workers phase only on its pool's workers", async () => {
    const standard = await workers(2, undefined, ['--concurrency', '2']);
    const highmem = await workers(2, ['highmem'], ['--concurrency', '2']);
    const lines = ['# phase: prep (tasker)', 'bash ev.sh 0', '# phase: sims (pool: highmem)'];
    for (let i = 0; i < 12; i++) lines.push(`bash ev.sh 0.0${(i % 5) + 1}`);
    lines.push('# phase: report');
    for (let i = 0; i < 8; i++) lines.push('bash ev.sh 0');
    const result = await tasker('two-pools', [jobs('jobs.sh', lines)], ['highmem']);
    expect(result.exitCode, result.all).toBe(0);

    const records = readResults(ctx.dir, 'two-pools');
    expect(records.filter((r) => r.outcome === 'succeeded')).toHaveLength(21);
    const sims = workersOf(records, 'sims');
    const report = workersOf(records, 'report');
    expect(sims.size).toBeGreaterThan(0);
    expect(isSubset(sims, highmem), `sims ran on ${[...sims].join(', ')}; highmem workers: ${highmem.join(', ')}`).toBe(true);
    expect(isSubset(report, standard), `report ran on ${[...report].join(', ')}; default workers: ${standard.join(', ')}`).toBe(true);
    expect(result.all).toMatch(/"pool":"highmem".*phase started|phase started.*"pool":"highmem"/);
    expect(result.stdout).toMatch(/ sims +workers \(highmem\) +succeeded /);
    expect(result.stdout).toMatch(/ report +workers +succeeded /);
    // Both pool queues exist (declared by the tasker and the workers) and are empty.
    expect((await queueCounts(services.amqpUrl, `${ctx.ns}.pool.highmem.commands`))?.messageCount).toBe(0);
    expect((await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount).toBe(0);
  });

  it('warns, naming the pool and its queue, while no worker serves it; status shows it; the run completes once one starts', async () => {
    await workers(1, undefined);
    // The gpu commands last long enough for the tasker to see the new worker consume before they end.
    const lines = ['# phase: warmup', 'bash ev.sh 0', '# phase: render (pool: gpu)', 'bash ev.sh 1.5', 'bash ev.sh 1.5'];
    const port = await freePort();
    const run = tasker('no-gpu', ['--stall-warning', '500ms', '--metrics-port', String(port), jobs('jobs.sh', lines)], ['gpu']);
    const out = watchOutput(run);
    const queue = `${ctx.ns}.pool.gpu.commands`;
    await waitFor('a warning naming the pool and its queue', () => out.text().includes(`no worker of pool gpu is consuming ${queue}`), 20_000);
    // Said at the phase's start already, from the heartbeats: no worker of the pool is up.
    expect(out.text()).toContain(`no worker of pool gpu is up yet: the phase's commands wait in ${queue}`);
    expect(out.text()).not.toContain('no worker of pool default is up yet');
    // The progress line carries it too, and the commands wait in the pool's queue (the tasker declared it).
    await waitFor('a progress line with the warning', () => /progress [^\n]*\| no worker of pool gpu/.test(out.text()), 10_000);
    expect((await queueCounts(services.amqpUrl, queue))?.consumerCount).toBe(0);
    const status = await spawnTasker(ctx.env, ['status', 'no-gpu']);
    expect(status.exitCode, status.all).toBe(0);
    expect(status.stdout).toContain('(pool gpu)');
    expect(status.stdout).toContain(`warning: no worker of pool gpu is consuming ${queue}`);
    // The work queue line is the running phase's: its pool's queue, where its commands wait; in messages, under Queues.
    expect(status.stdout).toMatch(new RegExp(`\nQueues \\(in messages: a bundle message carries several commands\\):\n {2}work queue ${queue.replace(/\./g, '\\.')}: [1-9]\\d* ready \\(of every run of the pool\\), 0 consumers`));
    expect(status.stdout).toMatch(new RegExp(`gpu +no worker[^\n]*\n +queue ${queue.replace(/\./g, '\\.')}: \\d+ messages? ready \\(a bundle message carries several commands\\), 0 consumers`));

    // The tasker's /metrics has the pool's queue: messages waiting, no consumer.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain(`tasker_pool_consumers{pool="gpu",queue="${queue}"} 0`);
    expect(metrics).toMatch(new RegExp(`tasker_pool_messages_ready\\{pool="gpu",queue="${queue.replace(/\./g, '\\.')}"\\} [12]\n`));
    expect(metrics).toContain(`tasker_pool_consumers{pool="default",queue="${ctx.ns}.commands"} 1`);

    const gpu = await workers(1, ['gpu']);
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toContain(`a worker of pool gpu is consuming ${queue} again`);
    expect(isSubset(workersOf(readResults(ctx.dir, 'no-gpu'), 'render'), gpu)).toBe(true);
  });

  it('a worker serving two pools runs the phases of both', async () => {
    const both = await workers(1, ['default', 'highmem'], ['--concurrency', '2']);
    const lines = ['# phase: a', 'bash ev.sh 0', 'bash ev.sh 0', '# phase: b (pool: highmem)', 'bash ev.sh 0', 'bash ev.sh 0', '# phase: c', 'bash ev.sh 0'];
    const result = await tasker('both', [jobs('jobs.sh', lines)], ['highmem']);
    expect(result.exitCode, result.all).toBe(0);
    const records = readResults(ctx.dir, 'both');
    expect(records.filter((r) => r.outcome === 'succeeded')).toHaveLength(5);
    expect(new Set(records.map((r) => r.worker))).toEqual(new Set(both));
    const status = await spawnTasker(ctx.env, ['status']);
    expect(status.stdout).toMatch(new RegExp(`concurrency 2, pools default,highmem`));
    // 1 consumer, or 2 while its lookahead holds a message ahead (README, Performance notes).
    expect(status.stdout).toMatch(/highmem +1 worker .*\n +queue \S+pool\.highmem\.commands: 0 messages ready \(a bundle message carries several commands\), (1 consumer|2 consumers)/);
  });

  it('routes the commands of a run id with dots (a topic routing key of several words) to both kinds of pool', async () => {
    await workers(1, ['default', 'highmem']);
    const lines = ['# phase: a', 'bash ev.sh 0', '# phase: b (pool: highmem)', 'bash ev.sh 0'];
    const result = await tasker('release.v1.2', [jobs('dotted.sh', lines)], ['highmem']);
    expect(result.exitCode, result.all).toBe(0);
    expect(readResults(ctx.dir, 'release.v1.2').filter((r) => r.outcome === 'succeeded')).toHaveLength(2);
  });

  it("routes a pool's commands through the exchange to its queue, and its dead letters to the dead queue and the run's queue", async () => {
    await workers(1, ['gpu']);
    ctx.runIds.push('dl');
    const ns = names(ctx.ns);
    await withChannel(services.amqpUrl, async (channel) => {
      await declareRunQueue(channel, ns, 'dl');
      // Valid JSON, not a valid command: the gpu worker dead-letters it, never runs it.
      channel.publish(ns.exchange, ns.poolRoutingKey('gpu', 'dl'), Buffer.from(JSON.stringify({ v: 1, kind: 'command', runId: 'dl' })), { persistent: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    await waitFor('the dead letter in the dead queue', async () => (await queueCounts(services.amqpUrl, ns.deadQueue))?.messageCount === 1);
    await waitFor("the dead letter in the run's queue", async () => (await queueCounts(services.amqpUrl, ns.runQueue('dl')))?.messageCount === 1);
    // The default pool's queue never saw it.
    expect((await queueCounts(services.amqpUrl, ns.workQueue))?.messageCount ?? 0).toBe(0);
  });

  it('runs the makita example with its simulations on a pool of their own (--split makita --pool simulate=sims)', async () => {
    const standard = await workers(1, undefined, ['--concurrency', '2']);
    const sims = await workers(2, ['sims'], ['--concurrency', '2']);
    const example = join(repoRoot, 'examples', 'makita');
    const args = ['--split', 'makita', '--pool', 'simulate=sims', '--stage', join(example, 'data'), '--stage', join(example, 'bin'), join(example, 'jobs.sh')];
    const result = await tasker('makita', args, ['sims']);
    expect(result.exitCode, result.all).toBe(0);
    const records = readResults(ctx.dir, 'makita');
    expect(workersOf(records, 'simulate').size).toBeGreaterThan(0);
    expect(isSubset(workersOf(records, 'simulate'), sims)).toBe(true);
    expect(isSubset(workersOf(records, 'aggregate'), standard)).toBe(true);
  });

  it('a local run ignores the pools, saying so once', async () => {
    const example = join(repoRoot, 'examples', 'makita');
    const args = ['run', '--split', 'makita', '--pool', 'simulate=sims', '--workdir', join(ctx.dir, 'local'), '--stage', join(example, 'data'), '--stage', join(example, 'bin'), join(example, 'jobs.sh')];
    const result = await spawnTasker({ ...ctx.env, AMQP_URL: '' }, args);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all.match(/worker pools are ignored/g)).toHaveLength(1);
    expect(result.all).toContain('worker pools are ignored (sims)');
  });

  it('tasker plan shows each phase\'s pool, in text and JSON', async () => {
    const file = jobs('plan.sh', ['# phase: prep (tasker)', 'true', '# phase: sims (pool: highmem)', 'true', '# phase: report', 'true']);
    const text = await spawnTasker(ctx.env, ['plan', '--pool', 'report=gpu', file]);
    expect(text.exitCode, text.all).toBe(0);
    expect(text.stdout).toContain('Phase 2 "sims": 1 command, run by the workers of pool highmem, in parallel');
    expect(text.stdout).toContain('Phase 3 "report": 1 command, run by the workers of pool gpu, in parallel');
    const json = JSON.parse((await spawnTasker(ctx.env, ['plan', '--json', '--pool', 'report=gpu', file])).stdout) as { phases: { name: string; pool: string | null }[] };
    expect(json.phases.map((p) => [p.name, p.pool])).toEqual([
      ['prep', null],
      ['sims', 'highmem'],
      ['report', 'gpu'],
    ]);
  });
});
