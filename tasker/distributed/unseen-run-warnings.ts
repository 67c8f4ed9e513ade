import type { Logger } from '../../shared/observe/logger.js';
import type { WorkerInfo } from '../../shared/state/run-store.js';

/**
 * Warns of workers whose heartbeat says they cannot see this run's directory (another --workdir,
 * or the shared volume not mounted), so they hand its commands back unrun: logged when the set
 * changes, kept as text for the progress line and `tasker status`, cleared once none reports it.
 */

/** Workers named in the warning, at most; the rest are counted. */
const namedAtMost = 3;

/** The workers that report this run as not seen. Pure. */
export function blindWorkers(workers: readonly WorkerInfo[], runId: string): WorkerInfo[] {
  return workers.filter((worker) => worker.unseenRuns?.includes(runId) === true);
}

/** The warning for the progress line and `tasker status`; undefined when no worker is blind to the run. Pure. */
export function unseenRunText(blind: readonly WorkerInfo[], workdir: string): string | undefined {
  if (blind.length === 0) return undefined;
  const named = blind.slice(0, namedAtMost).map((worker) => `${worker.id}${worker.workdir === undefined ? '' : ` (workdir ${worker.workdir})`}`);
  const more = blind.length > namedAtMost ? ` and ${blind.length - namedAtMost} more` : '';
  const who = blind.length === 1 ? `worker ${named[0]!}` : `workers ${named.join(', ')}${more}`;
  return (
    `${who} cannot see this run's directory: ${blind.length === 1 ? 'its' : 'their'} workdir is not the tasker's ${workdir}, so ${blind.length === 1 ? 'it hands' : 'they hand'} the commands back unrun. ` +
    `Restart ${blind.length === 1 ? 'it' : 'them'} with --workdir ${workdir} (or WORKDIR), or mount the shared volume there (Kubernetes: the same volume in tasker and worker pods)`
  );
}

export interface UnseenRunWarnings {
  /** The workers as last read from their heartbeats. */
  update(workers: readonly WorkerInfo[]): void;
  current(): string | undefined;
}

export function createUnseenRunWarnings(runId: string, workdir: string, logger: Logger): UnseenRunWarnings {
  let warning: string | undefined;
  let blindIds = '';
  return {
    update(workers) {
      const blind = blindWorkers(workers, runId);
      const ids = blind.map((worker) => worker.id).join(',');
      if (ids === blindIds) return;
      const before = warning;
      blindIds = ids;
      warning = unseenRunText(blind, workdir);
      if (warning !== undefined) {
        logger.warn({ runId, workdir, workers: blind.map((worker) => ({ id: worker.id, workdir: worker.workdir ?? null })) }, warning);
      } else if (before !== undefined) {
        logger.info({ runId }, 'no worker reports this run\'s directory as unseen any more');
      }
    },
    current: () => warning,
  };
}
