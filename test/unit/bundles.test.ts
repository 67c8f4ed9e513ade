import { describe, expect, it } from 'vitest';
import { maxBundleSize, parseResultMessage, parseWorkMessage, resultMessage } from '../../shared/broker/messages.js';
import type { Decision } from '../../shared/broker/amqp-session.js';
import { failedMark, succeededMark } from '../../shared/redis/marks.js';
import type { BeginOutcome } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { bundleSize, bundleTargetMs, maxAdaptiveBundle, createPhaseBundler } from '../../tasker/distributed/phase-dispatch.js';
import { combinedDecision, createForgetRecorded } from '../../tasker/distributed/result-inbox.js';
import type { BundledAttempt } from '../../tasker/distributed/command-publisher.js';
import { handleMessage } from '../../worker/message/handle-message.js';
import { byId, fakeWorker } from '../helpers/worker-ports.js';
import type { PhaseSpec } from '../../tasker/jobs/plan.js';
import { deferred } from '../helpers/deferred.js';

/** Bundled dispatch: the message format, the sizing, the tasker's bundler and the worker's handling, with plain fakes. */

const shared = { v: 1, runId: 'r1', phase: 'sims', phaseIndex: 2, timeoutMs: null, killGraceMs: 1000, replyTo: 'tasker.run.r1.done' };
const attempt = (line: number, extra: Record<string, unknown> = {}) => ({ id: `f1-L${line}`, attempt: 1, command: `echo ${line}`, file: 'jobs.sh', line, ...extra });
const bundle = (...lines: number[]) => Buffer.from(JSON.stringify({ ...shared, kind: 'bundle', commands: lines.map((line) => attempt(line)) }));

describe('bundle messages', () => {
  it('a bundle is its attempts, each a whole command message', () => {
    const parsed = parseWorkMessage(bundle(3, 4));
    expect(parsed.ok && parsed.value.bundled).toBe(true);
    expect(parsed.ok && parsed.value.attempts).toEqual([
      { ...shared, kind: 'command', ...attempt(3) },
      { ...shared, kind: 'command', ...attempt(4) },
    ]);
  });

  it('a command message is one attempt, not bundled', () => {
    const parsed = parseWorkMessage(Buffer.from(JSON.stringify({ ...shared, kind: 'command', ...attempt(7) })));
    expect(parsed.ok && parsed.value).toEqual({ attempts: [{ ...shared, kind: 'command', ...attempt(7) }], bundled: false });
  });

  it('names what is wrong with a bundle, by position', () => {
    const bad = (commands: unknown, extra: Record<string, unknown> = {}) => parseWorkMessage(Buffer.from(JSON.stringify({ ...shared, ...extra, kind: 'bundle', commands })));
    expect(bad([]).ok).toBe(false);
    expect(bad(Array.from({ length: maxBundleSize + 1 }, (_, i) => attempt(i + 1))).ok).toBe(false);
    const twice = bad([attempt(1), attempt(1)]);
    expect(!twice.ok && twice.problem).toContain('commands[1]: id f1-L1 appears twice');
    const zero = bad([attempt(1), attempt(2, { attempt: 0 })]);
    expect(!zero.ok && zero.problem).toBe('commands[1]: attempt must be a positive integer');
    const run = bad([attempt(1)], { runId: '../x' });
    expect(!run.ok && run.problem).toContain('runId');
  });

  it('results go one per message, or a bundle\'s in one', () => {
    const records = [{ id: 'f1-L1', attempt: 1, outcome: 'succeeded' }, { id: 'f1-L2', attempt: 1, outcome: 'failed' }] as ResultRecord[];
    expect(resultMessage('r1', records.slice(0, 1))).toEqual({ v: 1, kind: 'result', runId: 'r1', record: records[0] });
    const parsed = parseResultMessage(Buffer.from(JSON.stringify(resultMessage('r1', records))));
    expect(parsed.ok && parsed.value).toEqual({ runId: 'r1', records });
    expect(parseResultMessage(Buffer.from(JSON.stringify({ v: 1, kind: 'result', runId: 'r1', records: [{ id: 'x' }] }))).ok).toBe(false);
  });
});

describe('bundle size', () => {
  it('fixed when given; one per message until a result says how long commands take', () => {
    expect(bundleSize({ fixed: 7, typicalMs: undefined, remaining: 3, lanes: 4 })).toBe(7);
    expect(bundleSize({ fixed: undefined, typicalMs: undefined, remaining: 1000, lanes: 4 })).toBe(1);
  });

  it('one per message for long commands; about the target work for short ones, capped', () => {
    expect(bundleSize({ fixed: undefined, typicalMs: bundleTargetMs, remaining: 1000, lanes: 4 })).toBe(1);
    expect(bundleSize({ fixed: undefined, typicalMs: 60_000, remaining: 1000, lanes: 4 })).toBe(1);
    expect(bundleSize({ fixed: undefined, typicalMs: 50, remaining: 100_000, lanes: 4 })).toBe(Math.floor(bundleTargetMs / 50));
    expect(bundleSize({ fixed: undefined, typicalMs: 0.5, remaining: 100_000, lanes: 4 })).toBe(maxAdaptiveBundle);
  });

  it("shrinks to one as the phase's end nears (guided by the workers' slots)", () => {
    const sizes = [800, 400, 80, 16, 8, 1].map((remaining) => bundleSize({ fixed: undefined, typicalMs: 1, remaining, lanes: 4 }));
    expect(sizes).toEqual([100, 50, 10, 2, 1, 1]);
  });
});

describe('marks', () => {
  it('one bit per command: the line, in a bitmap per jobs file (and per failed attempt)', () => {
    expect(succeededMark('f2-L42')).toEqual({ part: 'ok:f2', bit: 42 });
    expect(failedMark('f2-L42', 3)).toEqual({ part: 'failed:3:f2', bit: 42 });
    expect(succeededMark('custom.id')).toEqual({ part: 'ok:id:custom.id', bit: 0 });
  });
});

const phase = { index: 2, name: 'sims', commandCount: 500 } as PhaseSpec;
const command = (line: number) => ({ id: `f1-L${line}`, phase: 'sims', phaseIndex: 2, command: 'true', file: 'jobs.sh', line });
const turn = () => new Promise((resolve) => setImmediate(resolve));

function bundlerWith(fixedSize: number | undefined, probeMs = 60_000) {
  const published: BundledAttempt[][] = [];
  const bundler = createPhaseBundler(phase, { publish: async (_phase, attempts) => void published.push([...attempts]), fixedSize, lanes: () => 2, probeMs, maxBytes: 4 * 1024 * 1024 });
  return { bundler, sizes: () => published.map((one) => one.length) };
}

describe('phase bundler', () => {
  it('probes one per message (2 per worker slot, at least 8), holds the rest until the first result, then bundles them', async () => {
    const { bundler, sizes } = bundlerWith(undefined);
    const added = Array.from({ length: 500 }, (_, i) => bundler.add(command(i + 1), 1));
    await turn();
    expect(sizes()).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    bundler.observe(2);
    await Promise.all(added);
    expect(sizes().slice(8, 11)).toEqual([100, 98, 74]); // ceil(remaining / (2 x 2 lanes)), at most 100
    expect(sizes().reduce((a, b) => a + b, 0)).toBe(500);
    expect(sizes().at(-1)).toBe(1); // the tail gets small
  });

  it('after the probe time, publishes what it held one per message (long commands)', async () => {
    const { bundler, sizes } = bundlerWith(undefined, 20);
    const added = Array.from({ length: 12 }, (_, i) => bundler.add(command(i + 1), 1));
    await Promise.all(added);
    expect(sizes()).toEqual(Array.from({ length: 12 }, () => 1));
  });

  it('a fixed size makes full bundles at once, and never holds back the last ones', async () => {
    const { bundler, sizes } = bundlerWith(3);
    const added = Array.from({ length: 7 }, (_, i) => bundler.add(command(i + 1), 1));
    expect(sizes()).toEqual([3, 3]);
    await Promise.all(added);
    expect(sizes()).toEqual([3, 3, 1]);
  });

  it('drops what it has not published when the run is interrupted', async () => {
    const { bundler, sizes } = bundlerWith(undefined);
    const added = Array.from({ length: 10 }, (_, i) => bundler.add(command(i + 1), 1));
    await turn();
    bundler.dropPending();
    expect(await Promise.all(added)).toEqual([true, true, true, true, true, true, true, true, false, false]);
    expect(sizes()).toHaveLength(8);
  });
});

describe('shared deliveries and forgetting', () => {
  it('a message of several results is acked once all are, requeued as soon as one is', async () => {
    const parts = (n: number) => Array.from({ length: n }, () => deferred<Decision>());
    const decisions: Decision[] = [];
    const all = parts(3);
    void combinedDecision(all.map((part) => part.promise)).then((decision) => decisions.push(decision));
    all[0]!.resolve('ack');
    all[1]!.resolve('ack');
    await turn();
    expect(decisions).toEqual([]);
    all[2]!.resolve('ack');
    await turn();
    expect(decisions).toEqual(['ack']);
    const other = parts(2);
    void combinedDecision(other.map((part) => part.promise)).then((decision) => decisions.push(decision));
    other[0]!.resolve('requeue');
    await turn();
    expect(decisions).toEqual(['ack', 'requeue']);
    other[1]!.resolve('ack');
    await turn();
    expect(decisions).toEqual(['ack', 'requeue']);
  });

  it('lets Redis go of the attempts recorded in one turn in one call', async () => {
    const calls: string[][] = [];
    const forget = createForgetRecorded({ forgetRecorded: async (_runId, attempts) => void calls.push(attempts.map((a) => `${a.id}#${a.attempt}`)) }, 'r1');
    await Promise.all([forget({ id: 'a', attempt: 1 }), forget({ id: 'b', attempt: 2 })]);
    await forget({ id: 'c', attempt: 1 });
    expect(calls).toEqual([['a#1', 'b#2'], ['c#1']]);
  });
});

/** The shared fake, with a begin answer per command id; `slots` at once (default 2); `refuseStart`: that command's start gate finds its lease lost. */
function workerFakes(begins: Record<string, BeginOutcome>, options: { slots?: number; refuseStart?: string } = {}) {
  return fakeWorker({ begin: byId(begins), slots: options.slots ?? 2, leaseLost: (id) => id === options.refuseStart, log: (id) => `logs/${id}.log` });
}

describe('a worker handling a bundle', () => {
  it("runs its attempts side by side on the worker's slots, records each, and sends all results in one message", async () => {
    const f = workerFakes({}, { slots: 2 });
    const handled = await handleMessage(bundle(1, 2, 3, 4, 5), f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(f.finished.map((r) => r.id).sort()).toEqual(['f1-L1', 'f1-L2', 'f1-L3', 'f1-L4', 'f1-L5']);
    expect(f.peak()).toBe(2);
    await handled.afterSettle?.();
    expect(f.messages).toHaveLength(1);
    expect(f.messages[0]!.map((r) => r.log).sort()).toEqual(['logs/f1-L1.log', 'logs/f1-L2.log', 'logs/f1-L3.log', 'logs/f1-L4.log', 'logs/f1-L5.log']);
  });

  it('skips what is recorded (resending what Redis still has), and dead-letters poison as its result, not the bundle', async () => {
    const earlier = { id: 'f1-L1', attempt: 1, outcome: 'succeeded' } as ResultRecord;
    const f = workerFakes({
      'f1-L1': { kind: 'finished', record: earlier },
      'f1-L2': { kind: 'finished' },
      'f1-L3': { kind: 'poison', starts: { attempt: 1, n: 3, workers: ['a', 'b', 'c'] } },
    });
    const handled = await handleMessage(bundle(1, 2, 3, 4), f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(f.startedIds).toEqual(['f1-L4']);
    await handled.afterSettle?.();
    expect(f.messages[0]!.map((r) => `${r.id} ${r.outcome}`)).toEqual(['f1-L1 succeeded', 'f1-L3 dead-lettered', 'f1-L4 succeeded']);
  });

  it('goes back to the queue when one attempt must run elsewhere; the others keep their results', async () => {
    const f = workerFakes({}, { refuseStart: 'f1-L2' });
    const handled = await handleMessage(bundle(1, 2, 3), f.ports, f.control);
    expect(handled.decision).toBe('requeue');
    expect(f.finished.map((r) => r.id).sort()).toEqual(['f1-L1', 'f1-L3']);
    await handled.afterSettle?.();
    expect(f.messages[0]).toHaveLength(2);
  });

  it('runs suspects alone one after another, never holding a slot while waiting for its turn', async () => {
    const f = workerFakes({ 'f1-L1': { kind: 'started', priorStarts: 1 }, 'f1-L2': { kind: 'started', priorStarts: 2 } }, { slots: 1 });
    const handled = await handleMessage(bundle(1, 2, 3), f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(f.finished).toHaveLength(3);
  });

  it('dead-letters a bundle of a finished run whose attempts are not all recorded; sends nothing', async () => {
    const f = workerFakes({ 'f1-L1': { kind: 'finished' }, 'f1-L2': { kind: 'over' }, 'f1-L3': { kind: 'over' } });
    const handled = await handleMessage(bundle(1, 2, 3), f.ports, f.control);
    expect(handled).toEqual({ decision: 'reject' });
    expect(f.startedIds).toEqual([]);
    expect(f.finished).toEqual([]);
  });

  it('dead-letters a bundle of a purged or unknown run, running none of it', async () => {
    for (const kind of ['cancelled', 'unknown'] as const) {
      const f = workerFakes({ 'f1-L1': { kind }, 'f1-L2': { kind } });
      expect(await handleMessage(bundle(1, 2), f.ports, f.control)).toEqual({ decision: 'reject' });
      expect(f.startedIds).toEqual([]);
    }
  });

  it('dead-letters a bundle that is not valid, running none of it', async () => {
    const f = workerFakes({});
    const handled = await handleMessage(Buffer.from(JSON.stringify({ ...shared, kind: 'bundle', commands: [attempt(1), attempt(1)] })), f.ports, f.control);
    expect(handled.decision).toBe('reject');
    expect(f.startedIds).toEqual([]);
  });
});
