/** Words for what a command used (pure): sizes as people read them, and why the OOM killer's victim died. */

/** The last memory sample of a running command, kept by its worker (shared/redis/redis-usage.ts). */
export interface UsageSample {
  attempt: number;
  rssBytes: number;
  /** The worker's memory limit (its container's), when one is set. */
  limitBytes?: number;
  worker: string;
  /** Whether the worker runs in a pod (POD_NAME): "the pod's memory limit". */
  pod?: boolean;
  at: string;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1.9 GiB, 200 MiB, 512 B: three significant digits at most. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))} ${units[unit]}`;
}

/** How the last memory seen and the limit read in a reason; '' when neither is known. */
export function memorySeen(lastRssBytes: number | null | undefined, limitBytes: number | undefined, whose: string): string {
  const seen = lastRssBytes === null || lastRssBytes === undefined ? '' : `last seen using ${formatBytes(lastRssBytes)}`;
  const limit = limitBytes === undefined ? '' : `${whose} memory limit is ${formatBytes(limitBytes)}`;
  return [seen, limit].filter((part) => part !== '').join('; ');
}

/** The reason of an attempt the kernel's OOM killer ended; `evidence` says how that is known. */
export function oomReason(evidence: 'cgroup' | 'sample', lastRssBytes: number | null, limitBytes: number | undefined): string {
  const how = evidence === 'cgroup' ? "its cgroup counted an oom_kill" : 'SIGKILL near the memory limit';
  const seen = memorySeen(lastRssBytes, limitBytes, 'the');
  const sampled = lastRssBytes === null ? '; it ended before its memory was sampled' : '';
  return `killed by the kernel's OOM killer (${how})${seen === '' ? '' : `: ${seen}`}${sampled}`;
}
