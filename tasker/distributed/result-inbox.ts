import type { Decision } from '../../shared/broker/amqp-session.js';
import type { AttemptKey } from '../../shared/redis/redis-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { endsAttempt, outcomeOf } from './recorded-outcome.js';
import type { AwaitedAttempts } from './awaited-attempts.js';
import type { AttemptOutcome } from '../dispatch/run-phases.js';

/**
 * Matches the results that arrive on the run queue to the attempts awaiting them, by command id
 * and attempt, so no stale or duplicate result is ever counted; one nothing awaits yet is held.
 */

export interface ResultInboxOptions {
  /** Lets Redis go of an attempt results.jsonl has (forget-recorded.ts). */
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
