import type { Logger } from '../../shared/observe/logger.js';

/**
 * Rewrites report.html while a run goes: the first time right at the start, then at a pace that
 * grows with the run's age (refreshPauseMs), so a short run's page moves every few seconds and a
 * run of a million attempts spends at most a twentieth of its tasker's time on its report.
 */

export interface ReportRefresher {
  /** Stops refreshing; resolves when a write in progress has finished (the final report comes after). */
  stop(): Promise<void>;
}

/** The longest pause between two rewrites, unless the shortest asked for is longer. */
export const maxRefreshPauseMs = 60_000;

/**
 * The pause after a rewrite: a tenth of the run's age, between `minMs` and a minute, and at least
 * twenty times what the last rewrite took (each streams the whole results.jsonl: on a fast run of
 * 20,000 commands, pauses of a twentieth of the age and ten times the write cost a quarter of the
 * tasker's CPU). Pure.
 */
export function refreshPauseMs(ageMs: number, lastWriteMs: number, minMs: number): number {
  const paced = Math.min(Math.max(minMs, maxRefreshPauseMs), Math.max(minMs, Math.round(ageMs / 10)));
  return Math.max(paced, 20 * lastWriteMs);
}

export interface RefresherOptions {
  /** Writes the report; `nextPauseMs`: how long until the next write, about (the page polls at that pace). */
  write: (nextPauseMs: number) => Promise<unknown>;
  /** The shortest pause between two writes (TASKER_REPORT_INTERVAL). */
  minIntervalMs: number;
  now: () => number;
  logger: Logger;
  runId: string;
}

export function startReportRefresher(options: RefresherOptions): ReportRefresher {
  const { logger, runId } = options;
  const startedMs = options.now();
  let stopped = false;
  let current: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let lastWriteMs = 0;

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
      await options.write(refreshPauseMs(started - startedMs, lastWriteMs, options.minIntervalMs));
      failures = 0;
    } catch (error) {
      // The run goes on without a fresh report; the first failure in a row is logged, not every one.
      if (failures++ === 0) logger.warn({ runId, err: error }, 'report.html could not be refreshed');
    }
    const ended = options.now();
    lastWriteMs = ended - started;
    schedule(refreshPauseMs(ended - startedMs, lastWriteMs, options.minIntervalMs));
  };
  // The first report right away: its path is printed at the start, and must open.
  schedule(0);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await current;
    },
  };
}
