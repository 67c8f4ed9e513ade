import type { PhaseSpec } from '../jobs/plan.js';
import { killedOutcome } from './recorded-outcome.js';
import type { AwaitedAttempts } from './awaited-attempts.js';
import type { PublishCommand } from './command-publisher.js';
import type { ResultInbox } from './result-inbox.js';
import type { ResumedAttempts } from './resumed-attempts.js';
import type { PhaseDispatch } from '../dispatch/run-phases.js';

/** One phase's dispatch through RabbitMQ: an attempt is published, then settled by its result. */

export interface DistributedDispatchParts {
  awaited: AwaitedAttempts;
  inbox: ResultInbox;
  resumed: ResumedAttempts;
  publish: PublishCommand;
}

export function createDistributedDispatch(phase: PhaseSpec, parts: DistributedDispatchParts): PhaseDispatch {
  const { awaited, inbox, resumed } = parts;
  return {
    waitForRoom: () => awaited.waitForRoom(),
    async runAttempt(command, attempt, onStart) {
      const claimed = resumed.claim(command.id, attempt);
      const early = inbox.claimEarly(command.id, claimed.attempt);
      if (early !== undefined) return early;
      const outcome = awaited.awaitResult(command.id, claimed.attempt);
      if (claimed.publish) await parts.publish(phase, command, claimed.attempt);
      onStart();
      return outcome;
    },
    killAll(reason) {
      // The workers keep running what they have: a restarted tasker awaits those results.
      const now = new Date().toISOString();
      awaited.settleAll((waiter) => killedOutcome(waiter.attempt, reason, now));
    },
  };
}
