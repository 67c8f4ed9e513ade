import type { AttemptKey, RunStore } from '../../shared/state/run-store.js';

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
