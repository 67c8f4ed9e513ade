import type { ExecuteRequest } from '../../shared/exec/executor-contract.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { UsageSample } from '../../shared/state/usage.js';

/**
 * Hands the executor's memory samples of running commands to Redis (shared/redis/redis-usage.ts):
 * should the worker die with a command (its pod OOM-killed), the poison reason can say how much
 * memory the command was last seen using. Only commands that run past the sampling period have
 * samples; one write per sampling round, all of them together.
 */
export interface UsageRelay {
  /** The executor's `onSample` (resource-meter.ts); dropped until `attach`. */
  sample(request: ExecuteRequest, rssBytes: number, limitBytes: number | undefined): void;
  attach(target: { store: Pick<RunStore, 'noteUsage'>; workerId: string; inPod: boolean; logger: Logger }): void;
}

export function createUsageRelay(): UsageRelay {
  let target: Parameters<UsageRelay['attach']>[0] | undefined;
  const pending = new Map<string, Map<string, UsageSample>>();
  let warned = false;

  const flush = (): void => {
    const batches = [...pending];
    pending.clear();
    for (const [runId, samples] of batches) {
      target?.store.noteUsage(runId, samples).catch((error: unknown) => {
        if (warned) return;
        warned = true; // a sample is a hint for a later reason: say it once, go on
        target?.logger.warn({ err: error, runId }, 'could not write memory samples to Redis');
      });
    }
  };

  return {
    sample(request, rssBytes, limitBytes) {
      const runId = request.env['TASKER_RUN_ID'];
      const id = request.env['TASKER_COMMAND_ID'];
      if (target === undefined || runId === undefined || id === undefined) return;
      const sample: UsageSample = { attempt: Number(request.env['TASKER_ATTEMPT'] ?? 0), rssBytes, worker: target.workerId, at: new Date().toISOString() };
      if (limitBytes !== undefined) sample.limitBytes = limitBytes;
      if (target.inPod) sample.pod = true;
      if (pending.size === 0) queueMicrotask(flush); // one round's samples come together
      const run = pending.get(runId) ?? new Map<string, UsageSample>();
      run.set(id, sample);
      pending.set(runId, run);
    },
    attach(next) {
      target = next;
    },
  };
}
