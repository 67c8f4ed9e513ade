import { describe, expect, it } from 'vitest';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { BeginOutcome } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { handleMessage } from '../../worker/message/handle-message.js';
import { fakeWorker, inOrder, succeeded, type FakeWorkerOptions } from '../helpers/worker-ports.js';

/** The worker's per-message logic with plain fakes: no broker, no Redis, no processes. */

const message = {
  v: 1,
  kind: 'command',
  runId: 'r1',
  phase: 'sims',
  phaseIndex: 2,
  id: 'f1-L7',
  attempt: 1,
  command: 'echo hi',
  file: 'jobs.sh',
  line: 7,
  timeoutMs: null,
  killGraceMs: 1000,
  replyTo: 'tasker.run.r1.done',
};
const content = Buffer.from(JSON.stringify(message));
const ok: ExecutionResult = succeeded;

/** The shared fake, with Redis' begin answers in order; `leaseLost`: every start gate finds the lease lost. */
function fakes(begins: BeginOutcome[], options: Omit<FakeWorkerOptions, 'begin' | 'leaseLost'> & { leaseLost?: boolean } = {}) {
  return fakeWorker({ ...options, begin: inOrder(begins), leaseLost: () => options.leaseLost === true });
}

describe('handleMessage', () => {
  it('dead-letters an invalid message without touching Redis or running anything', async () => {
    const f = fakes([]);
    expect((await handleMessage(Buffer.from('rm -rf /'), f.ports, f.control)).decision).toBe('reject');
    expect((await handleMessage(Buffer.from(JSON.stringify({ ...message, attempt: 0 })), f.ports, f.control)).decision).toBe('reject');
    expect(f.calls).toEqual([]);
  });

  it('runs a new command, records its result before the ack, and sends it after', async () => {
    const f = fakes([{ kind: 'started' }], { result: { ...ok, outcome: 'failed', exitCode: 3, reason: 'exit code 3' } });
    const handled = await handleMessage(content, f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(f.calls).toEqual(['begin', 'start', 'untrack', 'finish', 'release']);
    expect(f.finished[0]).toMatchObject({ id: 'f1-L7', phase: 'sims', attempt: 1, outcome: 'failed', exitCode: 3, worker: 'w1', log: 'logs/x.1.log' });
    await handled.afterSettle?.();
    expect(f.published()).toEqual(f.finished);
  });

  it('does not run a command whose result is recorded: resends that result', async () => {
    const record = { id: 'f1-L7', attempt: 1, outcome: 'succeeded' } as ResultRecord;
    const f = fakes([{ kind: 'finished', record }]);
    const handled = await handleMessage(content, f.ports, f.control);
    expect(handled.decision).toBe('ack');
    await handled.afterSettle?.();
    expect(f.calls).not.toContain('start');
    expect(f.published()).toEqual([record]);
  });

  it.each([['cancelled'], ['unknown'], ['over']] as const)('dead-letters a command of a run %s (a replayed or leftover message): not run, nothing written, no result sent', async (kind) => {
    const f = fakes([{ kind }]);
    const handled = await handleMessage(content, f.ports, f.control);
    expect(handled).toEqual({ decision: 'reject' });
    // Redis asked once (the begin script, which writes nothing for such a run); the slot given back.
    expect(f.calls).toEqual(['begin', 'release']);
    expect(f.published()).toEqual([]);
  });

  it('sets aside, without running it, a command of an interrupted run (its resume publishes it again)', async () => {
    // A second begin would say started: the command must not wait for the run to be resumed either.
    const f = fakes([{ kind: 'stopped' }, { kind: 'started' }]);
    const handled = await handleMessage(content, f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(handled.afterSettle).toBeUndefined();
    expect(f.calls).toEqual(['begin', 'release']);
  });

  it('waits while another worker holds the lease, and never runs the command twice', async () => {
    const record = { id: 'f1-L7', attempt: 1, outcome: 'succeeded' } as ResultRecord;
    const f = fakes([{ kind: 'busy', holder: 'w2#1' }, { kind: 'busy', holder: 'w2#1' }, { kind: 'finished', record }]);
    const handled = await handleMessage(content, f.ports, f.control);
    expect(handled.decision).toBe('ack');
    expect(f.calls.filter((c) => c === 'sleep')).toHaveLength(2);
    expect(f.calls).not.toContain('start');
  });

  it('takes over when the lease of a dead worker expires', async () => {
    const f = fakes([{ kind: 'busy', holder: 'dead#1' }, { kind: 'started' }]);
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
    expect(f.calls.filter((c) => c === 'start')).toHaveLength(1);
  });

  it('gives its slot back while it waits for a lease, lets the worker take another message meanwhile, and runs on a slot taken again', async () => {
    const f = fakes([{ kind: 'busy', holder: 'w2#1' }, { kind: 'busy', holder: 'w2#1' }, { kind: 'started' }]);
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
    // The slot goes back before the wait; the wait (one more consumer) ends before the command starts.
    expect(f.calls).toEqual(['begin', 'release', 'wait', 'sleep', 'begin', 'sleep', 'begin', 'wait-end', 'start', 'untrack', 'finish', 'release']);
  });

  it('a command waiting for a lease goes back to the queue when the worker drains', async () => {
    const f = fakes([{ kind: 'busy', holder: 'w2#1' }]);
    f.control.draining = () => f.calls.includes('wait');
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
    expect(f.calls).toEqual(['begin', 'release', 'wait', 'wait-end']);
  });

  it('requeues a command killed by shutdown, without recording a result', async () => {
    const f = fakes([{ kind: 'started' }], { drainKill: true, result: { ...ok, outcome: 'killed', exitCode: null, signal: 'SIGTERM' } });
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
    expect(f.calls).toContain('abandon');
    expect(f.finished).toEqual([]);
  });

  it('requeues without starting when the worker is draining', async () => {
    const f = fakes([{ kind: 'started' }], { draining: true });
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
    expect(f.calls).toEqual([]);
  });

  describe('uploads', () => {
    const withUpload = Buffer.from(JSON.stringify({ ...message, upload: { bucket: 'b-1', prefix: 'r1', patterns: ['out/*.json'] } }));

    it('uploads after success, before recording and acking; keys go into the result', async () => {
      const f = fakes([{ kind: 'started' }], { upload: { ok: true, keys: ['r1/out/a.json'] } });
      const handled = await handleMessage(withUpload, f.ports, f.control);
      expect(handled.decision).toBe('ack');
      expect(f.calls).toEqual(['begin', 'watch', 'start', 'untrack', 'upload', 'finish', 'release']);
      expect(f.finished[0]).toMatchObject({ outcome: 'succeeded', uploaded: ['r1/out/a.json'] });
    });

    it('a failed upload fails the attempt, with the reason', async () => {
      const f = fakes([{ kind: 'started' }], { upload: { ok: false, keys: [], reason: 'AccessDenied' } });
      await handleMessage(withUpload, f.ports, f.control);
      expect(f.finished[0]).toMatchObject({ outcome: 'upload-failed', exitCode: 0 });
      expect(f.finished[0]?.reason).toContain('AccessDenied');
    });

    it('uploads nothing for a failed command, or a message without upload patterns', async () => {
      const failed = fakes([{ kind: 'started' }], { result: { ...ok, outcome: 'failed', exitCode: 1 } });
      await handleMessage(withUpload, failed.ports, failed.control);
      expect(failed.calls).not.toContain('upload');
      const plain = fakes([{ kind: 'started' }]);
      await handleMessage(content, plain.ports, plain.control);
      expect(plain.calls).not.toContain('watch');
    });

    it('dead-letters a message whose upload patterns leave the workdir', async () => {
      const f = fakes([{ kind: 'started' }]);
      const evil = Buffer.from(JSON.stringify({ ...message, upload: { bucket: 'b-1', prefix: 'r1', patterns: ['../etc/*'] } }));
      expect((await handleMessage(evil, f.ports, f.control)).decision).toBe('reject');
      expect(f.calls).toEqual([]);
    });
  });

  it('with a signing key, dead-letters a message that is not authentic before parsing or running it', async () => {
    const f = fakes([{ kind: 'started' }]);
    f.ports.authenticate = (_content, envelope) => (envelope.headers['sig'] === 'good' && envelope.routingKey === 'run.r1' ? undefined : 'unsigned message');
    expect((await handleMessage(content, f.ports, f.control, { headers: {}, routingKey: 'run.r1' })).decision).toBe('reject');
    expect((await handleMessage(content, f.ports, f.control, { headers: { sig: 'good' }, routingKey: 'pool.gpu.run.r1' })).decision).toBe('reject');
    expect(f.calls).toEqual([]);
    expect((await handleMessage(content, f.ports, f.control, { headers: { sig: 'good' }, routingKey: 'run.r1' })).decision).toBe('ack');
    expect(f.calls).toContain('start');
  });

  describe('poison: counts starts, not deliveries', () => {
    it('counts a start, as this worker, for every command it starts', async () => {
      const f = fakes([{ kind: 'started' }]);
      await handleMessage(content, f.ports, f.control);
      expect(f.starts).toEqual(['f1-L7#1@w1']);
    });

    it('a command handed back before it started is not counted, and abandon takes nothing back', async () => {
      const f = fakes([{ kind: 'started' }], { drainKill: true, neverStarts: true, result: { ...ok, outcome: 'killed', exitCode: null } });
      expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
      expect(f.starts).toEqual([]);
      expect(f.abandoned).toEqual([undefined]);
    });

    it('a started command killed by the drain takes its start back', async () => {
      const f = fakes([{ kind: 'started' }], { drainKill: true, result: { ...ok, outcome: 'killed', exitCode: null, signal: 'SIGTERM' } });
      expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
      expect(f.starts).toEqual(['f1-L7#1@w1']);
      expect(f.abandoned).toEqual([{ attempt: 1, worker: 'w1' }]);
    });

    it('dead-letters an attempt that started the limit without a result: recorded with how often and where, never run', async () => {
      const f = fakes([{ kind: 'poison', starts: { attempt: 1, n: 3, workers: ['w2', 'w3', 'w2'] } }]);
      const handled = await handleMessage(content, f.ports, f.control);
      expect(handled.decision).toBe('reject');
      expect(f.calls).not.toContain('start');
      expect(f.finished).toHaveLength(1);
      expect(f.finished[0]).toMatchObject({ id: 'f1-L7', attempt: 1, outcome: 'dead-lettered', exitCode: null, worker: 'w1', log: 'logs/x.1.log' });
      expect(f.finished[0]?.reason).toBe('started 3 time(s) without a result on workers w2, w3; the command may be killing its worker (out of memory?): dead-lettered, not run again');
    });

    it('says how much memory a poison command was last seen using, from the sample its last worker wrote', async () => {
      const f = fakes([{ kind: 'poison', starts: { attempt: 1, n: 3, workers: ['w2'] } }]);
      const gib = 1024 ** 3;
      f.ports.store.lastUsage = async () => ({ attempt: 1, rssBytes: 1.9 * gib, limitBytes: 2 * gib, worker: 'w2', pod: true, at: '' });
      expect((await handleMessage(content, f.ports, f.control)).decision).toBe('reject');
      expect(f.finished[0]?.reason).toBe("started 3 time(s) without a result on worker w2; the command may be killing its worker (out of memory: last seen using 1.9 GiB; the pod's memory limit is 2 GiB): dead-lettered, not run again");
      expect(f.finished[0]).toMatchObject({ peakRssBytes: 1.9 * gib, memoryLimitBytes: 2 * gib });
    });
  });

  it('does not start a command whose lease another worker took while this one waited or was frozen: requeued, not recorded, not counted', async () => {
    const f = fakes([{ kind: 'started' }], { leaseLost: true });
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
    expect(f.finished).toEqual([]);
    expect(f.starts).toEqual([]);
    expect(f.abandoned).toEqual([undefined]);
  });

  it('does not start a command when the start gate answered after half the lease TTL (the worker was frozen meanwhile): requeued, its start given back', async () => {
    const f = fakes([{ kind: 'started' }]);
    // The fake lease TTL is 30 ms: the clock moves 20 ms while Redis answers the gate.
    let nowMs = 1000;
    const recordStart = f.ports.store.recordStart.bind(f.ports.store);
    f.ports.store.recordStart = async (...args) => {
      const counted = await recordStart(...args);
      nowMs += 20;
      return counted;
    };
    f.ports.presence = { workerPresent: async () => true, ownUpSinceMs: () => undefined, nowMs: () => nowMs };
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
    expect(f.finished).toEqual([]);
    expect(f.startedIds).toEqual([]);
    expect(f.abandoned).toEqual([{ attempt: 1, worker: 'w1' }]);
  });

  describe('a suspect (it started before without a result) runs alone', () => {
    it('waits to be alone on the worker, runs, and ends being alone after recording', async () => {
      const f = fakes([{ kind: 'started', priorStarts: 1 }]);
      expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
      expect(f.calls).toEqual(['begin', 'alone', 'start', 'untrack', 'finish', 'alone-end', 'release']);
    });

    it('goes back to the queue, uncounted, when another suspect already waits here', async () => {
      const f = fakes([{ kind: 'started', priorStarts: 2 }], { aloneRefused: true });
      expect((await handleMessage(content, f.ports, f.control)).decision).toBe('requeue');
      expect(f.calls).not.toContain('start');
      expect(f.starts).toEqual([]);
      expect(f.calls).toContain('abandon');
    });

    it('a command never started before does not wait', async () => {
      const f = fakes([{ kind: 'started', priorStarts: 0 }]);
      await handleMessage(content, f.ports, f.control);
      expect(f.calls).not.toContain('alone');
    });
  });
});

describe('a lease whose holder is gone', () => {
  /** Redis as the begin script answers: busy while `holder` holds the lease, taken over when told it is gone. */
  function presenceFakes(holder: string, present: boolean) {
    const f = fakes([]);
    const gone: (string | undefined)[] = [];
    let nowMs = 100_000;
    f.ports.leaseTtlMs = 60_000;
    f.ports.sleep = async (ms) => {
      f.calls.push('sleep');
      nowMs += ms;
    };
    f.ports.presence = { workerPresent: async (id) => (expect(id).toBe('w2-7'), present), ownUpSinceMs: () => 0, nowMs: () => nowMs };
    f.ports.store.beginCommand = async (_runId, _id, _attempt, owner, _ttlMs, _limit, goneHolder) => {
      f.calls.push('begin');
      gone.push(goneHolder);
      expect(owner).toMatch(/^w1#\d+\+presence$/); // this worker's own presence is up: its leases say so
      if (goneHolder === holder) return { kind: 'started', priorStarts: 1 };
      // The lease expires after a minute of waiting (polled every second).
      return f.calls.filter((c) => c === 'sleep').length >= 60 ? { kind: 'started', priorStarts: 1 } : { kind: 'busy', holder };
    };
    return { ...f, gone };
  }

  it('is taken over once its worker is seen absent for the grace period, not when its lease expires; it then runs alone (a suspect)', async () => {
    const f = presenceFakes('w2-7#4+presence', false);
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
    expect(f.calls.filter((c) => c === 'sleep')).toHaveLength(5);
    expect(f.gone.at(-1)).toBe('w2-7#4+presence');
    expect(f.gone.slice(0, -1).every((one) => one === undefined)).toBe(true);
    expect(f.calls).toContain('alone');
    expect(f.calls.filter((c) => c === 'start')).toHaveLength(1);
  });

  it('is waited for while its worker is present (alive, or frozen: its connection stays open), until its lease expires', async () => {
    const f = presenceFakes('w2-7#4+presence', true);
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
    expect(f.calls.filter((c) => c === 'sleep')).toHaveLength(60);
    expect(f.gone.every((one) => one === undefined)).toBe(true);
  });

  it('is waited for when it announces no presence (an older worker), even if no such presence is there', async () => {
    const f = presenceFakes('w2-7#4', false);
    expect((await handleMessage(content, f.ports, f.control)).decision).toBe('ack');
    expect(f.calls.filter((c) => c === 'sleep')).toHaveLength(60);
    expect(f.gone.every((one) => one === undefined)).toBe(true);
  });
});
