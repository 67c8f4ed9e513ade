import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readEvents, readResults, readSummary, type Event } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace, waitFor, type Proc } from '../helpers/distributed.js';

/**
 * A worker SIGKILLed in the middle of a run, as a new user's trial did it: 40 x `sleep 0.3` on two
 * workers of concurrency 1. The surviving worker is redelivered the dead worker's messages, whose
 * leases the dead worker held. It must keep running the queue's other commands meanwhile, and run
 * the dead worker's as soon as that worker is known dead, not sit idle until the lease expires.
 * The lease TTL is 60 s here, so a run that waited for it cannot finish within the bound below.
 * And the other side of it: a worker that is only frozen keeps its command, which runs once.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-dead-lease-');

const leaseTtlMs = 60_000;
const commands = 40;

/** The worker process a command ran under: its parent is the worker's executor helper. */
function workerOf(event: Event): number | undefined {
  try {
    return Number(readFileSync(`/proc/${event.parent}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  } catch {
    return undefined; // the helper is gone
  }
}

function events(): Event[] {
  return readEvents(join(ctx.dir, 'events.txt'));
}

interface Trial {
  victim: Proc;
  survivor: { proc: Proc; output: () => string };
  run: Proc;
  runStarted: number;
  /** The command the victim was running when the fault hit it. */
  running: Event;
}

/**
 * Two workers of concurrency 1 (the victim's with `victimAmqpUrl`), 40 x 0.3 s, and waits until
 * the run is well under way and the victim has just started a command (far from its end, so its
 * result cannot be on its way to Redis when the fault hits).
 */
async function startTrial(runId: string, bundleSize: string, victimAmqpUrl = services.amqpUrl): Promise<Trial> {
  const env = { ...ctx.env, TASKER_LEASE_TTL: `${leaseTtlMs / 1000}s` };
  const [victimStarted, survivor] = await Promise.all([
    readyWorker({ ...env, AMQP_URL: victimAmqpUrl }, ['--workdir', ctx.dir, '--concurrency', '1']),
    readyWorker(env, ['--workdir', ctx.dir, '--concurrency', '1']),
  ]);
  const victim = victimStarted.proc;
  ctx.procs.push(victim, survivor.proc);
  const jobs = join(ctx.dir, 'jobs.sh');
  writeFileSync(jobs, ['# phase: sims', ...Array.from({ length: commands }, () => 'bash ev.sh 0.3'), ''].join('\n'));
  ctx.runIds.push(runId);
  const runStarted = Date.now();
  const run = spawnTasker(env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--bundle-size', bundleSize, jobs], 150_000);
  ctx.procs.push(run);
  const ended = (all: Event[], id: string): boolean => all.some((e) => e.event === 'end' && e.id === id);
  let running: Event | undefined;
  await waitFor('the victim to start a command mid-run', () => {
    const all = events();
    if (all.filter((e) => e.event === 'end').length < 8) return false;
    running = all.find((e) => e.event === 'start' && !ended(all, e.id) && workerOf(e) === victim.pid);
    return running !== undefined;
  });
  return { victim, survivor, run, runStarted, running: running! };
}

/** The run succeeded, every command exactly once; returns how long it took. */
async function expectEachSucceededOnce(trial: Trial, runId: string): Promise<number> {
  const result = await trial.run;
  const tookMs = Date.now() - trial.runStarted;
  expect(result.exitCode, result.all).toBe(0);
  const results = readResults(ctx.dir, runId);
  expect(results.filter((r) => r.outcome === 'succeeded')).toHaveLength(commands);
  expect(new Set(results.map((r) => r.id)).size).toBe(commands);
  const ends = events().filter((e) => e.event === 'end');
  expect(ends).toHaveLength(commands);
  expect(new Set(ends.map((e) => e.id)).size).toBe(commands);
  expect(readSummary(ctx.dir, runId).phases[0]).toMatchObject({ succeeded: commands, failed: 0 });
  return tookMs;
}

/** The longest time after `sinceMs` without a command starting (each takes 0.3 s). */
function longestGapBetweenStarts(sinceMs: number): { longestMs: number; gaps: number[] } {
  const starts = events()
    .filter((e) => e.event === 'start' && Number(e.at / 1_000_000n) >= sinceMs)
    .map((e) => Number(e.at / 1_000_000n));
  const gaps = [starts[0]! - sinceMs, ...starts.slice(1).map((at, i) => at - starts[i]!)];
  return { longestMs: Math.max(...gaps), gaps };
}

async function killOneWorkerMidRun(runId: string, bundleSize: string): Promise<void> {
  const trial = await startTrial(runId, bundleSize);
  trial.victim.kill('SIGKILL'); // only the worker, as `kill -9 PID` does: its helper takes the command with it
  const killedAt = Date.now();
  const tookMs = await expectEachSucceededOnce(trial, runId);
  // The survivor did not sit idle for the lease: after the kill it started a command at least
  // every few seconds, and the run ended long before the 60 s lease expired.
  const { longestMs, gaps } = longestGapBetweenStarts(killedAt);
  expect(longestMs, `gaps between starts after the kill: ${gaps.join(', ')} ms`).toBeLessThan(10_000);
  expect(tookMs, trial.survivor.output().slice(-3000)).toBeLessThan(leaseTtlMs * 0.6);
  // The interrupted command ran to its end once, on the survivor, which took its lease over.
  expect(events().filter((e) => e.event === 'end' && e.id === trial.running.id)).toHaveLength(1);
  expect(trial.survivor.output()).toContain('taking the command over now');
}

describe('a worker SIGKILLed mid-run, with a long lease TTL', () => {
  it('the surviving worker keeps running the queue, and runs the dead worker’s command without waiting for its lease (one command per message)', async () => {
    await killOneWorkerMidRun('dead-lease-single', '1');
  }, 150_000);

  it('the same with bundles: every command still succeeds once and the survivor keeps working', async () => {
    await killOneWorkerMidRun('dead-lease-bundles', '3');
  }, 150_000);

  it('a worker frozen past the broker’s heartbeat timeout keeps its command: the survivor runs the rest, and never starts that one', async () => {
    // The victim's broker heartbeat is 1 s: frozen, it loses its connection within seconds and
    // its messages go to the survivor, while its Redis presence stays (the process lives).
    const victimAmqpUrl = `${services.amqpUrl}${services.amqpUrl.includes('?') ? '&' : '?'}heartbeat=1`;
    const trial = await startTrial('frozen-lease', '1', victimAmqpUrl);
    trial.victim.kill('SIGSTOP');
    const frozenAt = Date.now();
    // Longer than the survivor needs to judge a gone holder (12 s settle, 5 s absent) after the redelivery.
    await waitFor('the survivor to run the rest of the queue', () => events().filter((e) => e.event === 'end').length >= commands - 2, 30_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, frozenAt + 20_000 - Date.now())));
    expect(trial.survivor.output()).toContain(`"commandId":"${trial.running.id}"`);
    expect(events().filter((e) => e.event === 'start' && e.id === trial.running.id)).toHaveLength(1);
    trial.victim.kill('SIGCONT');
    await expectEachSucceededOnce(trial, 'frozen-lease');
    // It ran once, on the frozen worker, which finished it once thawed.
    expect(events().filter((e) => e.event === 'start' && e.id === trial.running.id)).toHaveLength(1);
    expect(trial.survivor.output()).not.toContain('taking the command over now');
  }, 150_000);
});
