import type { LostQueueRecovery } from './lost-queue-recovery.js';
import type { PhaseBundler } from './phase-bundler.js';
import type { AwaitedAttempts, ResultInbox } from './result-inbox.js';
import type { PhaseDispatch } from '../dispatch/phase-ports.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';

/**
 * One phase's dispatch through RabbitMQ: an attempt is awaited, then published (alone or in a
 * bundle, phase-bundler.ts) unless a previous tasker of this run already did, and settled by its result.
 */

export interface DistributedDispatchParts {
  awaited: AwaitedAttempts;
  inbox: ResultInbox;
  resumed: ResumedAttempts;
  bundler: PhaseBundler;
  /** Publishes an awaited attempt again if its queue is deleted meanwhile. */
  recovery: Pick<LostQueueRecovery, 'track'>;
  phase: PhaseSpec;
  /** Settles every awaited attempt when the tasker stops (wind-down.ts); runs once per run. */
  windDown(reason: string): void;
}

export interface DistributedDispatch extends PhaseDispatch {
  /** The phase's commands not handed over yet, as the phase loop last said (run-share.ts). */
  backlog(): number;
}

export function createDistributedDispatch(parts: DistributedDispatchParts): DistributedDispatch {
  const { awaited, inbox, resumed, bundler, recovery, phase, windDown } = parts;
  let backlog = phase.commandCount;
  return {
    backlog: () => backlog,
    async waitForRoom(commandsLeft) {
      backlog = commandsLeft;
      await awaited.waitForRoom();
      // This one is about to be awaited: counted in flight from now on.
      backlog = commandsLeft - 1;
    },
    async runAttempt(command, attempt, onStart) {
      const claimed = resumed.claim(command.id, attempt);
      const early = inbox.claimEarly(command.id, claimed.attempt);
      if (early !== undefined) return early;
      // Tracked from before it is published: a queue lost at any time after that sends it again.
      const untrack = recovery.track(phase, command, claimed.attempt, !claimed.publish);
      const outcome = awaited.awaitResult(command.id, claimed.attempt).finally(untrack);
      // Dropped before it was published (interrupt): settled by killAll, never started.
      if (claimed.publish && !(await bundler.add(command, claimed.attempt))) return outcome;
      onStart();
      const settled = await outcome;
      if (settled === undefined) return undefined; // the tasker stopped before a worker started it
      // How long the phase's commands take sizes its next bundles; a run the tasker stopped awaiting says nothing of that.
      if (settled.worker !== 'tasker') bundler.observe(settled.result.durationMs);
      return settled;
    },
    killAll(reason) {
      // The workers keep running what they have: a restarted tasker awaits those results.
      bundler.dropPending();
      windDown(reason);
    },
  };
}

// ---- attempts a previous tasker of this run published and nobody recorded yet: their results
// are still to come, so they are awaited rather than published again.

export interface ClaimedAttempt {
  /** The attempt to await: the one published earlier, or the one asked for. */
  attempt: number;
  /** False when an earlier tasker already published it. */
  publish: boolean;
}

export interface ResumedAttempts {
  /** What to do for this command's `attempt`; a command's earlier publication counts once only. */
  claim(commandId: string, attempt: number): ClaimedAttempt;
  /** Attempts of the previous tasker not claimed yet. */
  pending(): number;
}

/**
 * `recordedAttempts`: the highest attempt per command with a result in results.jsonl (from
 * earlier sessions). An attempt the previous tasker recorded as interrupted has none: if it is
 * still published (queued, or running on a worker), it is awaited, so it runs once, not twice.
 * One a worker dropped while the run was stopped is no longer published: it is published again.
 */
export async function loadResumedAttempts(
  store: Pick<RunStore, 'publishedAttempts'>,
  runId: string,
  recordedAttempts: ReadonlyMap<string, number>,
  logger: Logger,
): Promise<ResumedAttempts> {
  const inFlightBefore = await store.publishedAttempts(runId);
  if (inFlightBefore.size > 0) {
    logger.info({ runId, inFlight: inFlightBefore.size }, 'resuming: commands published by the previous tasker are awaited, not published again');
  }
  return {
    claim(commandId, attempt) {
      const previous = inFlightBefore.get(commandId);
      inFlightBefore.delete(commandId);
      // Published by an earlier tasker and not yet recorded: await it rather than publish again.
      const awaitPrevious = previous !== undefined && previous > (recordedAttempts.get(commandId) ?? 0);
      return awaitPrevious ? { attempt: previous, publish: false } : { attempt, publish: true };
    },
    pending: () => inFlightBefore.size,
  };
}
