import type { Logger } from '../../shared/observe/logger.js';
import type { AttemptKey, RunStore } from '../../shared/state/run-store.js';
import { endsAttempt, outcomeOf, type AwaitedAttempts } from './result-inbox.js';

/**
 * Safety net: a worker records a result in Redis before acking, then sends it here. If it
 * died between the two, the message never comes: pick such results up from Redis.
 */

export interface LostResultRecoveryOptions {
  runId: string;
  store: Pick<RunStore, 'latestResults'>;
  /** Lets Redis go of an attempt results.jsonl has (result-inbox.ts). */
  forget(attempt: AttemptKey): Promise<void>;
  awaited: AwaitedAttempts;
  /** How long an attempt is awaited before Redis is asked for its result, and how often. */
  intervalMs: number;
  logger: Logger;
}

/** Commands looked up in Redis per check, at most. */
const maxLookedUp = 5000;

async function recoverLostResults(options: LostResultRecoveryOptions): Promise<void> {
  const { runId, store, awaited, logger } = options;
  const stale = awaited.waitingSince(Date.now() - options.intervalMs, maxLookedUp);
  if (stale.length === 0) return;
  const found = await store.latestResults(runId, stale);
  for (const [id, record] of found) {
    const waiter = awaited.get(id);
    if (waiter === undefined || !endsAttempt(waiter.attempt, record)) continue;
    logger.info({ commandId: id, attempt: record.attempt }, 'result found in Redis (its message was lost)');
    awaited.settle(
      id,
      outcomeOf(record, () => options.forget(record)),
    );
  }
}

/** Checks every `intervalMs` until the returned function stops it. */
export function startLostResultRecovery(options: LostResultRecoveryOptions): () => void {
  const timer = setInterval(() => {
    recoverLostResults(options).catch((error: unknown) => options.logger.debug({ err: error }, 'result check in Redis failed'));
  }, options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
