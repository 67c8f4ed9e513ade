import type { Control, WorkerMetrics } from '../ports.js';
import type { CommandSlots } from './command-slots.js';
import type { ExtraConsumers } from './extra-consumers.js';
import type { Lookahead } from './lookahead.js';
import type { RunningCommands } from './running-commands.js';

/** The `Control` port of the message pipeline, on the worker's slots, running commands, lookahead and extra consumers. */

export interface AttemptControlOptions {
  slots: Pick<CommandSlots, 'acquire' | 'draining' | 'runAlone' | 'freeNow'>;
  running: Pick<RunningCommands, 'add' | 'remove' | 'killedForDrain'>;
  /** What runs here changed: the heartbeat should say so soon. */
  runningChanged(): void;
  lookahead: Pick<Lookahead, 'commandFinished' | 'mayHold'>;
  /** One more consumer for each message waiting for another worker's lease. */
  extra: Pick<ExtraConsumers, 'begin'>;
  metrics?: WorkerMetrics | undefined;
}

export function createAttemptControl(options: AttemptControlOptions): Control {
  const { slots, running, runningChanged, lookahead, extra, metrics } = options;
  return {
    draining: () => slots.draining(),
    acquireSlot(patient, message) {
      // Not held ahead of running commands unless its phase is known here to be short (lookahead.ts).
      if (message !== undefined && !slots.freeNow() && !slots.draining() && !lookahead.mayHold(message)) return Promise.resolve(undefined);
      return slots.acquire(patient);
    },
    track(command, message) {
      running.add(command, message);
      runningChanged();
      command.result.then(
        (result) => {
          if (running.killedForDrain(command)) {
            metrics?.commandFinished('requeued', result.durationMs);
            return;
          }
          lookahead.commandFinished(result.durationMs, message);
        },
        () => undefined, // an executor failure reaches the message handler, which requeues the message
      );
      return () => {
        running.remove(command);
        runningChanged();
      };
    },
    killedForDrain: (command) => running.killedForDrain(command),
    runAlone: () => slots.runAlone(),
    waitingForLease: () => extra.begin(),
  };
}
