import { formatDuration } from '../../shared/config/duration.js';
import { InputError } from '../../shared/errors.js';
import type { Names } from '../../shared/config/names.js';
import type { Cancellation, RunMeta, RunStore } from '../../shared/state/run-store.js';
import { taskerAlive } from '../report/run-status.js';

/**
 * `tasker cancel`: marks a run cancelled in Redis. Workers start none of its commands from then on
 * (the begin script refuses them), and its tasker, which looks every second, stops and records the
 * run as cancelled. A run no tasker runs is recorded cancelled here.
 */

export interface CancelReport {
  runId: string;
  cancellation: Cancellation;
  /** Cancelled before (by someone else, or by an earlier `tasker cancel`): nothing was changed. */
  before: boolean;
  /** Its tasker was alive: 'stopped' once it recorded the cancel, 'still running' when it did not within the wait. */
  tasker: 'none' | 'stopped' | 'still running';
}

type CancelStore = Pick<RunStore, 'getRun' | 'cancellation' | 'cancelRun' | 'updateRun'>;

/** How a cancelled run's state reads in Redis (`tasker status`). */
export function cancelledStatus(cancellation: Cancellation): string {
  return `cancelled by ${cancellation.by}${cancellation.reason === undefined ? '' : `: ${cancellation.reason}`}`;
}

export async function cancelRun(store: CancelStore, names: Names, runId: string, cancellation: Cancellation, options: { now: () => number; waitMs: number }): Promise<CancelReport> {
  const run = await store.getRun(runId);
  if (run === undefined) throw new InputError('run-state', `no run "${runId}" to cancel (namespace ${names.namespace})`);
  const earlier = await store.cancellation(runId);
  if (earlier !== undefined) return { runId, cancellation: earlier, before: true, tasker: 'none' };
  if (run.state === 'finished') throw new InputError('run-state', `run ${runId} is finished: nothing to cancel (tasker purge ${runId} removes it)`);
  const alive = taskerAlive(run, options.now());
  await store.cancelRun(runId, cancellation);
  if (!alive) {
    // No tasker to record it: an interrupted run, or one whose tasker was killed.
    await store.updateRun(runId, { state: 'cancelled', status: cancelledStatus(cancellation) });
    return { runId, cancellation, before: false, tasker: 'none' };
  }
  const stopped = await waitForTasker(store, runId, options);
  return { runId, cancellation, before: false, tasker: stopped ? 'stopped' : 'still running' };
}

/** Waits until the run's tasker recorded the cancel (its state is no longer running). */
async function waitForTasker(store: CancelStore, runId: string, options: { now: () => number; waitMs: number }): Promise<boolean> {
  const deadline = options.now() + options.waitMs;
  let run: RunMeta | undefined;
  do {
    await new Promise((resolve) => setTimeout(resolve, 200));
    run = await store.getRun(runId);
  } while (run?.state === 'running' && options.now() < deadline);
  return run?.state !== 'running';
}

/** Why `tasker purge` refuses a run whose tasker is alive; undefined when it may purge. */
export async function purgeRefusal(store: Pick<RunStore, 'cancellation'>, run: RunMeta, now: number, force: boolean): Promise<string | undefined> {
  if (!taskerAlive(run, now)) return undefined;
  const heard = `its tasker ${run.host} sent a heartbeat ${formatDuration(now - Date.parse(run.heartbeatAt))} ago`;
  if ((await store.cancellation(run.runId)) === undefined) return `run ${run.runId} is in progress (${heard}); cancel it first: tasker cancel ${run.runId}`;
  if (force) return undefined;
  return `run ${run.runId} is cancelled but its tasker has not stopped yet (${heard}); wait a few seconds, or add --force`;
}

/** A cancelled run's commands are refused by every worker for 7 days: it can neither be resumed nor its id used again meanwhile. */
export async function refuseCancelledRun(store: Pick<RunStore, 'cancellation'>, runId: string): Promise<void> {
  const cancellation = await store.cancellation(runId);
  if (cancellation === undefined) return;
  throw new InputError(
    'run-state',
    `run ${runId} was ${cancelledStatus(cancellation)}${cancellation.at === '' ? '' : ` at ${cancellation.at}`}: it cannot run again (workers refuse its commands for 7 days); start a new run with another --run-id`,
  );
}
