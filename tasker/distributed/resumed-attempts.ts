import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';

/**
 * Attempts a previous tasker of this run published and nobody recorded yet: their results are
 * still to come, so they are awaited rather than published again.
 */

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
