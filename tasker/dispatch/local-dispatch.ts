import { setImmediate } from 'node:timers/promises';
import PQueue from 'p-queue';
import type { Executor, RunningCommand } from '../../shared/exec/executor-contract.js';
import { applyUploadReport, type OutputSpec, type WatchOutputs } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { Placement } from '../../shared/state/placement.js';
import { attemptRequest, type RunLayout } from '../../shared/run-dir/run-layout.js';
import type { AttemptOutcome, PhaseDispatch } from './phase-ports.js';

/** A phase's dispatch to this machine's slots: the workers phases of a local run, and the tasker phases of every run. */

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
  /** Recorded as where each attempt ran; undefined: not recorded. */
  placement?: Placement | undefined;
  /**
   * --halt: before each start, let the tasker take in the result that freed the slot (p-queue
   * starts the next command before the awaiting tasker hears of the last one), so that nothing
   * starts after a failure that halts the run. Default false: no wait.
   */
  settleBeforeStart?: boolean;
  /** Uploads what each succeeded attempt created or changed; undefined: nothing per command. */
  outputs?: { spec: OutputSpec; watch: WatchOutputs } | undefined;
}

/** Runs a phase's commands on this machine, `slots` at a time. */
export function createLocalDispatch(options: LocalDispatchOptions): PhaseDispatch {
  const { executor, layout, phase } = options;
  const queue = new PQueue({ concurrency: options.slots });
  const running = new Set<RunningCommand>();
  let killReason: string | undefined;
  let stopReason: string | undefined;

  return {
    // Keep a few commands queued beyond the running ones, so a slot never waits for the file reader.
    waitForRoom: () => queue.onSizeLessThan(options.slots + 1),
    runAttempt(command, attempt, onStart) {
      return queue.add(async (): Promise<AttemptOutcome | undefined> => {
        if (options.settleBeforeStart === true) await setImmediate();
        if (killReason !== undefined || stopReason !== undefined) return undefined; // stopped while it waited: never started
        const { request, log } = attemptRequest(layout, {
          phase,
          commandId: command.id,
          command: command.command,
          attempt,
          timeoutMs: options.timeoutMs,
          killGraceMs: options.killGraceMs,
        });
        const outputs = options.outputs;
        const watch = outputs === undefined ? undefined : await outputs.watch(outputs.spec, layout.workdir);
        const handle = executor.start(request);
        running.add(handle);
        onStart();
        if (killReason !== undefined) handle.kill(killReason); // interrupted while the outputs were listed
        let result;
        try {
          result = await handle.result;
        } finally {
          running.delete(handle);
        }
        if (watch !== undefined && result.outcome === 'succeeded') result = applyUploadReport(result, await watch.finish());
        return { result, worker: options.workerName, log, placement: options.placement };
      });
    },
    stopStarting(reason) {
      stopReason = reason;
    },
    killAll(reason) {
      killReason = reason;
      for (const handle of running) handle.kill(reason);
    },
  };
}
