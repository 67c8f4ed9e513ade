import { pino } from 'pino';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { BeginOutcome, RunStanding } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import type { UploadReport } from '../../shared/storage/outputs.js';
import type { Control, MessagePorts, StartedCommand } from '../../worker/ports.js';

/**
 * The one fake of the worker's message ports and control (worker/ports.ts): plain functions that
 * record what the pipeline asked for, in `calls`, with no broker, Redis or processes.
 */

export const succeeded: ExecutionResult = { outcome: 'succeeded', exitCode: 0, signal: null, startedAt: 'a', finishedAt: 'b', durationMs: 5, tail: '' };

export interface FakeWorkerOptions {
  /** Redis' answer to each begin, by command id. Default: started. */
  begin?: (id: string) => BeginOutcome;
  /** What every command that starts ends with. Default: succeeded. */
  result?: ExecutionResult;
  /** Commands end without having started (handed back before a runner was free). */
  neverStarts?: boolean;
  /** Whether the start gate finds this command's lease lost (its start refused). Default: never. */
  leaseLost?: (id: string) => boolean;
  /** What the output watch's `finish()` reports. Default: ok, no keys. */
  upload?: UploadReport;
  /** The attempt's log path. Default: `logs/x.1.log` for every attempt. */
  log?: (id: string) => string;
  /** Command slots at once. Default: unlimited. */
  slots?: number;
  /** Whether the worker drains: no slot is given. Default: false. */
  draining?: boolean;
  /** Whether shutdown killed the commands (they are requeued). Default: false. */
  drainKill?: boolean;
  /** Another suspect already waits to run alone. Default: false. */
  aloneRefused?: boolean;
  /** Whether the worker sees the run's directory; unset: the check is not wired. */
  sees?: boolean;
  /** How Redis holds the run, asked for a run not seen. Default: live. */
  standing?: RunStanding;
}

/** `begin` answers in this order, then busy (held by "other") for ever. */
export function inOrder(answers: BeginOutcome[]): (id: string) => BeginOutcome {
  return () => answers.shift() ?? { kind: 'busy', holder: 'other' };
}

/** `begin` answers by command id, else started. */
export function byId(answers: Record<string, BeginOutcome>): (id: string) => BeginOutcome {
  return (id) => answers[id] ?? { kind: 'started' };
}

export function fakeWorker(options: FakeWorkerOptions = {}) {
  const calls: string[] = [];
  /** Starts counted in Redis (`ID#ATTEMPT@WORKER`). */
  const starts: string[] = [];
  const abandoned: unknown[] = [];
  const finished: ResultRecord[] = [];
  /** The records of each result message sent. */
  const messages: ResultRecord[][] = [];
  const startedIds: string[] = [];
  let slept = 0;
  let killed = false;
  const begin = options.begin ?? byId({});
  const log = options.log ?? (() => 'logs/x.1.log');
  const ports: MessagePorts = {
    logger: pino({ level: 'silent' }),
    workerId: 'w1',
    leaseTtlMs: 30,
    startLimit: 3,
    logOf: (message) => log(message.id),
    sleep: async (ms) => {
      calls.push('sleep');
      slept += ms;
    },
    store: {
      beginCommand: async (_runId, id) => {
        calls.push('begin');
        return begin(id);
      },
      finishCommand: async (_runId, record) => {
        calls.push('finish');
        finished.push(record);
      },
      recordStart: async (_runId, id, attempt, worker) => {
        if (options.leaseLost?.(id) === true) return -1;
        starts.push(`${id}#${attempt}@${worker}`);
        return starts.filter((one) => one.startsWith(`${id}#${attempt}@`)).length;
      },
      abandonCommand: async (_runId, _id, _owner, started) => {
        calls.push('abandon');
        abandoned.push(started);
      },
      renewLease: async () => true,
    },
    // As the executor does: asks beforeStart with a runner free; a refused command ends unstarted.
    start: (message, beforeStart): StartedCommand => {
      calls.push('start');
      const whenStarted = options.neverStarts === true ? Promise.resolve(false) : Promise.resolve(beforeStart?.() ?? true);
      let started = false;
      const result = whenStarted.then(async (run) => {
        started = run;
        if (run) startedIds.push(message.id);
        await new Promise((resolve) => setImmediate(resolve)); // commands of one bundle overlap
        return run ? (options.result ?? succeeded) : { ...succeeded, outcome: 'killed' as const, exitCode: null, reason: 'not started' };
      });
      return { result, kill: () => (killed = true), started: () => started, whenStarted, log: log(message.id) };
    },
    publishResults: async (_runId, records) => {
      calls.push('publish');
      messages.push([...records]);
    },
    watchOutputs: async () => {
      calls.push('watch');
      return {
        finish: async () => {
          calls.push('upload');
          return options.upload ?? { ok: true, keys: [] };
        },
      };
    },
    ...(options.sees === undefined ? {} : { seesRun: async () => options.sees === true, unseenHoldMs: () => 1000, runStanding: async () => options.standing ?? 'live' }),
  };
  const slots = createFakeSlots(options.slots ?? Number.POSITIVE_INFINITY, calls);
  const control: Control = {
    draining: () => options.draining ?? false,
    acquireSlot: async () => (options.draining === true ? undefined : slots.acquire()),
    track: () => () => calls.push('untrack'),
    killedForDrain: () => options.drainKill ?? false,
    runAlone: async () => {
      calls.push('alone');
      return options.aloneRefused === true ? undefined : () => calls.push('alone-end');
    },
    waitingForLease: () => {
      calls.push('wait');
      return () => calls.push('wait-end');
    },
  };
  return {
    ports,
    control,
    calls,
    starts,
    abandoned,
    finished,
    messages,
    /** Every record sent to the tasker, in order. */
    published: () => messages.flat(),
    startedIds,
    slept: () => slept,
    killed: () => killed,
    peak: () => slots.peak(),
  };
}

/** `total` slots; a release is recorded as 'release'. */
function createFakeSlots(total: number, calls: string[]) {
  let taken = 0;
  let peak = 0;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<() => void> {
      while (taken >= total) await new Promise<void>((resolve) => waiting.push(resolve));
      taken++;
      peak = Math.max(peak, taken);
      return () => {
        calls.push('release');
        taken--;
        waiting.shift()?.();
      };
    },
    peak: () => peak,
  };
}
