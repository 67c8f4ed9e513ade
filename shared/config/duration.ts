import ms from 'ms';

/**
 * The longest delay Node's timers hold: 2^31-1 ms, about 24.8 days. A longer one fires at once
 * (with a TimeoutOverflowWarning), so `--timeout 30d` would time out every command the moment it
 * starts. Configuration refuses longer durations (config-values.ts), and workers refuse messages
 * that carry one (messages.ts).
 */
export const maxTimerMs = 2 ** 31 - 1;

/**
 * Parses a human duration: `90s`, `2h`, `1.5m`, `500ms`. A bare number means seconds,
 * as for GNU `timeout`. Returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // ms() accepts a few forms we do not want (negative values); the regex keeps it to "<number><unit>".
  if (!/^\d+(\.\d+)?\s*[a-z]+$/i.test(trimmed)) return undefined;
  const value = ms(trimmed as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

/** Formats milliseconds for people: `850ms`, `12.3s`, `4m05s`, `2h03m`. */
export function formatDuration(totalMs: number): string {
  if (!Number.isFinite(totalMs) || totalMs < 0) return '?';
  if (Math.round(totalMs) < 1000) return `${Math.round(totalMs)}ms`;
  const seconds = totalMs / 1000;
  if (Math.round(seconds * 10) < 600) return `${seconds.toFixed(1)}s`;
  const wholeSeconds = Math.round(seconds);
  const minutes = Math.floor(wholeSeconds / 60);
  if (minutes < 60) return `${minutes}m${String(wholeSeconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
}
