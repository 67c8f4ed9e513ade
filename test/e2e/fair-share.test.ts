import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readResults, readSummary, type ResultLine } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace, waitFor, type Proc } from '../helpers/distributed.js';

/**
 * Fair share between runs of one pool, end to end: the built tasker (several runs at once) and 4
 * workers on the real RabbitMQ and Redis. Nothing here times the runs: what is counted is which
 * run's commands started while another waited (from results.jsonl), which is what FIFO got wrong
 * (a run started later waited behind the whole backlog of the runs before it).
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-share-');

function jobs(name: string, count: number, seconds: string): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, `${Array.from({ length: count }, () => `sleep ${seconds}`).join('\n')}\n`);
  return path;
}

async function workers(count: number): Promise<void> {
  const started = await Promise.all(Array.from({ length: count }, () => readyWorker(ctx.env, ['--workdir', ctx.dir])));
  ctx.procs.push(...started.map((w) => w.proc));
}

function tasker(runId: string, args: string[]): Proc {
  if (!ctx.runIds.includes(runId)) ctx.runIds.push(runId);
  const runArgs = args[0] === '--resume' ? ['run', '--workdir', ctx.dir, ...args] : ['run', '--run-id', runId, '--workdir', ctx.dir, ...args];
  const proc = spawnTasker(ctx.env, runArgs, 180_000);
  ctx.procs.push(proc);
  return proc;
}

/** Start times (ms since the epoch) of a run's commands, sorted. */
function starts(records: readonly ResultLine[]): number[] {
  return records.map((record) => Date.parse(record.startedAt)).sort((a, b) => a - b);
}

function between(times: readonly number[], from: number, to: number): number {
  return times.filter((time) => time >= from && time <= to).length;
}

/** Waits until the run has recorded at least `count` results. */
async function resultsOf(runId: string, count: number): Promise<void> {
  await waitFor(`${count} results of ${runId}`, () => {
    try {
      return readResults(ctx.dir, runId).length >= count;
    } catch {
      return false;
    }
  }, 60_000);
}

function everyCommandOnce(runId: string, count: number): void {
  const records = readResults(ctx.dir, runId);
  expect(records.filter((record) => record.outcome === 'succeeded')).toHaveLength(count);
  expect(new Set(records.map((record) => record.id)).size).toBe(count);
}

describe('fair share between runs of one pool', () => {
  it('a small run started beside a big one starts within about a bundle per slot of its work, not after its backlog; the big one completes every command once', async () => {
    await workers(4);
    const big = tasker('big', [jobs('big.sh', 600, '0.05')]);
    await resultsOf('big', 60);
    const small = await tasker('small', [jobs('small.sh', 30, '0.05')]);
    expect(small.exitCode, small.all).toBe(0);
    const bigDone = await big;
    expect(bigDone.exitCode, bigDone.all).toBe(0);
    everyCommandOnce('big', 600);
    everyCommandOnce('small', 30);

    const smallStarts = starts(readResults(ctx.dir, 'small'));
    const bigStarts = starts(readResults(ctx.dir, 'big'));
    const smallBegan = Date.parse(readSummary(ctx.dir, 'small').startedAt as string);
    // Ahead of the small run's first command: what the big one had published (two bundles per
    // slot, ~5 commands each) and what its workers held. FIFO: the whole backlog, ~500.
    const aheadOfFirst = between(bigStarts, smallBegan, smallStarts[0]!);
    expect(aheadOfFirst, `big started ${aheadOfFirst} commands before small's first`).toBeLessThan(100);
    // While the small run had commands, the big one took about half the slots, not all.
    const alongside = between(bigStarts, smallStarts[0]!, smallStarts.at(-1)!);
    expect(alongside, `big started ${alongside} commands while small's 30 started`).toBeLessThan(90);
    expect(bigStarts.at(-1)!).toBeGreaterThan(smallStarts.at(-1)! + 1000);
  });

  it('a --priority high run overtakes: once its first command starts, the normal run starts almost nothing until it is done', async () => {
    await workers(4);
    const normal = tasker('normal', [jobs('normal.sh', 600, '0.05')]);
    await resultsOf('normal', 60);
    const high = await tasker('high', ['--priority', 'high', jobs('high.sh', 30, '0.05')]);
    expect(high.exitCode, high.all).toBe(0);
    expect((await normal).exitCode).toBe(0);
    everyCommandOnce('normal', 600);

    const highStarts = starts(readResults(ctx.dir, 'high'));
    const normalStarts = starts(readResults(ctx.dir, 'normal'));
    // Only what the normal run had published before it heard of the high one (at once, by Redis pub/sub).
    const alongside = between(normalStarts, highStarts[0]!, highStarts.at(-1)!);
    expect(alongside, `normal started ${alongside} commands while high's 30 started`).toBeLessThan(25);
    const status = readSummary(ctx.dir, 'high');
    expect(status.status).toBe('succeeded');
  });

  it('two equal runs share the slots within 40/60, and a third joining gets its part; a run that ends frees its share', async () => {
    await workers(4);
    const a = tasker('a', [jobs('a.sh', 1000, '0.02')]);
    await resultsOf('a', 20);
    const b = tasker('b', [jobs('b.sh', 1000, '0.02')]);
    await resultsOf('b', 150);
    const c = await tasker('c', [jobs('c.sh', 120, '0.02')]);
    expect(c.exitCode, c.all).toBe(0);
    // A and B go on alone for a while, then are interrupted: what they did is what is measured.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const run of [a, b]) run.kill('SIGINT');
    await Promise.all([a, b]);
    const [aStarts, bStarts, cStarts] = ['a', 'b', 'c'].map((runId) => starts(readResults(ctx.dir, runId).filter((r) => r.outcome === 'succeeded'))) as [number[], number[], number[]];

    // A and B alone together: from B's second second to C's first command.
    const pairFrom = bStarts[0]! + 1000;
    const pairTo = cStarts[0]!;
    const pairA = between(aStarts, pairFrom, pairTo);
    const pairB = between(bStarts, pairFrom, pairTo);
    expect(pairA / (pairA + pairB), `A ${pairA}, B ${pairB}`).toBeGreaterThanOrEqual(0.4);
    expect(pairA / (pairA + pairB), `A ${pairA}, B ${pairB}`).toBeLessThanOrEqual(0.6);

    // All three: from C's first command to C's last, C gets about a third.
    const threeFrom = cStarts[0]!;
    const threeTo = cStarts.at(-1)!;
    const counts = [aStarts, bStarts, cStarts].map((times) => between(times, threeFrom, threeTo));
    const total = counts.reduce((sum, n) => sum + n, 0);
    for (const n of counts) expect(n / total, `a, b, c: ${counts.join(', ')}`).toBeGreaterThan(0.2);

    // C done: the others take its slots again (4 workers on A and B together right after).
    const afterC = cStarts.at(-1)! + 1500;
    const [lastA, lastB] = [aStarts.at(-1)!, bStarts.at(-1)!];
    expect(Math.min(lastA, lastB), 'A and B still had work after C').toBeGreaterThan(afterC + 1000);
    const records = [...readResults(ctx.dir, 'a'), ...readResults(ctx.dir, 'b')];
    const busy = new Set(records.filter((r) => Date.parse(r.startedAt) >= afterC && Date.parse(r.startedAt) < afterC + 1000).map((r) => r.worker));
    expect(busy.size, 'workers running A or B commands in the second after C ended').toBe(4);
  });

  it('a run whose tasker is killed and resumed takes its share again, and runs every command once', async () => {
    await workers(4);
    const a = tasker('a', [jobs('a.sh', 1200, '0.02')]);
    await resultsOf('a', 20);
    const b = tasker('b', [jobs('b.sh', 300, '0.02')]);
    await resultsOf('b', 40);
    b.kill('SIGKILL');
    await b;
    const resumedAt = Date.now();
    const resumed = tasker('b', ['--resume', 'b']);
    const done = await resumed;
    expect(done.exitCode, done.all).toBe(0);
    a.kill('SIGINT');
    await a;
    everyCommandOnce('b', 300);

    // Until the killed tasker's heartbeat is stale the new one waits (and A takes the slots); from a
    // second after B's commands start again to B's end, A and B share the slots again.
    const bStarts = starts(readResults(ctx.dir, 'b')).filter((time) => time >= resumedAt);
    const gaps = bStarts.slice(1).map((time, index) => ({ at: time, gap: time - bStarts[index]! }));
    const from = gaps.reduce((widest, next) => (next.gap > widest.gap ? next : widest), { at: bStarts[0]!, gap: 0 }).at + 1000;
    const to = bStarts.at(-1)!;
    const aCount = between(starts(readResults(ctx.dir, 'a')), from, to);
    const bCount = between(starts(readResults(ctx.dir, 'b')), from, to);
    expect(bCount / (aCount + bCount), `A ${aCount}, B ${bCount}`).toBeGreaterThanOrEqual(0.35);
    expect(bCount / (aCount + bCount), `A ${aCount}, B ${bCount}`).toBeLessThanOrEqual(0.65);
  });
});
