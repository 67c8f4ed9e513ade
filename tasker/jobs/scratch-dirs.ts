import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Temporary directories of this process (a jobs file's copy while it is planned, the commands
 * under a syntax check). Registered, so that an exit in the middle (Ctrl-C while checking input)
 * can still remove them synchronously.
 */

const live = new Set<string>();

export async function createScratchDir(prefix: string): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  live.add(path);
  return path;
}

export async function removeScratchDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  live.delete(path);
}

/** For an exit that cannot wait: removes every directory still registered. */
export function removeScratchDirsSync(): void {
  for (const path of live) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // best effort on the way out: a leftover directory in TMPDIR is harmless
    }
  }
  live.clear();
}
