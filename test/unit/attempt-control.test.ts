import { describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../shared/broker/messages.js';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { StartedCommand, WorkerMetrics } from '../../worker/ports.js';
import { createAttemptControl, type AttemptControlOptions } from '../../worker/flow/attempt-control.js';

/** The pipeline's `Control` port over plain fakes of the slots, running commands, lookahead and extra consumers. */

const message = { id: 'f1-L7', runId: 'r1' } as CommandMessage;
const result: ExecutionResult = { outcome: 'succeeded', exitCode: 0, signal: null, startedAt: 'a', finishedAt: 'b', durationMs: 420, tail: '' };

function command(ends: Promise<ExecutionResult> = Promise.resolve(result)): StartedCommand {
  return { result: ends, kill: () => undefined, started: () => true, whenStarted: Promise.resolve(true), log: 'logs/x.1.log' };
}

function fakes(options: { killedForDrain?: () => boolean; freeNow?: boolean; mayHold?: boolean } = {}) {
  const calls: unknown[][] = [];
  const record = (...call: unknown[]): void => void calls.push(call);
  const release = (): void => undefined;
  const endAlone = (): void => undefined;
  const endWait = (): void => record('end wait');
  const slots: AttemptControlOptions['slots'] = {
    acquire: async (patient) => {
      record('acquire', patient);
      return release;
    },
    draining: () => options.freeNow === undefined,
    runAlone: async () => endAlone,
    freeNow: () => options.freeNow ?? false,
  };
  const running: AttemptControlOptions['running'] = {
    add: (started, tracked) => record('add', started, tracked),
    remove: (started) => record('remove', started),
    killedForDrain: () => options.killedForDrain?.() ?? false,
  };
  const metrics: Pick<WorkerMetrics, 'commandFinished'> = { commandFinished: (outcome, durationMs) => record('metrics', outcome, durationMs) };
  const control = createAttemptControl({
    slots,
    running,
    runningChanged: () => record('runningChanged'),
    lookahead: {
      commandFinished: (durationMs, finished) => record('lookahead', durationMs, finished?.id),
      mayHold: (held) => {
        record('mayHold', held.id);
        return options.mayHold ?? true;
      },
    },
    extra: {
      begin: () => {
        record('begin');
        return endWait;
      },
    },
    metrics: metrics as WorkerMetrics,
  });
  return { calls, control, release, endAlone, endWait };
}

/** Lets the command's result callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('tracking a command', () => {
  it('adds it to the running commands and says what runs changed', () => {
    const f = fakes();
    const started = command(new Promise(() => undefined));
    f.control.track(started, message);
    expect(f.calls).toEqual([['add', started, message], ['runningChanged']]);
  });

  it('removes it and says so again when untracked', () => {
    const f = fakes();
    const started = command(new Promise(() => undefined));
    const untrack = f.control.track(started, message);
    f.calls.length = 0;
    untrack();
    expect(f.calls).toEqual([['remove', started], ['runningChanged']]);
  });

  it('hands the duration of a command that ran to its end to the lookahead', async () => {
    const f = fakes();
    f.control.track(command(), message);
    await settle();
    expect(f.calls.slice(2)).toEqual([['lookahead', 420, 'f1-L7']]);
  });

  it('counts a command killed for the drain as requeued, and keeps it from the lookahead', async () => {
    const f = fakes({ killedForDrain: () => true });
    f.control.track(command(), message);
    await settle();
    expect(f.calls.slice(2)).toEqual([['metrics', 'requeued', 420]]);
  });

  it('asks whether it was killed for the drain when it ends, not when it was tracked', async () => {
    let killed = false;
    const f = fakes({ killedForDrain: () => killed });
    let end!: (ended: ExecutionResult) => void;
    f.control.track(command(new Promise((resolve) => (end = resolve))), message);
    killed = true;
    end(result);
    await settle();
    expect(f.calls.slice(2)).toEqual([['metrics', 'requeued', 420]]);
  });

  it('reports nothing for a command whose executor failed (the message handler requeues it)', async () => {
    const f = fakes();
    f.control.track(command(Promise.reject(new Error('executor gone'))), message);
    await settle();
    expect(f.calls.slice(2)).toEqual([]);
  });
});

describe('the rest of the control port', () => {
  it('begins one extra consumer for a message waiting for a lease, and returns its end', () => {
    const f = fakes();
    const end = f.control.waitingForLease();
    end();
    expect([f.calls, end]).toEqual([[['begin'], ['end wait']], f.endWait]);
  });

  it('acquires a slot, patient or not, from the slots', async () => {
    const f = fakes();
    const release = await f.control.acquireSlot(true);
    await f.control.acquireSlot();
    expect([f.calls, release]).toEqual([[['acquire', true], ['acquire', undefined]], f.release]);
  });

  it('acquires a slot for a message at once while one is free, without asking the lookahead', async () => {
    const f = fakes({ freeNow: true });
    expect(await f.control.acquireSlot(false, message)).toBe(f.release);
    expect(f.calls).toEqual([['acquire', false]]);
  });

  it('waits for a slot for a message whose phase the lookahead may hold', async () => {
    const f = fakes({ freeNow: false, mayHold: true });
    expect(await f.control.acquireSlot(false, message)).toBe(f.release);
    expect(f.calls).toEqual([['mayHold', 'f1-L7'], ['acquire', false]]);
  });

  it('gives no slot to a message the lookahead may not hold: it goes back to the queue at once', async () => {
    const f = fakes({ freeNow: false, mayHold: false });
    expect(await f.control.acquireSlot(false, message)).toBeUndefined();
    expect(f.calls).toEqual([['mayHold', 'f1-L7']]);
  });

  it('runs alone through the slots', async () => {
    const f = fakes();
    expect(await f.control.runAlone()).toBe(f.endAlone);
  });

  it('says draining as the slots do', () => {
    expect(fakes().control.draining()).toBe(true);
  });

  it('says killed for drain as the running commands do', () => {
    expect(fakes({ killedForDrain: () => true }).control.killedForDrain(command())).toBe(true);
  });
});
