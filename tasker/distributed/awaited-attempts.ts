import type { AttemptOutcome } from '../dispatch/run-phases.js';

/**
 * The attempts published and awaiting their result, one per command, and the room they leave:
 * at most `maxInFlight` are awaited at once, which bounds memory and the work queue's length.
 */

export interface AwaitedAttempt {
  attempt: number;
  /** When the tasker started awaiting it (ms since the epoch). */
  since: number;
}

export interface AwaitedAttempts {
  count(): number;
  get(commandId: string): AwaitedAttempt | undefined;
  /** Starts awaiting this attempt of the command; resolves when it is settled. */
  awaitResult(commandId: string, attempt: number): Promise<AttemptOutcome>;
  /** Ends the command's wait with this outcome; nothing when it is not awaited. */
  settle(commandId: string, outcome: AttemptOutcome): void;
  /** Ends every wait, each with the outcome made for it. */
  settleAll(outcomeFor: (awaited: AwaitedAttempt) => AttemptOutcome): void;
  /** Commands awaited since `cutoff` (ms since the epoch) or earlier, at most `limit`. */
  waitingSince(cutoff: number, limit: number): string[];
  /** Resolves when fewer than `maxInFlight` attempts are awaited. */
  waitForRoom(): Promise<void>;
}

interface Waiter extends AwaitedAttempt {
  resolve: (outcome: AttemptOutcome) => void;
}

export function createAwaitedAttempts(maxInFlight: number): AwaitedAttempts {
  const waiting = new Map<string, Waiter>();
  const roomWaiters: (() => void)[] = [];

  const freeRoom = (): void => {
    while (roomWaiters.length > 0 && waiting.size < maxInFlight) roomWaiters.shift()?.();
  };

  return {
    count: () => waiting.size,
    get: (commandId) => waiting.get(commandId),
    awaitResult(commandId, attempt) {
      return new Promise<AttemptOutcome>((resolve) => waiting.set(commandId, { attempt, since: Date.now(), resolve }));
    },
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
        waiter.resolve(outcomeFor(waiter));
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
      while (waiting.size >= maxInFlight) await new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
  };
}
