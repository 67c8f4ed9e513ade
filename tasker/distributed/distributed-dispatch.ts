import type { LostQueueRecovery } from './lost-queue-recovery.js';
import type { PhaseBundler } from './phase-bundler.js';
import { killedOutcome, type AwaitedAttempts, type ResultInbox } from './result-inbox.js';
import type { ResumedAttempts } from './resumed-attempts.js';
import type { PhaseDispatch } from '../dispatch/phase-ports.js';
import type { PhaseSpec } from '../jobs/plan.js';

/**
 * One phase's dispatch through RabbitMQ: an attempt is published (alone or in a bundle, see
 * phase-bundler.ts), then settled by its result.
 */

export interface DistributedDispatchParts {
  awaited: AwaitedAttempts;
  inbox: ResultInbox;
  resumed: ResumedAttempts;
  bundler: PhaseBundler;
  /** Publishes an awaited attempt again if its queue is deleted meanwhile. */
  recovery: Pick<LostQueueRecovery, 'track'>;
  phase: PhaseSpec;
}

export function createDistributedDispatch(parts: DistributedDispatchParts): PhaseDispatch {
  const { awaited, inbox, resumed, bundler, recovery, phase } = parts;
  return {
    waitForRoom: () => awaited.waitForRoom(),
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
      // How long the phase's commands take sizes its next bundles; a run the tasker stopped awaiting says nothing of that.
      if (settled.worker !== 'tasker') bundler.observe(settled.result.durationMs);
      return settled;
    },
    killAll(reason) {
      // The workers keep running what they have: a restarted tasker awaits those results.
      const now = new Date().toISOString();
      awaited.settleAll((waiter) => killedOutcome(waiter.attempt, reason, now));
      bundler.dropPending();
    },
  };
}
