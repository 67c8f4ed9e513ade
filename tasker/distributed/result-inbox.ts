import type { Decision } from '../../shared/broker/amqp-session.js';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import type { AttemptKey, RunStore } from '../../shared/state/run-store.js';
import { placementOfRecord, usageOfRecord, type ResultRecord } from '../../shared/state/results.js';
import type { AttemptOutcome } from '../dispatch/phase-ports.js';

/**
 * The tasker's side of results: the attempts published and awaiting one (at most `maxInFlight`, and the run's fair share),
 * the outcome a recorded result stands for, the inbox that matches each arriving result to its
 * awaited attempt by command id and attempt (no stale or duplicate result is ever counted), one
 * decision for a message of several results, and letting Redis go of what results.jsonl has.
 */

// ---- the attempts awaiting their result


export interface AwaitedAttempt {
  attempt: number;
  /** When the tasker started awaiting it (ms since the epoch). */
  since: number;
}

export interface AwaitedAttempts {
  count(): number;
  get(commandId: string): AwaitedAttempt | undefined;
  /** Starts awaiting this attempt of the command; resolves when it is settled (undefined: it never started, nothing to record). */
  awaitResult(commandId: string, attempt: number): Promise<AttemptOutcome | undefined>;
  /** The commands awaited now. */
  commandIds(): string[];
  /** Ends the command's wait with this outcome; nothing when it is not awaited. */
  settle(commandId: string, outcome: AttemptOutcome): void;
  /** Ends every wait, each with the outcome made for it (undefined: never started). */
  settleAll(outcomeFor: (awaited: AwaitedAttempt, commandId: string) => AttemptOutcome | undefined): void;
  /** Commands awaited since `cutoff` (ms since the epoch) or earlier, at most `limit`. */
  waitingSince(cutoff: number, limit: number): string[];
  /** Resolves when another attempt may be awaited (AwaitedLimits). */
  waitForRoom(): Promise<void>;
}

interface Waiter extends AwaitedAttempt {
  resolve: (outcome: AttemptOutcome | undefined) => void;
}

/**
 * What bounds the attempts awaited: `maxInFlight` always, and the run's fair-share window
 * (run-share.ts) read at each check. Once full, room opens again only when a batch (a bundle) can
 * go: topping up one at a time would send bundles of one.
 */
export interface AwaitedLimits {
  maxInFlight: number;
  window?(): number;
  batch?(): number;
}

export function createAwaitedAttempts(limits: AwaitedLimits): AwaitedAttempts & { wake(): void } {
  const waiting = new Map<string, Waiter>();
  const roomWaiters: (() => void)[] = [];
  let filling = true;

  const hasRoom = (): boolean => {
    const limit = Math.min(limits.maxInFlight, limits.window?.() ?? Number.POSITIVE_INFINITY);
    if (waiting.size >= limit) {
      filling = false;
      return false;
    }
    if (!filling && waiting.size <= limit - Math.max(1, Math.min(limits.batch?.() ?? 1, Math.floor(limit / 2)))) filling = true;
    return filling;
  };
  const freeRoom = (): void => {
    while (roomWaiters.length > 0 && hasRoom()) roomWaiters.shift()?.();
  };

  return {
    wake: freeRoom,
    count: () => waiting.size,
    get: (commandId) => waiting.get(commandId),
    awaitResult(commandId, attempt) {
      return new Promise<AttemptOutcome | undefined>((resolve) => waiting.set(commandId, { attempt, since: Date.now(), resolve }));
    },
    commandIds: () => [...waiting.keys()],
    settle(commandId, outcome) {
      const waiter = waiting.get(commandId);
      if (waiter === undefined) return;
      waiting.delete(commandId);
      freeRoom();
      waiter.resolve(outcome);
    },
    settleAll(outcomeFor) {
      for (const [id, waiter] of waiting) {
        waiting.delete(id);
        waiter.resolve(outcomeFor(waiter, id));
      }
      freeRoom();
    },
    waitingSince(cutoff, limit) {
      return [...waiting.entries()]
        .filter(([, waiter]) => waiter.since <= cutoff)
        .slice(0, limit)
        .map(([id]) => id);
    },
    async waitForRoom() {
      while (!hasRoom()) await new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
  };
}

// ---- the outcome a recorded result stands for


function toExecution(record: ResultRecord): ExecutionResult {
  const result: ExecutionResult = {
    outcome: record.outcome === 'interrupted' || record.outcome === 'dead-lettered' ? 'failed' : record.outcome,
    exitCode: record.exitCode,
    signal: record.signal,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    durationMs: record.durationMs,
    tail: record.tail ?? '',
  };
  if (record.reason !== undefined) result.reason = record.reason;
  if (record.uploaded !== undefined) result.uploaded = record.uploaded;
  const usage = usageOfRecord(record);
  if (usage !== undefined) result.usage = usage;
  return result;
}

/** The outcome of an attempt from its recorded result; `settle` runs once the tasker recorded it. */
export function outcomeOf(record: ResultRecord, settle: () => Promise<void>): AttemptOutcome {
  const outcome: AttemptOutcome = { result: toExecution(record), worker: record.worker, log: record.log, attempt: record.attempt, settle };
  if (record.outcome === 'dead-lettered') outcome.deadLettered = true;
  if (record.starts !== undefined) outcome.starts = record.starts;
  const placement = placementOfRecord(record);
  if (placement !== undefined) outcome.placement = placement;
  return outcome;
}

/**
 * Whether a result ends the awaited attempt: the awaited attempt's result; or a success of an earlier
 * attempt, which is how a worker answers a command that already succeeded (e.g. one the previous
 * tasker recorded as interrupted when its pod was stopped, and this one published again): the
 * command is done either way.
 */
export function endsAttempt(awaitedAttempt: number, record: ResultRecord): boolean {
  return awaitedAttempt === record.attempt || record.outcome === 'succeeded';
}

/** The outcome of an attempt the tasker stopped awaiting while a worker ran it (interrupt, cancel); `now` is an ISO timestamp. */
export function killedOutcome(attempt: number, reason: string, now: string): AttemptOutcome {
  return {
    result: { outcome: 'killed', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `tasker ${reason}; still running on a worker` },
    worker: 'tasker',
    log: '',
    attempt,
  };
}

// ---- the inbox


export interface ResultInboxOptions {
  /** Lets Redis go of an attempt results.jsonl has (createForgetRecorded, below). */
  forget(attempt: AttemptKey): Promise<void>;
  awaited: AwaitedAttempts;
  /** Highest attempt per command with a result in results.jsonl (from earlier sessions; interrupted ones not counted). */
  recordedAttempts: ReadonlyMap<string, number>;
}

export interface ResultInbox {
  /** Takes one result of this run; resolves with 'ack' once it is recorded, or at once when it counts for nothing. */
  deliver(record: ResultRecord): Promise<Decision>;
  /** The held result of this command that answers `attempt` (or a later one), if one arrived early. */
  claimEarly(commandId: string, attempt: number): AttemptOutcome | undefined;
  /** When the last result arrived (ms since the epoch; the inbox's creation before any). */
  lastProgressAt(): number;
}

interface Arrived {
  record: ResultRecord;
  /** Settles the message's part of this result. */
  done(decision: Decision): void;
}

/**
 * A held result stays unacked until its command's turn comes. Each result's decision (always ack)
 * resolves once the result is recorded or known to count for nothing.
 */
export function createResultInbox(options: ResultInboxOptions): ResultInbox {
  const { awaited } = options;
  const early = new Map<string, Arrived>();
  let lastProgressAt = Date.now();

  /** Once the tasker recorded the result, the command is no longer in flight and its message goes. */
  const recordedOutcome = ({ record, done }: Arrived): AttemptOutcome =>
    outcomeOf(record, async () => {
      await options.forget(record);
      done('ack');
    });

  const hold = (arrived: Arrived): void => {
    const held = early.get(arrived.record.id);
    if (held !== undefined) {
      if (held.record.attempt >= arrived.record.attempt) {
        arrived.done('ack');
        return;
      }
      held.done('ack');
    }
    early.set(arrived.record.id, arrived);
  };

  return {
    deliver(record) {
      lastProgressAt = Date.now();
      const waiter = awaited.get(record.id);
      return new Promise<Decision>((done) => {
        if (waiter !== undefined && endsAttempt(waiter.attempt, record)) awaited.settle(record.id, recordedOutcome({ record, done }));
        else if (record.attempt <= (options.recordedAttempts.get(record.id) ?? 0)) done('ack'); // recorded by an earlier tasker of this run, which died before acking it
        else if (waiter !== undefined && record.attempt < waiter.attempt) done('ack'); // an older attempt's late or duplicate result
        // Not awaited yet: an attempt published by a previous tasker of this run, whose phase
        // this tasker has not reached. Held (unacked) until it is.
        else hold({ record, done });
      });
    },
    claimEarly(commandId, attempt) {
      const held = early.get(commandId);
      if (held === undefined) return undefined;
      early.delete(commandId);
      if (held.record.attempt >= attempt) return recordedOutcome(held);
      held.done('ack'); // a stale attempt's late result
      return undefined;
    },
    lastProgressAt: () => lastProgressAt,
  };
}

/**
 * One decision for a message that carries several records (a bundle's results): ack once every
 * record's decision is ack; requeue or reject as soon as one record's decision is.
 */
export function combinedDecision(decisions: readonly Promise<Decision>[]): Promise<Decision> {
  if (decisions.length === 1) return decisions[0]!;
  return new Promise((resolve, reject) => {
    let acked = 0;
    for (const decision of decisions) {
      decision.then((one) => {
        if (one !== 'ack') resolve(one);
        else if (++acked === decisions.length) resolve('ack');
      }, reject);
    }
  });
}

// ---- letting Redis go of what results.jsonl has

/**
 * Once results.jsonl has an attempt, Redis lets go of it (its record, its published mark; the
 * bit saying it finished stays): Redis holds what is in flight, not the run's history. The
 * attempts recorded in one turn of the event loop (a bundle's results arrive together) are let
 * go of in one round trip.
 */
export function createForgetRecorded(store: Pick<RunStore, 'forgetRecorded'>, runId: string): (attempt: AttemptKey) => Promise<void> {
  let batch: { attempts: AttemptKey[]; done: Promise<void> } | undefined;
  return (attempt) => {
    if (batch === undefined) {
      const attempts: AttemptKey[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        batch = undefined;
        return store.forgetRecorded(runId, attempts);
      });
      batch = { attempts, done };
    }
    batch.attempts.push(attempt);
    return batch.done;
  };
}
