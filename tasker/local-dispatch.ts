import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import PQueue from 'p-queue';
import type { Executor, RunningCommand } from '../shared/executor.js';
import type { PhaseSpec } from '../shared/plan.js';
import type { RunLayout } from '../shared/run-layout.js';
import type { AttemptOutcome, PhaseDispatch } from './run-phases.js';

export interface LocalDispatchOptions {
  executor: Executor;
  layout: RunLayout;
  phase: PhaseSpec;
  /** Commands run at once. */
  slots: number;
  timeoutMs: number | undefined;
  killGraceMs: number;
  /** Recorded as who ran each attempt. */
  workerName: string;
}

/** Runs a phase's commands on this machine, `slots` at a time. */
export function createLocalDispatch(options: LocalDispatchOptions): PhaseDispatch {
  const { executor, layout, phase } = options;
  const queue = new PQueue({ concurrency: options.slots });
  const running = new Set<RunningCommand>();
  let killReason: string | undefined;
  // One directory per phase for its logs, made once here rather than per command.
  mkdirSync(dirname(layout.absolute(layout.logRelativePath(phase, 'x', 1))), { recursive: true });

  return {
    // Keep a few commands queued beyond the running ones, so a slot never waits for the file reader.
    waitForRoom: () => queue.onSizeLessThan(options.slots + 1),
    runAttempt(command, attempt, onStart) {
      return queue.add(async (): Promise<AttemptOutcome> => {
        const log = layout.logRelativePath(phase, command.id, attempt);
        const handle = executor.start({
          command: command.command,
          cwd: layout.workdir,
          logPath: layout.absolute(log),
          env: {
            TASKER_RUN_ID: layout.runId,
            TASKER_PHASE: phase.name,
            TASKER_COMMAND_ID: command.id,
            TASKER_ATTEMPT: String(attempt),
            TASKER_WORKDIR: layout.workdir,
          },
          timeoutMs: options.timeoutMs,
          killGraceMs: options.killGraceMs,
        });
        running.add(handle);
        onStart();
        if (killReason !== undefined) handle.kill(killReason);
        try {
          return { result: await handle.result, worker: options.workerName, log };
        } finally {
          running.delete(handle);
        }
      });
    },
    killAll(reason) {
      killReason = reason;
      for (const handle of running) handle.kill(reason);
    },
  };
}
