import type { Logger } from '../../shared/observe/logger.js';

/**
 * Rewrites report.html every so often while a run goes, so a user can open it mid-run and reload.
 * The pause between two writes is at least `minIntervalMs` and ten times what the last write
 * took: a run of a million attempts spends at most a tenth of its tasker's time on its report.
 */

export interface ReportRefresher {
  /** Stops refreshing; resolves when a write in progress has finished (the final report comes after). */
  stop(): Promise<void>;
}

export function startReportRefresher(options: { write: () => Promise<unknown>; minIntervalMs: number; now: () => number; logger: Logger; runId: string }): ReportRefresher {
  const { logger, runId } = options;
  let stopped = false;
  let current: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = refresh();
    }, delayMs);
    timer.unref();
  };
  const refresh = async (): Promise<void> => {
    const started = options.now();
    try {
      await options.write();
      failures = 0;
    } catch (error) {
      // The run goes on without a fresh report; the first failure in a row is logged, not every one.
      if (failures++ === 0) logger.warn({ runId, err: error }, 'report.html could not be refreshed');
    }
    schedule(Math.max(options.minIntervalMs, 10 * (options.now() - started)));
  };
  schedule(options.minIntervalMs);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await current;
    },
  };
}
