import type { Logger } from '../../shared/observe/logger.js';
import { formatShare, roundShare, shareView, shareWindow, type Priority, type ShareView } from '../../shared/state/fair-share.js';
import type { RunMeta, RunStore } from '../../shared/state/run-store.js';

/**
 * The run's part of its pool's worker slots: each second it writes what it could run now into the
 * pool's demand table and reads the other runs' (shared/redis/redis-demand.ts), computes the fair
 * split (shared/state/fair-share.ts), and sizes the run's window (commands published and not
 * finished) to its share. A colleague's run started later thus waits behind about one bundle per
 * slot of this run's work, not behind all of it.
 */

/** What the running phase offers to the share: read at each turn. */
export interface SharedPhase {
  pool: string;
  phase: string;
  /** Published and not finished. */
  inFlight(): number;
  /** Commands of the phase not handed over yet (an estimate: resumed runs' done ones are counted until skipped). */
  backlog(): number;
  /** Attempts per message now (phase-dispatch.ts). */
  bundleSize(): number;
}

export interface RunShareOptions {
  store: Pick<RunStore, 'shareDemand' | 'withdrawDemand' | 'onDemandJoined'>;
  runId: string;
  priority: Priority;
  /** The pool's slots, as the workers' heartbeats say (worker-lanes.ts). */
  lanes(pool: string): number;
  /** The share was read again: the window may have grown (wakes the phase loop waiting for room). */
  onChange(): void;
  logger: Logger;
  intervalMs: number;
}

export interface RunShare {
  /** The phase whose commands compete for slots from now on (undefined: none, e.g. a tasker phase). */
  setPhase(phase: SharedPhase | undefined): void;
  /** Commands the run may have published and not finished now: its share's window at the phase's bundle size. */
  window(): number;
  /** The split as last computed; undefined while no worker phase runs. */
  view(): ShareView | undefined;
  /** For the run's record: priority, share and whom it waits behind. */
  metaFields(): Pick<RunMeta, 'priority' | 'share' | 'slots' | 'waitsBehind'>;
  stop(): Promise<void>;
}

export function startRunShare(options: RunShareOptions): RunShare {
  const { store, runId, priority, logger } = options;
  let current: SharedPhase | undefined;
  let latest: ShareView | undefined;
  /** Until the first reading, as a lone run would start: all the pool's slots. */
  let share = 0;
  let turn: Promise<void> = Promise.resolve();
  let failing = false;

  const refresh = async (): Promise<void> => {
    const phase = current;
    if (phase === undefined) return;
    const inFlight = phase.inFlight();
    const entry = { runId, priority, demand: inFlight + phase.backlog(), inFlight, phase: phase.phase, at: Date.now() };
    try {
      const runs = await store.shareDemand(phase.pool, entry);
      if (phase !== current) return;
      latest = shareView(runId, options.lanes(phase.pool), runs);
      share = latest.share;
      options.onChange();
      if (failing) logger.info({ pool: phase.pool }, 'fair share: the demand table is readable again');
      failing = false;
    } catch (error) {
      // The window stays as it was: the run goes on at its last share until Redis answers again.
      if (!failing) logger.warn({ err: error, pool: phase.pool }, 'fair share: could not update the pool demand table; keeping the current share');
      failing = true;
    }
  };
  const next = (): void => {
    turn = turn.then(refresh);
  };
  const timer = setInterval(next, options.intervalMs);
  timer.unref();

  const watch = createPoolWatch(store, logger, next);
  const withdraw = async (phase: SharedPhase | undefined): Promise<void> => {
    if (phase === undefined) return;
    await store.withdrawDemand(phase.pool, runId).catch((error: unknown) => logger.debug({ err: error, pool: phase.pool }, 'could not withdraw the run from the demand table (it expires)'));
  };

  return {
    setPhase(phase) {
      const previous = current;
      current = phase;
      latest = undefined;
      if (phase !== undefined) share = options.lanes(phase.pool);
      if (previous?.pool === phase?.pool) {
        next();
        return;
      }
      turn = turn
        .then(() => withdraw(previous))
        .then(() => watch.follow(phase?.pool))
        .then(refresh);
    },
    window: () => (current === undefined ? Number.POSITIVE_INFINITY : shareWindow(share, current.bundleSize())),
    view: () => latest,
    metaFields: () => shareFields(priority, latest),
    async stop() {
      clearInterval(timer);
      await turn;
      const last = current;
      current = undefined;
      await watch.follow(undefined);
      await withdraw(last);
    },
  };
}

function shareFields(priority: Priority, view: ShareView | undefined): Pick<RunMeta, 'priority' | 'share' | 'slots' | 'waitsBehind'> {
  if (view === undefined) return { priority, share: undefined, slots: undefined, waitsBehind: '' };
  const behind = view.waitsBehind.map((run) => `${run.runId} (${run.priority}, ${formatShare(run.share, view.slots)})`).join(', ');
  return { priority, share: roundShare(view.share), slots: view.slots, waitsBehind: behind };
}

/** Another run joining the pool is read at once: it should not wait a turn for this run to make room. */
function createPoolWatch(store: Pick<RunStore, 'onDemandJoined'>, logger: Logger, onJoin: () => void): { follow(pool: string | undefined): Promise<void> } {
  let unsubscribe: (() => Promise<void>) | undefined;
  return {
    async follow(pool) {
      await unsubscribe?.().catch(() => undefined);
      unsubscribe = undefined;
      if (pool === undefined) return;
      unsubscribe = await store.onDemandJoined(pool, onJoin).catch((error: unknown) => {
        logger.debug({ err: error, pool }, 'fair share: no notice of runs joining the pool; read each turn only');
        return undefined;
      });
    },
  };
}
