import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readEvents, readResults, type Event } from '../helpers/cli.js';
import { queueCounts, spawnTasker, useTestNamespace, waitFor, watchOutput, workerFor, type Proc } from '../helpers/distributed.js';

/**
 * Ctrl-C on a distributed run: interrupted means stopped, for the workers too. Its queued
 * commands do not run until the run is resumed, and the resumed run runs each exactly once.
 * The built tasker and workers against the real RabbitMQ and Redis, one namespace per test.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };

const ctx = useTestNamespace(services, 'tasker-interrupt-');

function events(): Event[] {
  return readEvents(join(ctx.dir, 'events.txt'));
}

function startsPerId(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events().filter((e) => e.event === 'start')) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  return counts;
}

/** Every one of `ids`, and nothing else, started exactly once. */
function expectEachStartedOnce(ids: string[]): void {
  expect([...startsPerId().entries()].sort()).toEqual(ids.map((id) => [id, 1]));
}

function jobs(lines: string[]): string {
  const path = join(ctx.dir, 'jobs.sh');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function tasker(args: string[]): Proc {
  const proc = spawnTasker(ctx.env, ['run', '--workdir', ctx.dir, '--progress-interval', '1s', ...args]);
  ctx.procs.push(proc);
  return proc;
}

const worker = (args: string[] = []): Promise<() => string> => workerFor(ctx, args);

/** Starts a run with no worker attached, waits until its commands are queued, and interrupts it. */
async function interruptedRun(runId: string, lines: string[]): Promise<void> {
  ctx.runIds.push(runId);
  const first = tasker(['--run-id', runId, jobs(lines)]);
  await waitFor('the commands to be queued', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount === lines.length);
  first.kill('SIGINT');
  const result = await first;
  expect(result.exitCode, result.all).toBe(130);
}

async function status(runId: string): Promise<string> {
  const result = await spawnTasker(ctx.env, ['status', runId]);
  expect(result.exitCode, result.all).toBe(0);
  return result.stdout;
}

function count(text: string, pattern: RegExp): number {
  return text.split('\n').filter((line) => pattern.test(line)).length;
}

describe('interrupted distributed runs', () => {
  it('a worker started after Ctrl-C runs none of the queued commands; the resumed run runs each once', async () => {
    await interruptedRun('stop', ['bash ev.sh 0', 'bash ev.sh 0', 'bash ev.sh 0']);

    const shown = await status('stop');
    expect(shown).toContain('Run stop: interrupted;');
    // Written as the test started the tasker (node bin/tasker.js), as the run's own summary does.
    expect(shown).toContain(`its queued commands wait, not run, until it is resumed: node bin/tasker.js run --resume stop --workdir ${ctx.dir}`);
    expect(shown).not.toMatch(/\d{3,}h\d\dm/); // no heartbeat of 1970

    const output = await worker();
    await waitFor('the worker to take all three commands', () => count(output(), /run is interrupted|command finished/) >= 3);
    expect(count(output(), /run is interrupted: command not run/)).toBe(3);
    expect(events()).toEqual([]);

    const resumed = await tasker(['--resume', 'stop']);
    expect(resumed.exitCode, resumed.all).toBe(0);
    expectEachStartedOnce(['f1-L1', 'f1-L2', 'f1-L3']);
    expect(await status('stop')).toContain('Run stop: finished (succeeded)');
  });

  it('resumed before any worker came, the run awaits its queued commands instead of publishing them twice', async () => {
    await interruptedRun('early', ['bash ev.sh 0', 'bash ev.sh 0 3']);
    const resumed = tasker(['--resume', 'early']);
    const out = watchOutput(resumed);
    await waitFor('the resumed run to reach its phase', () => out.text().includes('phase started'));
    await worker();
    const result = await resumed;
    expect(result.exitCode, result.all).toBe(1); // f1-L2 fails, and there are no retries
    expectEachStartedOnce(['f1-L1', 'f1-L2']);
    const last = readResults(ctx.dir, 'early').filter((r) => r.id === 'f1-L2' && r.outcome !== 'interrupted');
    expect(last.map((r) => [r.attempt, r.outcome])).toEqual([[1, 'failed']]);
  });

  it('a command running at Ctrl-C finishes and counts on resume; the queued ones wait; status shows one truth', async () => {
    const output = await worker(['--concurrency', '1']);
    ctx.runIds.push('busy');
    const first = tasker(['--run-id', 'busy', jobs(['bash ev.sh 0; while [ ! -e go ]; do sleep 0.05; done', 'bash ev.sh 0', 'bash ev.sh 0'])]);
    await waitFor('the first command to start', () => events().some((e) => e.id === 'f1-L1'));
    first.kill('SIGINT');
    expect((await first).exitCode).toBe(130);

    // Its worker still runs f1-L1: both sections say so, from the same heartbeat.
    let shown = '';
    await waitFor('status to show the running command', async () => (shown = await status('busy')).includes('Running (1):'));
    expect(shown).toContain('Run busy: interrupted;');
    expect(shown).toContain('1 running');
    expect(shown).toMatch(/f1-L1 +on \S+, attempt 1/);
    expect(shown).toContain('busy with busy/f1-L1');

    writeFileSync(join(ctx.dir, 'go'), '');
    // Queued: what the run's fair-share window had published (two per slot of its one worker: f1-L2).
    await waitFor('the queued commands to be set aside', () => count(output(), /run is interrupted: command not run/) >= 1);
    expect([...startsPerId().keys()]).toEqual(['f1-L1']);

    const resumed = await tasker(['--resume', 'busy']);
    expect(resumed.exitCode, resumed.all).toBe(0);
    expectEachStartedOnce(['f1-L1', 'f1-L2', 'f1-L3']);
    const succeeded = readResults(ctx.dir, 'busy').filter((r) => r.outcome === 'succeeded');
    expect(succeeded.map((r) => r.id).sort()).toEqual(['f1-L1', 'f1-L2', 'f1-L3']);
  });
});
