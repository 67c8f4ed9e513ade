import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/redis-store.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { PublishBundle } from './phase-bundler.js';
import { describeCommands } from './returned-publishes.js';

/**
 * A work queue someone deleted (`rabbitmqctl delete_queue`) took the commands waiting in it with
 * it, and a queue declared again under the same name looks the same as before. Whoever finds a
 * work queue gone counts a loss of it in Redis (shared/state/redis-queue-losses.ts): a worker whose
 * consumer the broker cancels, this tasker when its check finds the queue missing or a message
 * comes back unrouted. Every attempt the tasker awaits carries the queue's loss count as of its
 * publication; once the count has grown past it, the attempt is published again, unless a worker
 * runs it now (its lease is held: its result comes, and if that worker dies, this looks again).
 * A copy of an attempt that was not lost after all is harmless: the worker that takes the second
 * copy finds the first one's result, or waits for its lease, and does not run it twice. A resumed
 * tasker starts the attempts its predecessor published from the count that one had dealt with.
 */

export interface LostQueueRecoveryOptions {
  store: Pick<RunStore, 'noteQueueLost' | 'queueLosses' | 'saveHandledQueueLosses' | 'handledQueueLosses' | 'runningCommands'>;
  runId: string;
  /** The work queues the run publishes to. */
  queues: readonly string[];
  queueOf(pool: string): string;
  /** Publishes an attempt again (its first publication was counted already). */
  publish: PublishBundle;
  intervalMs: number;
  logger: Logger;
}

export interface LostQueueRecovery {
  /**
   * The attempt is awaited from its phase's queue until the returned function is called.
   * `earlier`: a previous tasker of the run published it.
   */
  track(phase: PhaseSpec, command: CommandRef, attempt: number, earlier: boolean): () => void;
  /** This tasker found `queue` missing just now. */
  noteLost(queue: string): void;
  stop(): void;
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
  /** Per queue: the losses saved as dealt with for a resumed tasker. */
  saved: Map<string, number>;
  tracked: Map<string, Tracked>;
}

export async function startLostQueueRecovery(options: LostQueueRecoveryOptions): Promise<LostQueueRecovery> {
  const { store, runId, logger } = options;
  const saved = await store.handledQueueLosses(runId);
  const state: RecoveryState = { known: new Map(), saved, tracked: new Map() };
  for (const queue of options.queues) {
    const losses = await store.queueLosses(queue);
    state.known.set(queue, losses);
    // Nothing published yet: a first tasker of the run has dealt with every loss so far.
    if (!saved.has(queue)) await store.saveHandledQueueLosses(runId, queue, losses);
    saved.set(queue, saved.get(queue) ?? losses);
  }
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check(options, state)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not check the work queues for losses; trying again'))
      .finally(() => (checking = false));
  }, options.intervalMs);
  timer.unref();
  return {
    track(phase, command, attempt, earlier) {
      const queue = options.queueOf(phase.pool);
      const now = state.known.get(queue) ?? 0;
      const losses = earlier ? Math.min(now, saved.get(queue) ?? now) : now;
      const entry: Tracked = { phase, command, attempt, queue, losses };
      state.tracked.set(command.id, entry);
      return () => {
        if (state.tracked.get(command.id) === entry) state.tracked.delete(command.id);
      };
    },
    noteLost(queue) {
      store.noteQueueLost(queue).catch((error: unknown) => logger.warn({ err: error, queue }, 'could not record in Redis that the queue was deleted'));
    },
    stop: () => clearInterval(timer),
  };
}

/** One look: reads each queue's losses, publishes again what a loss took, saves what is dealt with. */
async function check(options: LostQueueRecoveryOptions, state: RecoveryState): Promise<void> {
  for (const queue of state.known.keys()) state.known.set(queue, await options.store.queueLosses(queue));
  const behind = [...state.tracked.values()].filter((entry) => entry.losses < (state.known.get(entry.queue) ?? 0));
  if (behind.length > 0) await publishAgain(options, state, behind);
  for (const [queue, losses] of state.known) {
    const dealtWith = [...state.tracked.values()].every((entry) => entry.queue !== queue || entry.losses >= losses);
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
      await options.publish(entry.phase, [{ command: entry.command, attempt: entry.attempt }]);
      entry.losses = losses;
    }),
  );
}
