import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { RunningCommands } from '../flow/running-commands.js';
import { cancelledRunKill } from '../../shared/state/results.js';

/**
 * Stops the commands this worker runs for a run an operator cancelled (`tasker cancel`): every
 * second it asks Redis about the runs of its running commands, and kills those of a cancelled one.
 * Their results are not recorded (the finish script ignores a cancelled run's) and their messages
 * are acked: nothing of the run runs on.
 */

export interface RunCancels {
  stop(): void;
}

export function startRunCancels(options: { store: Pick<RunStore, 'cancellation'>; running: Pick<RunningCommands, 'list'>; intervalMs: number; logger: Logger }): RunCancels {
  const { store, running, logger } = options;
  let looking = false;
  const look = async (): Promise<void> => {
    const runIds = new Set(running.list().map((tracked) => tracked.message.runId));
    for (const runId of runIds) {
      const cancellation = await store.cancellation(runId);
      if (cancellation === undefined) continue;
      const ofRun = running.list().filter((tracked) => tracked.message.runId === runId);
      for (const tracked of ofRun) tracked.command.kill(`${cancelledRunKill} by ${cancellation.by}`);
      if (ofRun.length > 0) logger.warn({ runId, by: cancellation.by, reason: cancellation.reason, commands: ofRun.map((tracked) => tracked.message.id) }, 'run cancelled: stopping its running commands');
    }
  };
  const timer = setInterval(() => {
    if (looking) return;
    looking = true;
    look()
      .catch((error: unknown) => logger.debug({ err: error }, 'could not look for cancelled runs'))
      .finally(() => {
        looking = false;
      });
  }, options.intervalMs);
  return { stop: () => clearInterval(timer) };
}
