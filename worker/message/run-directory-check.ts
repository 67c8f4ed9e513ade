import type { CommandMessage, RunOrigin } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * Whether this worker sees a run's directory, the tasker's, in its own workdir (by the run's
 * token): one with another workdir, or without the shared volume, would run commands out of the
 * tasker's sight yet report them succeeded. Why and how: docs/architecture.md.
 */

/** What the run's directory under this worker's workdir holds. */
export interface RunDirLook {
  /** Whether WORKDIR/.tasker/runs/RUN_ID exists here. */
  dirExists: boolean;
  /** The token found in it; undefined when there is none. */
  token: string | undefined;
}

/** Why this worker cannot run the run's commands here; undefined when it can. Pure. */
export function sightProblem(origin: RunOrigin | undefined, look: RunDirLook): string | undefined {
  if (!look.dirExists) return 'the run has no directory in this worker\'s workdir';
  // A tasker older than the token check sends no origin: its run's directory existing is all we can tell.
  if (origin === undefined) return undefined;
  if (look.token === undefined) return 'the run\'s directory in this worker\'s workdir has no token: it is another directory with the same run id';
  if (look.token !== origin.token) return 'the run\'s directory in this worker\'s workdir has another token: it is another directory with the same run id';
  return undefined;
}

/** How to fix it, for the log line: the worker's and the tasker's directories named. Pure. */
export function unseenRunHint(workdir: string, origin: RunOrigin | undefined): string {
  const volume = 'in Kubernetes, mount the same volume (PersistentVolumeClaim) in the tasker and worker pods, at the WORKDIR they are given';
  if (origin === undefined) return `start this worker with --workdir (or WORKDIR) set to the tasker's workdir, or mount the directory the tasker writes to at ${workdir}; ${volume}`;
  if (origin.workdir !== workdir) {
    return `start this worker with --workdir ${origin.workdir} (or WORKDIR=${origin.workdir}), the tasker's workdir, or mount the tasker's directory at ${workdir}; ${volume}`;
  }
  return `${workdir} here is not the tasker's ${origin.workdir}, though the paths are the same (another machine or container): mount the directory the tasker writes to at ${workdir}; ${volume}`;
}

export interface RunDirectoryCheckOptions {
  /** This worker's workdir, absolute. */
  workdir: string;
  /** Looks at the run's directory under the workdir; throws when it cannot be read (taken as not seen). */
  look(runId: string): Promise<RunDirLook>;
  logger: Logger;
  now?: () => number;
}

export interface RunDirectoryCheck {
  /** Whether this worker may run the message's command here; says it (once per run) when not. */
  sees(message: Pick<CommandMessage, 'runId' | 'origin'>): Promise<boolean>;
  /** How long to hold a message of a run not seen before it goes back to the queue. */
  holdMs(runId: string): number;
  /** The runs whose commands it handed back lately (the last minute), for the heartbeat. */
  unseenRuns(): string[];
}

/** Runs remembered as seen, at most (then forgotten all at once: each costs one read again). */
const maxSeen = 1000;
/** A run not handed back for this long is no longer reported (the tasker's warning clears). */
const unseenForgetMs = 60_000;
/**
 * Holding a message before handing it back: short at first (a worker that sees the run may be
 * starting), longer once the run has gone unseen for a while. Each hand-back is a delivery that
 * RabbitMQ before 4.3 counts against the work queue's x-delivery-limit (1000): at 30 s, one
 * message cycled by a lone misconfigured worker reaches it after 8 hours, not 80 minutes.
 */
const holdFirstMs = 5000;
const holdLaterMs = 30_000;
const holdLaterAfterMs = 60_000;

export function createRunDirectoryCheck(options: RunDirectoryCheckOptions): RunDirectoryCheck {
  const { workdir, logger } = options;
  const now = options.now ?? Date.now;
  const seen = new Set<string>();
  /** Run id → since when, and when last, its commands were handed back. */
  const unseen = new Map<string, { since: number; last: number }>();
  const said = new Set<string>();

  const lookProblem = async (message: Pick<CommandMessage, 'runId' | 'origin'>): Promise<string | undefined> => {
    try {
      return sightProblem(message.origin, await options.look(message.runId));
    } catch (error) {
      return `the run's directory in this worker's workdir cannot be read (${(error as Error).message})`;
    }
  };
  const sayUnseen = (message: Pick<CommandMessage, 'runId' | 'origin'>, problem: string): void => {
    const { runId, origin } = message;
    const at = now();
    unseen.set(runId, { since: unseen.get(runId)?.since ?? at, last: at });
    if (said.has(runId)) {
      logger.debug({ runId, problem }, 'command of a run not seen here: back to the queue');
      return;
    }
    if (said.size >= maxSeen) said.clear();
    said.add(runId);
    const tasker = origin === undefined ? 'the tasker\'s (not given by this older tasker)' : `the tasker's ${origin.workdir}`;
    logger.error(
      { runId, workdir, taskerWorkdir: origin?.workdir ?? null, problem, hint: unseenRunHint(workdir, origin) },
      `this worker cannot see run ${runId}'s directory: its workdir ${workdir} is not ${tasker}. Its commands are not run here; they go back to the queue for a worker that sees the run`,
    );
  };
  return {
    async sees(message) {
      const key = `${message.runId}/${message.origin?.token ?? ''}`;
      if (seen.has(key)) return true;
      const problem = await lookProblem(message);
      if (problem !== undefined) {
        sayUnseen(message, problem);
        return false;
      }
      if (seen.size >= maxSeen) seen.clear();
      seen.add(key);
      if (unseen.delete(message.runId)) logger.info({ runId: message.runId, workdir }, `this worker now sees run ${message.runId}'s directory: running its commands`);
      said.delete(message.runId);
      return true;
    },
    holdMs(runId) {
      const since = unseen.get(runId)?.since;
      return since !== undefined && now() - since >= holdLaterAfterMs ? holdLaterMs : holdFirstMs;
    },
    unseenRuns() {
      const forgetBefore = now() - unseenForgetMs;
      for (const [runId, { last }] of unseen) if (last < forgetBefore) unseen.delete(runId);
      return [...unseen.keys()];
    },
  };
}
