import { readdirSync, readFileSync } from 'node:fs';

/**
 * The resident memory of process groups, from /proc: one pass over /proc/PID/stat (readable by
 * every user, so commands run as another user are seen too) sums field 24 (rss, in pages) by field
 * 5 (the process group). Linux only; elsewhere every group reads as unknown.
 */

/** Bytes per page of `rss`: VmRSS (kB) over rss (pages) of this process, read once; 4 KiB when unknown. */
export function pageBytes(procRoot = '/proc'): number {
  try {
    const status = readFileSync(`${procRoot}/self/status`, 'utf8');
    const stat = readFileSync(`${procRoot}/self/stat`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
    const pages = Number(statFields(stat)?.[21]);
    if (kb > 0 && pages > 0) {
      const size = (kb * 1024) / pages;
      // Both are read a moment apart: round to the nearest power of two.
      return 2 ** Math.round(Math.log2(size));
    }
  } catch {
    // not Linux, or /proc not mounted: the default below
  }
  return 4096;
}

/** The fields of a /proc/PID/stat line after the command name (field 3, state, is index 0). */
export function statFields(line: string): string[] | undefined {
  const end = line.lastIndexOf(')'); // the name may hold spaces and parentheses
  if (end < 0) return undefined;
  return line.slice(end + 2).split(' ');
}

/**
 * The summed resident bytes of each group in `groups` that has a process now; groups with none are
 * left out. Costs one read per process on the machine (or in the container): call it for groups
 * that run long enough to be worth it.
 */
export function groupResidentBytes(groups: ReadonlySet<number>, bytesPerPage: number, procRoot = '/proc'): Map<number, number> {
  const sums = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return sums;
  }
  for (const entry of entries) {
    const first = entry.charCodeAt(0);
    if (first < 48 || first > 57) continue; // not a pid
    let line: string;
    try {
      line = readFileSync(`${procRoot}/${entry}/stat`, 'latin1');
    } catch {
      continue; // it ended since the listing
    }
    const fields = statFields(line);
    if (fields === undefined) continue;
    const group = Number(fields[2]);
    if (!groups.has(group)) continue;
    sums.set(group, (sums.get(group) ?? 0) + Number(fields[21]) * bytesPerPage);
  }
  return sums;
}
