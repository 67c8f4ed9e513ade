import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The memory cgroup this process (and so every command it starts) runs in: its limit and how many
 * times the kernel's OOM killer acted in it. cgroup v2 (`memory.max`, `memory.events`) or v1
 * (`memory.limit_in_bytes`, `memory.oom_control`, kernel 4.13+). In a container or a pod this is
 * the container's cgroup: the limit is `resources.limits.memory`.
 */

export interface CgroupMemory {
  /** The directory of the cgroup's files. */
  directory: string;
  /** undefined: no limit set. */
  limitBytes: number | undefined;
  /** OOM kills in the cgroup so far; undefined when the kernel does not count them. */
  oomKills(): number | undefined;
}

/** v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages). */
const noLimitAbove = 2 ** 60;

/** `memory.max` / `memory.limit_in_bytes` as a limit; undefined for none. */
export function parseLimit(text: string): number | undefined {
  const value = text.trim();
  if (value === 'max' || value === '') return undefined;
  const bytes = Number(value);
  return Number.isFinite(bytes) && bytes > 0 && bytes < noLimitAbove ? bytes : undefined;
}

/** The `oom_kill` count of `memory.events` (v2) or `memory.oom_control` (v1). */
export function parseOomKills(text: string): number | undefined {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** The memory cgroup's path in /proc/self/cgroup: the v1 memory controller's, else the v2 one's. */
export function cgroupPaths(text: string): { version: 1 | 2; path: string } | undefined {
  const lines = text.split('\n');
  const v1 = lines.map((line) => line.split(':')).find((parts) => parts[1]?.split(',').includes('memory'));
  if (v1 !== undefined) return { version: 1, path: v1.slice(2).join(':') };
  const v2 = lines.find((line) => line.startsWith('0::'));
  return v2 === undefined ? undefined : { version: 2, path: v2.slice(3) };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The cgroup's directory: the path under the mount, or (inside a cgroup namespace or a container
 * that mounts only its own cgroup) the longest tail of it that exists there.
 */
function cgroupDirectory(mount: string, path: string, file: string): string | undefined {
  const parts = path.split('/').filter((part) => part !== '');
  for (let skip = 0; skip <= parts.length; skip++) {
    const directory = join(mount, ...parts.slice(skip));
    if (existsSync(join(directory, file))) return directory;
  }
  return undefined;
}

/** The memory cgroup of this process; undefined when none can be read (not Linux, no controller). */
export function findCgroupMemory(procRoot = '/proc', cgroupRoot = '/sys/fs/cgroup'): CgroupMemory | undefined {
  const own = readText(join(procRoot, 'self', 'cgroup'));
  const found = own === undefined ? undefined : cgroupPaths(own);
  if (found === undefined) return undefined;
  const [mount, limitFile, eventsFile] =
    found.version === 1 ? [join(cgroupRoot, 'memory'), 'memory.limit_in_bytes', 'memory.oom_control'] : [cgroupRoot, 'memory.max', 'memory.events'];
  const directory = cgroupDirectory(mount, found.path, limitFile);
  if (directory === undefined) return undefined;
  const limitText = readText(join(directory, limitFile));
  return {
    directory,
    limitBytes: limitText === undefined ? undefined : parseLimit(limitText),
    oomKills: () => {
      const events = readText(join(directory, eventsFile));
      return events === undefined ? undefined : parseOomKills(events);
    },
  };
}
