import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { PhaseSpec, PlannedCommand } from '../../tasker/jobs/plan.js';
import type { PriorResults } from '../../tasker/run-state/results-file.js';
import type { CommandRef, ResultRecord } from '../../shared/state/results.js';
import {
  runPhases,
  type AttemptOutcome,
  type PhaseDispatch,
  type Progress,
  type RunPhasesOptions,
  type RunPorts,
} from '../../tasker/dispatch/run-phases.js';

/** What one fake attempt does: its result, and how long it takes (real, tiny timers). */
interface Behaviour {
  result: ExecutionResult;
  delayMs?: number;
  /** Never finishes on its own: only killAll ends it. */
  hang?: boolean;
}

function result(outcome: ExecutionResult['outcome'], exitCode: number | null, extra: Partial<ExecutionResult> = {}): ExecutionResult {
  return {
    outcome,
    exitCode,
    signal: null,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:00.010Z',
    durationMs: 10,
    tail: outcome === 'succeeded' ? '' : `output of a failure (exit ${exitCode})`,
    ...(outcome === 'succeeded' ? {} : { reason: `exit code ${exitCode}` }),
    ...extra,
  };
}

const ok = (delayMs = 0): Behaviour => ({ result: result('succeeded', 0), delayMs });
const fail = (exitCode = 1, delayMs = 0): Behaviour => ({ result: result('failed', exitCode), delayMs });

function phase(index: number, name: string, commandCount: number, fileIndex = 0): PhaseSpec {
  return { index, name, runsOn: 'workers', pool: 'default', fileIndex, selector: { kind: 'lines', fromLine: 1, toLine: 100 }, commandCount };
}

function commands(fileIndex: number, lines: readonly number[]): PlannedCommand[] {
  return lines.map((line) => ({ id: `f${fileIndex + 1}-L${line}`, file: 'jobs.sh', line, command: `cmd ${line}` }));
}

function noPrior(): PriorResults {
  return { succeeded: new Set(), attempts: new Map(), resultAttempts: new Map(), succeededByPhase: new Map() };
}

function newProgress(): Progress {
  return { phase: '', phaseIndex: 0, phaseCount: 0, total: 0, done: 0, failed: 0, running: 0, finishedThisSession: 0 };
}

interface Harness {
  ports: RunPorts;
  /** `start|end <phase> <id>#<attempt>`, in the order things happened. */
  events: string[];
  records: ResultRecord[];
  sleeps: number[];
  dispatched: string[];
  kills: string[];
  phasesListed: string[];
  maxRunning: number;
}

/**
 * Plain fake ports: no processes, no files. `behave` decides each attempt's result; `slots`
 * bounds attempts in flight per phase, as the local dispatch does.
 */
function harness(
  byPhase: Record<string, PlannedCommand[]>,
  behave: (command: CommandRef, attempt: number) => Behaviour,
  slots = 4,
  onStarted?: (running: number) => void,
): Harness {
  const h: Harness = { ports: undefined as unknown as RunPorts, events: [], records: [], sleeps: [], dispatched: [], kills: [], phasesListed: [], maxRunning: 0 };
  let clock = 1000;
  h.ports = {
    async *phaseCommands(spec) {
      h.phasesListed.push(spec.name);
      for (const command of byPhase[spec.name] ?? []) {
        await Promise.resolve();
        yield command;
      }
    },
    dispatchFor(spec): PhaseDispatch {
      let running = 0;
      const waiting: (() => void)[] = [];
      const hanging = new Set<() => void>();
      let stopped = false;
      return {
        async waitForRoom() {
          while (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
        },
        async runAttempt(command, attempt, onStart) {
          if (stopped) return undefined;
          running++;
          h.maxRunning = Math.max(h.maxRunning, running);
          h.dispatched.push(`${command.id}#${attempt}`);
          h.events.push(`start ${spec.name} ${command.id}#${attempt}`);
          onStart();
          onStarted?.(running);
          const behaviour = behave(command, attempt);
          let outcomeResult = behaviour.result;
          if (behaviour.hang === true) {
            outcomeResult = await new Promise<ExecutionResult>((resolve) => {
              const kill = (): void => resolve(result('killed', null, { signal: 'SIGTERM', reason: 'interrupted' }));
              hanging.add(kill);
            });
          } else {
            await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs ?? 0));
          }
          h.events.push(`end ${spec.name} ${command.id}#${attempt}`);
          running--;
          waiting.shift()?.();
          const outcome: AttemptOutcome = { result: outcomeResult, worker: 'fake', log: `logs/${spec.name}/${command.id}.${attempt}.log` };
          return outcome;
        },
        stopStarting(reason) {
          h.kills.push(reason);
          stopped = true;
        },
        killAll(reason) {
          h.kills.push(reason);
          stopped = true;
          for (const kill of hanging) kill();
          hanging.clear();
        },
      };
    },
    record(record) {
      h.records.push(record);
      h.events.push(`record ${record.id} ${record.outcome}`);
    },
    async sleep(ms) {
      h.sleeps.push(ms);
      await Promise.resolve();
    },
    now() {
      clock += 10;
      return clock;
    },
    logger: pino({ level: 'silent' }),
  };
  return h;
}

function options(overrides: Partial<RunPhasesOptions> = {}): RunPhasesOptions {
  return { retries: 0, retryDelayMs: 100, maxRetryDelayMs: 10_000, keepGoing: false, prior: noPrior(), mode: 'local', ...overrides };
}

describe('runPhases', () => {
  it('runs phases in order, each starting only after every attempt of the one before finished', async () => {
    const byPhase = { one: commands(0, [1, 2, 3, 4]), two: commands(0, [6, 7]), three: commands(0, [9]) };
    const delays: Record<string, number> = { 'f1-L1': 8, 'f1-L2': 1, 'f1-L3': 4, 'f1-L4': 0, 'f1-L6': 3, 'f1-L7': 0, 'f1-L9': 0 };
    const h = harness(byPhase, (command) => ok(delays[command.id]));
    const progress = newProgress();
    const outcome = await runPhases([phase(1, 'one', 4), phase(2, 'two', 2), phase(3, 'three', 1)], h.ports, options(), progress, new AbortController().signal);

    const lastIndex = (pattern: RegExp): number => h.events.reduce((last, event, i) => (pattern.test(event) ? i : last), -1);
    const firstIndex = (pattern: RegExp): number => h.events.findIndex((event) => pattern.test(event));
    expect(h.maxRunning).toBeGreaterThan(1); // the phase ran in parallel...
    expect(firstIndex(/^start two /)).toBeGreaterThan(lastIndex(/^end one /)); // ...and the barrier held
    expect(firstIndex(/^start three /)).toBeGreaterThan(lastIndex(/^end two /));
    expect(h.events.filter((event) => event.startsWith('start'))).toHaveLength(7);

    expect(outcome.interrupted).toBe(false);
    expect(outcome.failed).toEqual([]);
    expect(outcome.phases.map((p) => [p.name, p.status, p.total, p.succeeded, p.failed, p.skipped])).toEqual([
      ['one', 'succeeded', 4, 4, 0, 0],
      ['two', 'succeeded', 2, 2, 0, 0],
      ['three', 'succeeded', 1, 1, 0, 0],
    ]);
    expect(h.records.map((record) => [record.id, record.phase, record.phaseIndex, record.attempt, record.outcome])).toContainEqual(['f1-L6', 'two', 2, 1, 'succeeded']);
    expect(progress).toMatchObject({ phaseCount: 3, total: 7, done: 7, failed: 0, running: 0, finishedThisSession: 7 });
  });

  it('keeps at most the dispatch room in flight', async () => {
    const h = harness({ one: commands(0, [1, 2, 3, 4, 5, 6, 7, 8]) }, () => ok(1), 3);
    await runPhases([phase(1, 'one', 8)], h.ports, options(), newProgress(), new AbortController().signal);
    expect(h.maxRunning).toBe(3);
    expect(h.records).toHaveLength(8);
  });

  it('retries a failure up to --retries times with numbered attempts and backoff', async () => {
    const h = harness({ one: commands(0, [1, 2, 3]) }, (command, attempt) => {
      if (command.id === 'f1-L2') return attempt < 3 ? fail(7) : ok(); // succeeds on the last retry
      if (command.id === 'f1-L3') return fail(9); // never succeeds
      return ok();
    });
    const progress = newProgress();
    const outcome = await runPhases([phase(1, 'one', 3)], h.ports, options({ retries: 2, retryDelayMs: 100, maxRetryDelayMs: 150 }), progress, new AbortController().signal);

    const attemptsOf = (id: string): [number, string][] => h.records.filter((record) => record.id === id).map((record) => [record.attempt, record.outcome]);
    expect(attemptsOf('f1-L1')).toEqual([[1, 'succeeded']]);
    expect(attemptsOf('f1-L2')).toEqual([[1, 'failed'], [2, 'failed'], [3, 'succeeded']]);
    expect(attemptsOf('f1-L3')).toEqual([[1, 'failed'], [2, 'failed'], [3, 'failed']]);
    expect(h.records.find((record) => record.id === 'f1-L3' && record.attempt === 2)?.log).toBe('logs/one/f1-L3.2.log');

    // Two commands slept twice each: first retry in [50, 100], second in [75, 150] (capped at 150).
    expect(h.sleeps).toHaveLength(4);
    for (const ms of h.sleeps) {
      expect(ms).toBeGreaterThanOrEqual(50);
      expect(ms).toBeLessThanOrEqual(150);
    }

    expect(outcome.phases[0]).toMatchObject({ status: 'failed', succeeded: 2, failed: 1, skipped: 0 });
    expect(outcome.failed).toEqual([
      {
        id: 'f1-L3',
        phase: 'one',
        command: 'cmd 3',
        file: 'jobs.sh',
        line: 3,
        outcome: 'failed',
        exitCode: 9,
        signal: null,
        reason: 'exit code 9',
        attempts: 3,
        log: 'logs/one/f1-L3.3.log',
        tail: 'output of a failure (exit 9)',
      },
    ]);
    expect(progress).toMatchObject({ done: 2, failed: 1, finishedThisSession: 7 });
  });

  it('does not retry without --retries', async () => {
    const h = harness({ one: commands(0, [1]) }, () => fail(2));
    const outcome = await runPhases([phase(1, 'one', 1)], h.ports, options(), newProgress(), new AbortController().signal);
    expect(h.dispatched).toEqual(['f1-L1#1']);
    expect(h.sleeps).toEqual([]);
    expect(outcome.failed.map((failure) => [failure.id, failure.attempts, failure.exitCode])).toEqual([['f1-L1', 1, 2]]);
  });

  it('numbers new attempts after those of an earlier session', async () => {
    const prior = noPrior();
    prior.attempts.set('f1-L1', 4);
    const h = harness({ one: commands(0, [1, 2]) }, (_command, attempt) => (attempt === 5 ? fail() : ok()));
    await runPhases([phase(1, 'one', 2)], h.ports, options({ retries: 1, prior }), newProgress(), new AbortController().signal);
    expect(h.dispatched).toEqual(expect.arrayContaining(['f1-L1#5', 'f1-L1#6', 'f1-L2#1']));
    expect(h.dispatched).toHaveLength(3);
  });

  it('does not start later phases after a failure unless keepGoing', async () => {
    const byPhase = { one: commands(0, [1, 2]), two: commands(0, [4, 5]), three: commands(0, [7]) };
    const behave = (command: CommandRef): Behaviour => (command.id === 'f1-L2' ? fail(3) : ok());

    const stopped = harness(byPhase, behave);
    const outcome = await runPhases([phase(1, 'one', 2), phase(2, 'two', 2), phase(3, 'three', 1)], stopped.ports, options(), newProgress(), new AbortController().signal);
    expect(stopped.phasesListed).toEqual(['one']);
    expect(stopped.dispatched.every((attempt) => attempt === 'f1-L1#1' || attempt === 'f1-L2#1')).toBe(true);
    expect(outcome.phases.map((p) => [p.name, p.status, p.succeeded, p.failed, p.skipped])).toEqual([
      ['one', 'failed', 1, 1, 0],
      ['two', 'skipped', 0, 0, 2],
      ['three', 'skipped', 0, 0, 1],
    ]);
    expect(outcome.interrupted).toBe(false);

    const going = harness(byPhase, behave);
    const kept = await runPhases([phase(1, 'one', 2), phase(2, 'two', 2), phase(3, 'three', 1)], going.ports, options({ keepGoing: true }), newProgress(), new AbortController().signal);
    expect(going.phasesListed).toEqual(['one', 'two', 'three']);
    expect(kept.phases.map((p) => [p.name, p.status, p.succeeded, p.failed])).toEqual([
      ['one', 'failed', 1, 1],
      ['two', 'succeeded', 2, 0],
      ['three', 'succeeded', 1, 0],
    ]);
    expect(kept.failed.map((failure) => failure.id)).toEqual(['f1-L2']);
  });

  it('a phase all done in an earlier session is done, not skipped, when an earlier phase fails again', async () => {
    const prior = noPrior();
    for (const id of ['f1-L4', 'f1-L5']) prior.succeeded.add(id);
    prior.succeededByPhase.set(2, 2);
    const h = harness({ one: commands(0, [1, 2]), two: commands(0, [4, 5]), three: commands(0, [7]) }, (command) => (command.id === 'f1-L2' ? fail() : ok()));
    const outcome = await runPhases([phase(1, 'one', 2), phase(2, 'two', 2), phase(3, 'three', 1)], h.ports, options({ prior }), newProgress(), new AbortController().signal);
    expect(outcome.phases.map((p) => [p.name, p.status, p.alreadyDone, p.skipped])).toEqual([
      ['one', 'failed', 0, 0],
      ['two', 'succeeded', 2, 0],
      ['three', 'skipped', 0, 1],
    ]);
  });

  it('says where workers phases ran: local slots in a local run, workers in a distributed one', async () => {
    const phases = [{ ...phase(1, 'prep', 1), runsOn: 'tasker' as const }, phase(2, 'sim', 1)];
    const byPhase = { prep: commands(0, [1]), sim: commands(0, [3]) };
    const local = await runPhases(phases, harness(byPhase, () => ok()).ports, options({ mode: 'local' }), newProgress(), new AbortController().signal);
    expect(local.phases.map((p) => p.runsOn)).toEqual(['tasker', 'local slots']);
    const distributed = await runPhases(phases, harness(byPhase, () => ok()).ports, options({ mode: 'rabbitmq' }), newProgress(), new AbortController().signal);
    expect(distributed.phases.map((p) => p.runsOn)).toEqual(['tasker', 'workers']);
  });

  it('does not dispatch commands that succeeded in an earlier session', async () => {
    const prior = noPrior();
    for (const id of ['f1-L1', 'f1-L3', 'f1-L5', 'f1-L6']) prior.succeeded.add(id);
    prior.succeededByPhase.set(1, 2).set(2, 2);
    prior.attempts.set('f1-L1', 1).set('f1-L3', 2).set('f1-L5', 1).set('f1-L6', 1);
    const h = harness({ one: commands(0, [1, 2, 3, 4]), two: commands(0, [5, 6]), three: commands(0, [8]) }, () => ok());
    const progress = newProgress();
    const outcome = await runPhases([phase(1, 'one', 4), phase(2, 'two', 2), phase(3, 'three', 1)], h.ports, options({ prior }), progress, new AbortController().signal);

    expect([...h.dispatched].sort()).toEqual(['f1-L2#1', 'f1-L4#1', 'f1-L8#1']);
    expect(h.phasesListed).toEqual(['one', 'three']); // phase two was done entirely
    expect(outcome.phases.map((p) => [p.name, p.status, p.alreadyDone, p.succeeded, p.skipped])).toEqual([
      ['one', 'succeeded', 2, 2, 0],
      ['two', 'succeeded', 2, 0, 0],
      ['three', 'succeeded', 0, 1, 0],
    ]);
    expect(progress).toMatchObject({ total: 7, done: 7, finishedThisSession: 3 });
  });

  it('on abort, kills running attempts, records them as interrupted and starts nothing more', async () => {
    const controller = new AbortController();
    const h = harness(
      { one: commands(0, [1, 2, 3, 4]), two: commands(0, [6]) },
      () => ({ result: result('succeeded', 0), hang: true }),
      2,
      (running) => {
        if (running === 2) setTimeout(() => controller.abort(), 1);
      },
    );
    const progress = newProgress();
    const outcome = await runPhases([phase(1, 'one', 4), phase(2, 'two', 1)], h.ports, options({ retries: 3 }), progress, controller.signal);

    expect(h.kills).toEqual(['interrupted']);
    expect([...h.dispatched].sort()).toEqual(['f1-L1#1', 'f1-L2#1']); // no retries, no new commands
    expect(h.records.map((record) => [record.id, record.outcome])).toEqual(
      expect.arrayContaining([
        ['f1-L1', 'interrupted'],
        ['f1-L2', 'interrupted'],
      ]),
    );
    expect(h.records).toHaveLength(2);
    expect(h.phasesListed).toEqual(['one']);
    expect(outcome.interrupted).toBe(true);
    // The two it stopped while running are interrupted, not skipped: skipped never started.
    expect(outcome.phases.map((p) => [p.name, p.status, p.succeeded, p.failed, p.interrupted, p.skipped])).toEqual([
      ['one', 'interrupted', 0, 0, 2, 2],
      ['two', 'not-started', 0, 0, 0, 1],
    ]);
    expect(progress.running).toBe(0);
  });

  it('after an abort, a command that ends by itself is recorded as what it did; only the killed ones are interrupted', async () => {
    const controller = new AbortController();
    // f1-L1 hangs until killed; f1-L2 and f1-L3 end by themselves (success, failure) just after the abort.
    const behaviours: Record<string, Behaviour> = { 'f1-L1': { result: result('succeeded', 0), hang: true }, 'f1-L2': ok(30), 'f1-L3': fail(3, 30) };
    const h = harness({ one: commands(0, [1, 2, 3, 4, 5]) }, (command) => behaviours[command.id] ?? ok(), 3, (running) => {
      if (running === 3) setTimeout(() => controller.abort(), 1);
    });
    const outcome = await runPhases([phase(1, 'one', 5)], h.ports, options({ retries: 2 }), newProgress(), controller.signal);

    expect(h.records.map((record) => [record.id, record.attempt, record.outcome]).sort()).toEqual([
      ['f1-L1', 1, 'interrupted'],
      ['f1-L2', 1, 'succeeded'],
      ['f1-L3', 1, 'failed'], // not retried: the run stops
    ]);
    // f1-L4 and f1-L5 never started: not recorded, counted as skipped (not started), not interrupted or failed.
    expect(outcome.phases.map((p) => [p.status, p.succeeded, p.failed, p.interrupted, p.skipped])).toEqual([['interrupted', 1, 1, 1, 2]]);
  });

  it('stops retrying when the run is interrupted during the backoff wait', async () => {
    const controller = new AbortController();
    const h = harness({ one: commands(0, [1]), two: commands(0, [3]) }, () => fail(4));
    h.ports.sleep = async (ms) => {
      h.sleeps.push(ms);
      controller.abort();
      await Promise.resolve();
    };
    const outcome = await runPhases([phase(1, 'one', 1), phase(2, 'two', 1)], h.ports, options({ retries: 5 }), newProgress(), controller.signal);
    expect(h.dispatched).toEqual(['f1-L1#1']);
    expect(h.sleeps).toHaveLength(1);
    expect(h.records.map((record) => [record.attempt, record.outcome])).toEqual([[1, 'failed']]);
    expect(outcome.interrupted).toBe(true);
    expect(outcome.phases.map((p) => p.status)).toEqual(['interrupted', 'not-started']);
    // It ran and failed, and lost its next attempt to the interrupt: interrupted, not skipped.
    expect(outcome.phases.map((p) => [p.failed, p.interrupted, p.skipped])).toEqual([[0, 1, 0], [0, 0, 1]]);
  });

  it('uses the attempt number the dispatch reports, and settles after recording', async () => {
    const order: string[] = [];
    const h = harness({ one: commands(0, [1]) }, () => ok());
    const base = h.ports.dispatchFor;
    h.ports.dispatchFor = (spec) => {
      const dispatch = base(spec);
      return {
        ...dispatch,
        async runAttempt(command, attempt, onStart) {
          const outcome = await dispatch.runAttempt(command, attempt, onStart);
          if (outcome === undefined) return undefined;
          return { ...outcome, attempt: 7, settle: async () => { order.push('settle'); } };
        },
      };
    };
    const record = h.ports.record;
    h.ports.record = (entry) => {
      order.push(`record #${entry.attempt}`);
      return record(entry);
    };
    await runPhases([phase(1, 'one', 1)], h.ports, options(), newProgress(), new AbortController().signal);
    expect(order).toEqual(['record #7', 'settle']);
  });

  it('fails with the tasker error when recording a result fails, after in-flight attempts finished', async () => {
    const h = harness({ one: commands(0, [1, 2, 3]) }, (command) => ok(command.id === 'f1-L1' ? 0 : 5));
    const broken = new Error('disk full');
    h.ports.record = (entry) => {
      h.records.push(entry);
      if (entry.id === 'f1-L1') throw broken;
    };
    await expect(runPhases([phase(1, 'one', 3)], h.ports, options(), newProgress(), new AbortController().signal)).rejects.toBe(broken);
    expect(h.kills).toEqual(['tasker error']);
    const started = h.events.filter((event) => event.startsWith('start')).length;
    const ended = h.events.filter((event) => event.startsWith('end')).length;
    expect(ended).toBe(started);
  });

  describe('--halt', () => {
    const phases = [phase(1, 'one', 6), phase(2, 'two', 1)];
    const byPhase = { one: commands(0, [1, 2, 3, 4, 5, 6]), two: commands(0, [8]) };
    /** Nothing starts once the failure that halts is recorded. */
    const startsAfter = (h: Harness, id: string): string[] => h.events.slice(h.events.lastIndexOf(`record ${id} failed`)).filter((event) => event.startsWith('start'));

    it('soon: once a command failed for good nothing more starts (no command, no retry); running commands finish and count', async () => {
      // L1 fails at once; L2 runs on for a while; L3 (retries 2) fails too but is never retried.
      const h = harness(byPhase, (command) => (command.id === 'f1-L1' ? fail(5) : command.id === 'f1-L2' ? ok(30) : command.id === 'f1-L3' ? fail(6, 10) : ok()), 3);
      const outcome = await runPhases(phases, h.ports, options({ halt: 'soon', retries: 2 }), newProgress(), new AbortController().signal);
      expect(h.kills).toEqual(['halted: a command failed (--halt soon)']);
      expect(h.dispatched.filter((d) => d.startsWith('f1-L1'))).toEqual(['f1-L1#1', 'f1-L1#2', 'f1-L1#3']);
      expect(startsAfter(h, 'f1-L1')).toEqual([]);
      expect(h.records.find((r) => r.id === 'f1-L2')?.outcome).toBe('succeeded');
      expect(h.records.some((r) => r.outcome === 'interrupted')).toBe(false);
      expect(h.phasesListed).toEqual(['one']);
      const [one, two] = outcome.phases;
      expect([one!.status, two!.status, two!.skipped]).toEqual(['failed', 'skipped', 1]);
      expect(one!.succeeded + one!.failed + one!.skipped).toBe(6);
      expect(outcome.failed.map((f) => f.id)).toContain('f1-L1');
      expect(outcome.interrupted).toBe(false);
    });

    it('now: the first failure also stops the running commands, recorded as interrupted, not failed', async () => {
      const h = harness(byPhase, (command) => (command.id === 'f1-L2' ? fail(5, 5) : command.id === 'f1-L1' ? { result: result('succeeded', 0), hang: true } : ok()), 2);
      const outcome = await runPhases(phases, h.ports, options({ halt: 'now' }), newProgress(), new AbortController().signal);
      expect(h.kills).toEqual(['halted: a command failed (--halt now)']);
      expect(h.records[0]).toMatchObject({ id: 'f1-L2', outcome: 'failed' });
      expect(h.records.find((r) => r.id === 'f1-L1')?.outcome).toBe('interrupted');
      expect(startsAfter(h, 'f1-L2')).toEqual([]);
      expect(outcome.failed.map((f) => f.id)).toEqual(['f1-L2']);
      expect(outcome.phases.map((p) => [p.name, p.status, p.failed])).toEqual([
        ['one', 'failed', 1],
        ['two', 'skipped', 0],
      ]);
    });

    it('a failure that a retry overcomes does not halt', async () => {
      const h = harness(byPhase, (command, attempt) => (command.id === 'f1-L1' && attempt === 1 ? fail(5) : ok()), 2);
      const outcome = await runPhases(phases, h.ports, options({ halt: 'now', retries: 1 }), newProgress(), new AbortController().signal);
      expect(h.kills).toEqual([]);
      expect(outcome.phases.map((p) => [p.name, p.status, p.succeeded, p.failed])).toEqual([
        ['one', 'succeeded', 6, 0],
        ['two', 'succeeded', 1, 0],
      ]);
    });
  });
});
