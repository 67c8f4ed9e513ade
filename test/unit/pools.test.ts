import { describe, expect, it } from 'vitest';
import { InputError, JobsFileError } from '../../shared/errors.js';
import { isValidPoolName, names } from '../../shared/config/names.js';
import { createCommandMetrics } from '../../shared/observe/metrics-registry.js';
import { poolDemand } from '../../shared/state/pool-demand.js';
import type { WorkerInfo } from '../../shared/state/run-store.js';
import { loadRunConfig } from '../../tasker/config.js';
import { assignPools, parsePoolAssignments, poolsOf, withDefaultPools } from '../../tasker/jobs/phase-pools.js';
import { parseMarker, planPhases, type FileScan, type PhaseSpec } from '../../tasker/jobs/plan.js';
import { formatPools, poolStatus, poolsToShow } from '../../tasker/report/pool-status.js';
import { loadWorkerConfig } from '../../worker/config.js';

/** Worker pools: naming, markers, --pool, the worker's --pool, and the status lines. */

function phase(name: string, runsOn: PhaseSpec['runsOn'], pool = 'default'): PhaseSpec {
  return { index: 1, name, runsOn, pool, fileIndex: 0, selector: { kind: 'lines', fromLine: 1, toLine: 10 }, commandCount: 1 };
}

function makitaScan(): FileScan {
  return { index: 0, path: 'jobs.sh', sha256: '', commandCount: 5, markers: [], makita: { firstSimulate: 2, lastSimulate: 3, part1: 1, part2: 2, part3: 2 } };
}

const workerEnv = { AMQP_URL: 'amqp://127.0.0.1', TASKER_SIGNING_KEY: 'k'.repeat(32) };

/** AMQP topic matching: `*` is one word, `#` zero or more. */
function topicMatches(pattern: readonly string[], words: readonly string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') return words.some((_, i) => topicMatches(rest, words.slice(i))) || topicMatches(rest, []);
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && topicMatches(rest, words.slice(1));
}

describe('pool names and queues', () => {
  it('accepts DNS labels only', () => {
    for (const good of ['default', 'gpu', 'high-mem', 'a', 'a1', 'x'.repeat(32)]) expect(isValidPoolName(good), good).toBe(true);
    for (const bad of ['', 'GPU', '-a', 'a-', 'a.b', 'a_b', 'a b', 'x'.repeat(33), '*', '#']) expect(isValidPoolName(bad), bad).toBe(false);
  });

  it('keeps the default pool on NS.commands and its key, and gives another pool a queue and key of its own', () => {
    const ns = names('tasker');
    expect(ns.poolQueue('default')).toBe('tasker.commands');
    expect(ns.poolQueue('default')).toBe(ns.workQueue);
    expect(ns.poolRoutingKey('default', 'r1')).toBe('run.r1');
    expect(ns.poolBinding('default')).toBe('run.#');
    expect(ns.poolQueue('highmem')).toBe('tasker.pool.highmem.commands');
    expect(ns.poolRoutingKey('highmem', 'r1')).toBe('pool.highmem.run.r1');
    expect(ns.poolBinding('highmem')).toBe('pool.highmem.#');
  });

  it("routes a pool's keys to its queue only (topic matching, as RabbitMQ does it)", () => {
    const ns = names('t');
    const matches = (binding: string, key: string): boolean => topicMatches(binding.split('.'), key.split('.'));
    for (const pool of ['default', 'gpu', 'highmem']) {
      for (const other of ['default', 'gpu', 'highmem']) {
        expect(matches(ns.poolBinding(pool), ns.poolRoutingKey(other, 'run-1')), `${other} -> ${pool}`).toBe(pool === other);
      }
    }
  });
});

describe('phase markers with a pool', () => {
  it('reads (pool: NAME)', () => {
    expect(parseMarker('j', 1, '# phase: simulate (pool: highmem)')).toEqual({ name: 'simulate', runsOn: 'workers', pool: 'highmem' });
    expect(parseMarker('j', 1, '#phase:sim(POOL:gpu-2)')).toEqual({ name: 'sim', runsOn: 'workers', pool: 'gpu-2' });
    expect(parseMarker('j', 1, '# phase: sim')).toEqual({ name: 'sim', runsOn: 'workers', pool: 'default' });
  });

  it('refuses a bad pool name, naming file and line', () => {
    expect(() => parseMarker('jobs.sh', 7, '# phase: sim (pool: High_Mem)')).toThrow(JobsFileError);
    expect(() => parseMarker('jobs.sh', 7, '# phase: sim (pool: High_Mem)')).toThrow(/^jobs\.sh:7: .*pool "High_Mem".*lowercase/);
    expect(() => parseMarker('jobs.sh', 7, '# phase: sim (pool:)')).toThrow(/jobs\.sh:7/);
  });

  it('gives the planned phase its marker pool', () => {
    const scan: FileScan = {
      index: 0,
      path: 'jobs.sh',
      sha256: '',
      commandCount: 3,
      markers: [
        { line: 1, name: 'prep', runsOn: 'tasker', pool: 'default', commandsBefore: 0 },
        { line: 3, name: 'sim', runsOn: 'workers', pool: 'highmem', commandsBefore: 1 },
      ],
    };
    expect(planPhases([scan], undefined).map((p) => [p.name, p.runsOn, p.pool])).toEqual([
      ['prep', 'tasker', 'default'],
      ['sim', 'workers', 'highmem'],
    ]);
  });
});

describe('--pool PHASE=POOL', () => {
  it('parses, and reports every bad value', () => {
    expect(parsePoolAssignments(['simulate=gpu', 'a=b=c'])).toEqual({ assignments: [{ phase: 'simulate', pool: 'gpu' }, { phase: 'a=b', pool: 'c' }], problems: [] });
    const { problems } = parsePoolAssignments(['simulate', '=gpu', 'simulate=GPU']);
    expect(problems).toHaveLength(3);
    expect(problems[2]).toMatch(/"GPU"/);
  });

  it("sets a makita phase's pool, and overrides a marker's", () => {
    const phases = assignPools(planPhases([makitaScan()], 'makita'), [{ phase: 'simulate', pool: 'gpu' }]);
    expect(phases.map((p) => [p.name, p.pool])).toEqual([
      ['setup', 'default'],
      ['simulate', 'gpu'],
      ['aggregate', 'default'],
    ]);
    expect(assignPools([phase('sim', 'workers', 'highmem')], [{ phase: 'sim', pool: 'gpu' }])[0]!.pool).toBe('gpu');
    expect(poolsOf(phases)).toEqual(['gpu', 'default']);
  });

  it('is an input error when it names no phase, or a tasker phase', () => {
    const phases = planPhases([makitaScan()], 'makita');
    expect(() => assignPools(phases, [{ phase: 'simulation', pool: 'gpu' }])).toThrow(InputError);
    expect(() => assignPools(phases, [{ phase: 'simulation', pool: 'gpu' }])).toThrow(/no phase "simulation" \(its phases: setup, simulate, aggregate\)/);
    expect(() => assignPools(phases, [{ phase: 'setup', pool: 'gpu' }])).toThrow(/run by the tasker/);
  });

  it('is checked with the rest of the configuration (exit 2)', () => {
    expect(loadRunConfig(['j'], { pool: ['sim=gpu'] }, {}, '/').pools).toEqual([{ phase: 'sim', pool: 'gpu' }]);
    expect(loadRunConfig(['j'], {}, {}, '/').pools).toEqual([]);
    expect(() => loadRunConfig(['j'], { pool: ['sim=Bad.Pool'] }, {}, '/')).toThrow(/--pool sim=Bad\.Pool/);
  });

  it('reads a run.json from before pools as the default pool', () => {
    const old = { ...phase('sim', 'workers') } as Partial<PhaseSpec>;
    delete old.pool;
    expect(withDefaultPools([old as PhaseSpec])[0]!.pool).toBe('default');
  });
});

describe('worker --pool / WORKER_POOL', () => {
  it('serves the default pool unless told otherwise', () => {
    expect(loadWorkerConfig({}, workerEnv, '/').pools).toEqual(['default']);
  });

  it('takes comma-separated and repeated values, the flag over the variable', () => {
    expect(loadWorkerConfig({ pool: ['default,highmem', 'gpu', 'gpu'] }, workerEnv, '/').pools).toEqual(['default', 'highmem', 'gpu']);
    expect(loadWorkerConfig({}, { ...workerEnv, WORKER_POOL: 'highmem, gpu' }, '/').pools).toEqual(['highmem', 'gpu']);
    expect(loadWorkerConfig({ pool: ['gpu'] }, { ...workerEnv, WORKER_POOL: 'highmem' }, '/').pools).toEqual(['gpu']);
  });

  it('refuses a bad pool name', () => {
    expect(() => loadWorkerConfig({ pool: ['gpu,'] }, workerEnv, '/')).toThrow(/--pool: "" is not a pool name/);
    expect(() => loadWorkerConfig({}, { ...workerEnv, WORKER_POOL: 'High' }, '/')).toThrow(/WORKER_POOL: "High"/);
  });
});

describe('pools in tasker status and metrics', () => {
  const worker = (id: string, pools: string[] | undefined, running = 0): WorkerInfo => ({
    id,
    host: 'h',
    pid: 1,
    concurrency: 2,
    ...(pools === undefined ? {} : { pools }),
    startedAt: '',
    running: Array.from({ length: running }, (_, i) => ({ runId: 'r', id: `f1-L${i}`, attempt: 1, since: '', command: 'x' })),
  });

  it("lists the default pool, the run's and the workers', with each pool's queue and workers", () => {
    const workers = [worker('w1', undefined, 1), worker('w2', ['default', 'gpu'], 2), worker('w3', ['highmem'])];
    expect(poolsToShow(undefined, workers)).toEqual(['default', 'gpu', 'highmem']);
    const run = { pools: ['big'] } as Parameters<typeof poolsToShow>[0];
    expect(poolsToShow(run, [])).toEqual(['default', 'big']);
    const gpu = poolStatus('gpu', 't.pool.gpu.commands', { ready: 7, consumers: 0 }, workers);
    expect(gpu).toEqual({ pool: 'gpu', queue: 't.pool.gpu.commands', ready: 7, consumers: 0, workers: ['w2'], running: 2, demand: undefined });
    const text = formatPools([gpu, poolStatus('big', 't.pool.big.commands', undefined, workers)]).join('\n');
    // The queue's messages are bundles, and only the runs' windows: the commands waiting come from the demand table.
    expect(text).toContain('gpu          1 worker (w2), 2 running\n               queue t.pool.gpu.commands: 7 messages ready (a bundle message carries several commands), 0 consumers');
    const demand = { runId: 'r', priority: 'normal' as const, demand: 40, inFlight: 8, phase: 'sims', at: Date.now() };
    const withDemand = formatPools([poolStatus('gpu', 't.pool.gpu.commands', { ready: 3, consumers: 1 }, workers, poolDemand('gpu', [demand], workers))]).join('\n');
    expect(withDemand).toContain('gpu          1 worker (w2), 2 slots, 2 running; 38 commands of their current phases waiting, of 1 live run\n');
    expect(withDemand).toContain('queue t.pool.gpu.commands: 3 messages ready (a bundle message carries several commands), 1 consumer');
    expect(text).toContain('big          no worker\n               queue t.pool.big.commands not declared yet');
    expect(formatPools([poolStatus('w', 't.pool.w.commands', { ready: 0, consumers: 1 }, [])]).join('\n')).toContain('w            no worker\n               queue t.pool.w.commands: 0 messages ready (a bundle message carries several commands), 1 consumer');
  });

  it('exports per pool gauges', async () => {
    const { registry, metrics } = createCommandMetrics();
    metrics.trackPools(() => Promise.resolve([{ pool: 'gpu', queue: 't.pool.gpu.commands', ready: 5, consumers: 0 }]));
    const text = await registry.metrics();
    expect(text).toContain('tasker_pool_messages_ready{pool="gpu",queue="t.pool.gpu.commands"} 5');
    expect(text).toContain('tasker_pool_consumers{pool="gpu",queue="t.pool.gpu.commands"} 0');
  });
});

describe('names RabbitMQ shows for consumers and connections', () => {
  it('a worker\'s consumer tag names the namespace, the worker, the pool and what it consumes; an extra one its serial', () => {
    const ns = names('acme');
    expect(ns.workerConsumerTag('node-7-1234', 'default')).toBe('acme.worker-node-7-1234.default.commands');
    expect(ns.workerConsumerTag('node-7-1234', 'gpu', 2)).toBe('acme.worker-node-7-1234.gpu.commands.extra-2');
  });

  it('the tasker\'s consumer tag names the namespace and the run', () => {
    expect(names('acme').taskerConsumerTag('sims-1')).toBe('acme.tasker-sims-1.results');
  });

  it('a tag stays within the 255 bytes of an AMQP short string', () => {
    expect(names('acme').workerConsumerTag('h'.repeat(300), 'default')).toHaveLength(255);
  });

  it('a connection name is namespace, role, then what it is for, as key=value words', () => {
    expect(names('acme').connectionName('tasker', { run: 'sims-1', host: 'box', pid: 42 })).toBe('ns=acme role=tasker run=sims-1 host=box pid=42');
  });
});
