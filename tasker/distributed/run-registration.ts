import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Cancellation, RunMeta, RunStore } from '../../shared/state/run-store.js';
import { cancelledStatus, refuseCancelledRun } from './cancel-run.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { poolsOf } from '../jobs/phase-pools.js';
import type { Progress } from '../dispatch/phase-ports.js';
import type { Priority } from '../../shared/state/fair-share.js';

/** The run's entry in Redis: which tasker runs it, its heartbeat and progress, and how it ended (what `tasker status` shows). */

/** Seconds a finished run's Redis keys are kept (for `tasker status` and duplicate checks). */
const finishedRunTtlSeconds = 7 * 24 * 3600;

/**
 * A restarted pod starts while the old tasker's heartbeat is still fresh: wait until it goes
 * stale. A heartbeat that keeps moving means another tasker really runs this run: refuse.
 */
export async function waitForPreviousTasker(store: RunStore, runId: string, me: string, staleAfterMs: number, logger: Logger): Promise<RunMeta | undefined> {
  const first = await store.getRun(runId);
  let current = first;
  let told = false;
  while (current !== undefined && current.state === 'running' && current.host !== me && Date.now() - Date.parse(current.heartbeatAt) < staleAfterMs) {
    if (first !== undefined && current.heartbeatAt !== first.heartbeatAt) {
      throw new InputError('run-state', `run ${runId} is being run right now by another tasker (${current.host}); wait for it to finish, or stop it first`);
    }
    if (!told) logger.info({ runId, previous: current.host }, 'waiting for the previous tasker of this run to stop sending heartbeats');
    told = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
    current = await store.getRun(runId);
  }
  return current;
}

export interface RunStart {
  runId: string;
  /** This tasker (host and pid). */
  host: string;
  workdir: string;
  phases: readonly PhaseSpec[];
  /** The run's entry left by an earlier tasker of it, if any: the run keeps its start time. */
  existing: RunMeta | undefined;
  priority: Priority;
  /** The sha256 of run.json as this tasker wrote or read it. */
  recordSha256: string | undefined;
}

/**
 * A resumed run's run.json must be the one its first tasker wrote: Redis keeps its sha256 (out of
 * the commands' reach, unlike the shared volume), so a run.json rewritten since, its phases and
 * the hashes of its jobs copies with it, is refused before anything is published.
 */
export function checkRunRecord(runId: string, existing: RunMeta | undefined, recordSha256: string | undefined): void {
  if (existing?.recordSha256 === undefined || recordSha256 === undefined || existing.recordSha256 === recordSha256 || existing.pendingRecordSha256 === recordSha256) return;
  throw new InputError(
    'run-state',
    `run.json of run ${runId} is not the one its first tasker wrote (its sha256 differs from the one kept in Redis): something wrote into the run directory since the run was prepared. ` +
      'Resume runs only the commands it planned: start a new run (another --run-id) from your jobs file',
  );
}

function recordShaOf({ existing, recordSha256 }: RunStart): Pick<RunMeta, 'recordSha256'> {
  const sha = existing?.pendingRecordSha256 !== undefined && existing.pendingRecordSha256 === recordSha256 ? recordSha256 : (existing?.recordSha256 ?? recordSha256);
  return sha === undefined ? {} : { recordSha256: sha };
}

export interface RevisionToAccept {
  runId: string;
  /** run.json's sha256 as read (checked against Redis), and the one the edited resume writes. */
  recordSha256: string | undefined;
  nextSha256: string;
  /** The commands that run again: marks under their ids are an earlier revision's. */
  rerunIds: readonly string[];
  staleAfterMs: number;
}

/**
 * Before an edited resume rewrites the run's records: the run goes on (not cancelled, no other
 * tasker), its run.json is the one Redis knows, nothing of the last session is still queued or
 * running (an earlier revision's command would run, or be taken for the new one's), the marks of
 * the ids that run again go, and Redis accepts the new run.json too.
 */
export async function acceptRevision(store: RunStore, revision: RevisionToAccept, me: string, logger: Logger): Promise<void> {
  const { runId } = revision;
  await refuseCancelledRun(store, runId);
  const existing = await waitForPreviousTasker(store, runId, me, revision.staleAfterMs, logger);
  checkRunRecord(runId, existing, revision.recordSha256);
  const inFlight = await store.publishedAttempts(runId);
  if (inFlight.size > 0) {
    throw new InputError(
      'run-state',
      `run ${runId} still has ${inFlight.size} command(s) queued or running from its last session; its jobs files cannot change until they are done. ` +
        `Resume it once as it is (tasker run --resume ${runId}), or wait until workers have set them aside, then resume with the edited files`,
    );
  }
  await store.clearSucceeded(runId, revision.rerunIds);
  if (existing !== undefined) await store.updateRun(runId, { pendingRecordSha256: revision.nextSha256 });
}

/** The entry of a run this tasker starts (or resumes): running, nothing counted yet. */
export function runningMeta(start: RunStart): RunMeta {
  const now = new Date().toISOString();
  return {
    runId: start.runId,
    state: 'running',
    startedAt: start.existing?.startedAt ?? now,
    heartbeatAt: now,
    host: start.host,
    workdir: start.workdir,
    // The first tasker's (or the edited resume's, once its run.json is written): what a resume is checked against.
    ...recordShaOf(start),
    phase: '',
    phaseIndex: 0,
    phaseCount: start.phases.length,
    pools: poolsOf(start.phases),
    total: start.phases.reduce((sum, phase) => sum + phase.commandCount, 0),
    done: 0,
    failed: 0,
    priority: start.priority,
  };
}

export interface RunProgressRecorder {
  /**
   * `warning`: what the tasker warns of now (shown by `tasker status`); undefined clears it.
   * `share`: the run's priority, share and whom it waits behind (run-share.ts).
   */
  heartbeat(progress: Progress, warning?: string, share?: Partial<RunMeta>): Promise<void>;
  /**
   * Records the final counts and the end. A run that is not over (interrupted) is stopped: its
   * queued commands are not run until a tasker resumes it, which it may do at once. A run over is
   * marked so (until its keys expire): no message of it runs any more.
   */
  finish(status: string, runOver: boolean, progress: Progress, cancelled?: Cancellation): Promise<void>;
}

function progressFields(progress: Progress): Pick<RunMeta, 'phase' | 'phaseIndex' | 'pool' | 'done' | 'failed'> {
  return { phase: progress.phase, phaseIndex: progress.phaseIndex, pool: progress.pool ?? '', done: progress.done, failed: progress.failed };
}

export function createRunProgressRecorder(store: RunStore, runId: string): RunProgressRecorder {
  return {
    async heartbeat(progress, warning, share) {
      // '' and not undefined: the update merges fields, and JSON drops an undefined one.
      await store.updateRun(runId, { ...share, heartbeatAt: new Date().toISOString(), ...progressFields(progress), warning: warning ?? '' });
    },
    async finish(status, runOver, progress, cancelled) {
      if (cancelled !== undefined) {
        // Only what exists is updated (a purge may have removed it already): no key of the run is made again.
        await store.updateRun(runId, { state: 'cancelled', status: cancelledStatus(cancelled), warning: '', heartbeatAt: new Date().toISOString(), ...progressFields(progress) });
        await store.expireRun(runId, finishedRunTtlSeconds);
        return;
      }
      // Stopped (or over) before it says so: whoever reads "interrupted" can count on workers not
      // starting its commands; once over, its leftover messages are dead-lettered, not run.
      await (runOver ? store.endRun(runId) : store.stopRun(runId));
      await store.updateRun(runId, { state: runOver ? 'finished' : 'interrupted', status, warning: '', heartbeatAt: new Date().toISOString(), ...progressFields(progress) });
      if (runOver) await store.expireRun(runId, finishedRunTtlSeconds);
    },
  };
}
