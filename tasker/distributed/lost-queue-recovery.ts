import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { describeCommands, type PublishBundle } from './command-publisher.js';

/**
 * Publishes again the awaited attempts a deleted work queue took with it: each carries its
 * queue's loss count in Redis as read before it was published, and goes again once the count has
 * grown past it (docs/architecture.md, "A deleted work queue", says who counts).
 */

export interface LostQueueRecoveryOptions {
  store: Pick<RunStore, 'queueLosses' | 'saveHandledQueueLosses' | 'handledQueueLosses' | 'runningCommands'>;
  runId: string;
  /** The work queues the run publishes to. */
  queues: readonly string[];
  queueOf(pool: string): string;
  /** Publishes a copy of an attempt (its first publication was counted and marked already). */
  publish: PublishBundle;
  /** Attempts a previous tasker of the run published are still to be handed to track(). */
  earlierPending(): boolean;
  intervalMs: number;
  logger: Logger;
}

export interface LostQueueRecovery {
  /**
   * The attempt is awaited from its phase's queue until the returned function is called.
   * `earlier`: a previous tasker of the run published it.
   */
  track(phase: PhaseSpec, command: CommandRef, attempt: number, earlier: boolean): () => void;
  /** Stops looking; resolves once a look under way is over. */
  stop(): Promise<void>;
}

interface Tracked {
  phase: PhaseSpec;
  command: CommandRef;
  attempt: number;
  queue: string;
  /** The queue's losses when this copy of the attempt went into it. */
  losses: number;
}

interface RecoveryState {
  /** Per queue: the losses as last read. */
  known: Map<string, number>;
  /** Per queue: the losses as read the look before (a round waits for the count to hold still). */
  previous: Map<string, number>;
  /** Per queue: the losses the previous tasker of the run had dealt with (-1: unknown). */
  earlier: ReadonlyMap<string, number>;
  /** Per queue: the losses saved as dealt with for a resumed tasker. */
  saved: Map<string, number>;
  tracked: Map<string, Tracked>;
}

/**
 * Looks every `intervalMs`. A queue's round waits for its count to hold still for one look, so
 * that the several finders of one deletion make one round, and skips the attempts a worker runs
 * now (their lease is held: their result comes, and if that worker dies, a later look sees them).
 * A copy of an attempt that was not lost after all is harmless: the worker that takes it finds
 * the first one's result, or waits for its lease, and does not run it twice. A resumed tasker
 * starts the attempts its predecessor published from the count that one had dealt with.
 */
export async function startLostQueueRecovery(options: LostQueueRecoveryOptions): Promise<LostQueueRecovery> {
  const { store, runId, logger } = options;
  const saved = await store.handledQueueLosses(runId);
  // Before this tasker saves anything: a run from before these counts has none (-1: its attempts go again).
  const state: RecoveryState = { known: new Map(), previous: new Map(), earlier: new Map(saved), saved, tracked: new Map() };
  for (const queue of options.queues) {
    const losses = await store.queueLosses(queue);
    state.known.set(queue, losses);
    state.previous.set(queue, losses);
    // A run's first tasker, nothing published yet: every loss so far is dealt with.
    if (!saved.has(queue) && !options.earlierPending()) {
      await store.saveHandledQueueLosses(runId, queue, losses);
      saved.set(queue, losses);
    }
  }
  let looking: Promise<void> | undefined;
  const timer = setInterval(() => {
    looking ??= check(options, state)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not check the work queues for losses; trying again'))
      .finally(() => (looking = undefined));
  }, options.intervalMs);
  timer.unref();
  return {
    track(phase, command, attempt, earlier) {
      const queue = options.queueOf(phase.pool);
      const losses = earlier ? (state.earlier.get(queue) ?? -1) : (state.known.get(queue) ?? 0);
      const entry: Tracked = { phase, command, attempt, queue, losses };
      state.tracked.set(command.id, entry);
      return () => {
        if (state.tracked.get(command.id) === entry) state.tracked.delete(command.id);
      };
    },
    async stop() {
      clearInterval(timer);
      await looking;
    },
  };
}

/** One look: reads each queue's losses, publishes again what a loss took, saves what is dealt with. */
async function check(options: LostQueueRecoveryOptions, state: RecoveryState): Promise<void> {
  for (const [queue, losses] of state.known) {
    state.previous.set(queue, losses);
    state.known.set(queue, await options.store.queueLosses(queue));
  }
  // A count still moving: the other finders of the same deletion have not all counted it yet.
  const settled = (queue: string): boolean => state.known.get(queue) === state.previous.get(queue);
  const behind = [...state.tracked.values()].filter((entry) => entry.losses < (state.known.get(entry.queue) ?? 0) && settled(entry.queue));
  if (behind.length > 0) await publishAgain(options, state, behind);
  for (const [queue, losses] of state.known) {
    const dealtWith = !options.earlierPending() && [...state.tracked.values()].every((entry) => entry.queue !== queue || entry.losses >= losses);
    if (dealtWith && state.saved.get(queue) !== losses) {
      await options.store.saveHandledQueueLosses(options.runId, queue, losses);
      state.saved.set(queue, losses);
    }
  }
}

async function publishAgain(options: LostQueueRecoveryOptions, state: RecoveryState, behind: Tracked[]): Promise<void> {
  const running = await options.store.runningCommands(options.runId, behind.map((entry) => entry.command.id));
  const lost = behind.filter((entry) => !running.has(entry.command.id));
  for (const queue of new Set(lost.map((entry) => entry.queue))) {
    const ids = lost.filter((entry) => entry.queue === queue).map((entry) => entry.command.id);
    const runningThere = behind.filter((entry) => entry.queue === queue && running.has(entry.command.id)).length;
    options.logger.warn(
      { queue, commands: ids.length, running: runningThere, commandId: ids[0] },
      `the work queue ${queue} was deleted, and the commands waiting in it with it: publishing ${describeCommands(ids)} again ` +
        `(${runningThere} running on workers finish there; a copy of a command that was not lost is skipped by the worker that takes it)`,
    );
  }
  await Promise.all(
    lost.map(async (entry) => {
      const losses = state.known.get(entry.queue) ?? 0;
      // Its result may have come meanwhile: then it is no longer awaited, and not published again.
      if (state.tracked.get(entry.command.id) !== entry) return;
      await options.publish(entry.phase, [{ command: entry.command, attempt: entry.attempt }]);
      entry.losses = losses;
    }),
  );
}
