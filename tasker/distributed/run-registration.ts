import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Cancellation, RunMeta, RunStore } from '../../shared/state/run-store.js';
import { cancelledStatus } from './cancel-run.js';
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
  if (existing?.recordSha256 === undefined || recordSha256 === undefined || existing.recordSha256 === recordSha256) return;
  throw new InputError(
    'run-state',
    `run.json of run ${runId} is not the one its first tasker wrote (its sha256 differs from the one kept in Redis): something wrote into the run directory since the run was prepared. ` +
      'Resume runs only the commands it planned: start a new run (another --run-id) from your jobs file',
  );
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
    // The first tasker's: what a resume is checked against.
    ...((start.existing?.recordSha256 ?? start.recordSha256) === undefined ? {} : { recordSha256: start.existing?.recordSha256 ?? start.recordSha256 }),
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
