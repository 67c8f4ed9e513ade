import cliProgress from 'cli-progress';
import { formatDuration } from '../../shared/config/duration.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Progress } from '../dispatch/phase-ports.js';

/** The progress of `tasker run` as the user watches it: a live bar on a terminal, else a log line every so often. */

export interface ProgressReporter {
  stop(): void;
}

/** Remaining time from the completion rate of this session; undefined until there is a rate. */
export function estimateRemainingMs(progress: Progress, elapsedMs: number): number | undefined {
  if (progress.finishedThisSession === 0 || elapsedMs <= 0) return undefined;
  const remaining = progress.total - progress.done - progress.failed;
  return (remaining * elapsedMs) / progress.finishedThisSession;
}

export function createEmptyProgress(): Progress {
  return { phase: '', phaseIndex: 0, phaseCount: 0, total: 0, done: 0, failed: 0, running: 0, finishedThisSession: 0 };
}

function noticeText(notice: (() => string | undefined) | undefined): string {
  const text = notice?.();
  return text === undefined ? '' : ` | ${text}`;
}

/**
 * A live bar on a terminal; elsewhere (a pod's log, CI) one log line every `intervalMs`,
 * so `kubectl logs` shows where a run is without flooding.
 */
export function startProgressReporter(options: {
  progress: Progress;
  logger: Logger;
  terminal: NodeJS.WriteStream | undefined;
  intervalMs: number;
  now: () => number;
  /** What `progress.running` counts: commands running here, or handed to the queue and unfinished. */
  runningLabel: 'running' | 'queued or running';
  /** A warning the line carries while it holds (no worker consumes the phase's pool). Default: none. */
  notice?: () => string | undefined;
}): ProgressReporter {
  const { progress, logger, runningLabel } = options;
  const startedAt = options.now();

  if (options.terminal !== undefined) {
    const bar = new cliProgress.SingleBar(
      {
        stream: options.terminal,
        format: ` {phaseLabel} [{bar}] {value}/{total} done | {failed} failed | {running} ${runningLabel} | ETA {etaText}{notice}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (): Record<string, string | number> => {
      const eta = estimateRemainingMs(progress, options.now() - startedAt);
      return {
        phaseLabel: `phase ${progress.phaseIndex}/${progress.phaseCount} ${progress.phase}`,
        failed: progress.failed,
        running: progress.running,
        etaText: eta === undefined ? '…' : formatDuration(eta),
        notice: noticeText(options.notice),
      };
    };
    bar.start(progress.total, progress.done, payload());
    // The total is known only once the phases are planned: keep it in step.
    const refresh = (): void => {
      if (bar.getTotal() !== progress.total) bar.setTotal(progress.total);
      bar.update(progress.done, payload());
    };
    const timer = setInterval(refresh, 200);
    return {
      stop() {
        clearInterval(timer);
        refresh();
        bar.stop();
      },
    };
  }

  const report = (): void => {
    const eta = estimateRemainingMs(progress, options.now() - startedAt);
    logger.info(
      {
        phase: progress.phase,
        phaseIndex: progress.phaseIndex,
        done: progress.done,
        failed: progress.failed,
        running: progress.running,
        total: progress.total,
        ...(eta === undefined ? {} : { etaMs: Math.round(eta) }),
      },
      `progress ${progress.done}/${progress.total} done, ${progress.failed} failed, ${progress.running} ${runningLabel}${eta === undefined ? '' : `, ETA ${formatDuration(eta)}`}${noticeText(options.notice)}`,
    );
  };
  const timer = setInterval(report, options.intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
