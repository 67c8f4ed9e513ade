import type { DeliveryControl } from '../message/handle-attempt.js';
import type { Heartbeat } from '../service/heartbeat.js';
import type { ExtraConsumers } from './extra-consumers.js';
import type { Lookahead } from './lookahead.js';
import type { RunningCommands } from './running-commands.js';
import type { Slots } from './command-slots.js';
import type { WorkerMetrics } from '../service/worker-metrics.js';

/** The worker's own state as the delivery handlers see it: slots, running commands, the drain. */

export interface DeliveryControlOptions {
  slots: Pick<Slots, 'acquire' | 'draining' | 'runAlone'>;
  running: Pick<RunningCommands, 'add' | 'remove' | 'killedForDrain'>;
  heartbeat: Pick<Heartbeat, 'soon'>;
  lookahead: Pick<Lookahead, 'commandFinished'>;
  /** One more consumer for each message waiting for another worker's lease. */
  extra: Pick<ExtraConsumers, 'begin'>;
  metrics?: WorkerMetrics | undefined;
}

export function createDeliveryControl(options: DeliveryControlOptions): DeliveryControl {
  const { slots, running, heartbeat, lookahead, extra, metrics } = options;
  return {
    draining: () => slots.draining(),
    acquireSlot: (patient) => slots.acquire(patient),
    track(command, message) {
      running.add(command, message);
      heartbeat.soon();
      command.result.then(
        (result) => {
          if (running.killedForDrain(command)) {
            metrics?.commandFinished('requeued', result.durationMs);
            return;
          }
          lookahead.commandFinished(result.durationMs);
        },
        () => undefined, // an executor failure reaches the message handler, which requeues the message
      );
      return () => {
        running.remove(command);
        heartbeat.soon();
      };
    },
    killedForDrain: (command) => running.killedForDrain(command),
    runAlone: () => slots.runAlone(),
    waitingForLease: () => extra.begin(),
  };
}
