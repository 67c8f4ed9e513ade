import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore, WorkerInfo } from '../../shared/state/run-store.js';
import type { RunningCommands } from '../flow/running-commands.js';

/**
 * The worker's entry in Redis, for `tasker status`: who it is and what it runs. Written every
 * 5 s with a 15 s lifetime, so a worker that died disappears on its own.
 */

export interface HeartbeatOptions {
  store: Pick<RunStore, 'workerHeartbeat'>;
  running: Pick<RunningCommands, 'list'>;
  /** Everything but what it runs, whether its presence is up and the runs it cannot see, which are read at each beat. */
  worker: Omit<WorkerInfo, 'running' | 'presence' | 'unseenRuns'>;
  /** Whether its presence (redis-presence.ts) is up; a change is told within a second. */
  presenceUp?: () => boolean;
  /** The runs whose directory it cannot see (message/run-directory-check.ts); a change is told within a second. Unset: none. */
  unseenRuns?: () => string[];
  logger: Logger;
}

export interface Heartbeat {
  /** A beat within a second, so a command that started or ended shows soon. */
  soon(): void;
  stop(): void;
}

const intervalMs = 5000;
const ttlMs = 15_000;
/** How often the presence and the unseen runs are looked at (in process, no I/O) for a change to tell. */
const lookMs = 1000;

/** Resolves after the first beat, which fails when Redis refuses it. */
export async function startHeartbeat(options: HeartbeatOptions): Promise<Heartbeat> {
  const { store, running, worker, presenceUp, logger } = options;
  /** What the last beat said of the presence and the unseen runs. */
  let told = '';
  const status = (): string => `${presenceUp?.() ?? ''}|${(options.unseenRuns?.() ?? []).join(',')}`;
  const beat = async (): Promise<void> => {
    told = status();
    const unseenRuns = options.unseenRuns?.() ?? [];
    const info: WorkerInfo = {
      ...worker,
      ...(unseenRuns.length === 0 ? {} : { unseenRuns }),
      // Handed over early but not started yet: not shown as running.
      running: running
        .list()
        .filter(({ command }) => command.started())
        .map(({ message: m, sinceMs }) => ({ runId: m.runId, id: m.id, attempt: m.attempt, since: new Date(sinceMs).toISOString(), command: m.command.slice(0, 200) })),
      ...(presenceUp === undefined ? {} : { presence: presenceUp() }),
    };
    await store.workerHeartbeat(info, ttlMs);
  };
  let stopped = false;
  const beatInBackground = (): void => {
    // After stop() the entry is being removed: a late beat would show a stopped worker.
    if (stopped) return;
    beat().catch((error: unknown) => logger.debug({ err: error }, 'heartbeat failed'));
  };
  // `tasker status` should see a command start without a Redis write per command: at most one
  // extra heartbeat per second, on top of the regular one.
  let queued = false;
  const soon = (): void => {
    if (queued) return;
    queued = true;
    setTimeout(() => {
      queued = false;
      beatInBackground();
    }, 1000).unref();
  };
  const timer = setInterval(beatInBackground, intervalMs);
  const look = setInterval(() => {
    if (status() !== told) beatInBackground();
  }, lookMs);
  look.unref();
  await beat().catch((error: unknown) => {
    clearInterval(timer);
    clearInterval(look);
    throw error;
  });
  return {
    soon,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      clearInterval(look);
    },
  };
}
