import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readResults } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace, waitFor } from '../helpers/distributed.js';

/**
 * A worker stopped in the middle of a run, by Ctrl-C or by its terminal closing (SIGHUP), drains
 * as on SIGTERM: its running commands finish and their results reach the tasker; it exits 0 and
 * logs nothing alarming (no warning, no stack trace) for what a stop is expected to do.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-worker-stop-');

describe('a worker stopped mid-run', () => {
  it.for(['SIGINT', 'SIGHUP'] as const)('by %s: drains, exits 0, no warning or stack trace; the run completes', { timeout: 90_000 }, async (signal) => {
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, `${Array.from({ length: 60 }, (_, i) => `sleep 0.5; echo ${i}`).join('\n')}\n`);
    const workers = await Promise.all([1, 2, 3].map(() => readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '4'])));
    ctx.procs.push(...workers.map((w) => w.proc));
    ctx.runIds.push('stop');
    const run = spawnTasker(ctx.env, ['run', '--run-id', 'stop', '--workdir', ctx.dir, jobs]);
    ctx.procs.push(run);
    const finished = (): number => (existsSync(join(ctx.dir, '.tasker', 'runs', 'stop', 'results.jsonl')) ? readResults(ctx.dir, 'stop').length : 0);
    await waitFor('some commands to finish', () => finished() >= 8, 30_000);
    for (const worker of workers) worker.proc.kill(signal);
    const stopped = await Promise.all(workers.map((w) => w.proc));
    // The stop came mid-run: the workers were running commands, which they let finish.
    const runningAtStop = workers.map((w) => Number(/"running":(\d+)[^\n]*"msg":"shutting down: no new commands"/.exec(w.output())?.[1] ?? -1));
    expect(runningAtStop.every((count) => count >= 0), 'each worker logged its shutdown').toBe(true);
    expect(runningAtStop.reduce((a, b) => a + b, 0), 'commands running at the stop').toBeGreaterThan(0);
    for (const [i, result] of stopped.entries()) {
      expect(result.exitCode, workers[i]!.output()).toBe(0);
      const lines = workers[i]!.output().split('\n').filter((line) => line.startsWith('{'));
      const alarming = lines.filter((line) => /"level":(4|5)0/.test(line) && !line.includes('commands run as this process')).concat(lines.filter((line) => line.includes('"stack"')));
      expect(alarming, `${signal}: what the worker logged on its stop`).toEqual([]);
      expect(workers[i]!.output()).toContain('worker stopped');
    }
    const fresh = await readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '4']);
    ctx.procs.push(fresh.proc);
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    expect(readResults(ctx.dir, 'stop').filter((r) => r.outcome === 'succeeded')).toHaveLength(60);
  });
});
