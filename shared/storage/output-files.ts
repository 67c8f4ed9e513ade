import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { glob } from 'tinyglobby';
import type { Logger } from '../observe/logger.js';
import type { Snapshot } from './outputs.js';

/** Finding the local files to upload. Paths are relative to the workdir, with `/` separators. */

function relativePath(root: string, absolute: string): string {
  return relative(root, absolute).split(sep).join('/');
}

/** Regular files matching the patterns whose real path stays inside the workdir. */
export async function snapshotOutputs(patterns: string[], workdir: string, logger: Logger): Promise<Snapshot> {
  const result: Snapshot = new Map();
  if (patterns.length === 0) return result;
  const root = await realpath(workdir);
  const matches = await glob(patterns, { cwd: root, onlyFiles: true, followSymbolicLinks: false, ignore: ['.tasker/**'], expandDirectories: false });
  for (const path of matches) {
    const absolute = join(root, path);
    try {
      const real = await realpath(absolute);
      if (!real.startsWith(root + sep)) {
        logger.warn({ path }, 'not uploaded: it is a link to outside the workdir');
        continue;
      }
      const stamp = await stat(real);
      if (!stamp.isFile()) continue;
      result.set(relativePath(root, absolute), { size: stamp.size, mtimeMs: stamp.mtimeMs, ino: stamp.ino });
    } catch (error) {
      // Deleted between the listing and the stat (a temporary file): nothing to upload.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return result;
}

/** Every regular file under `directory` (relative to `root`, the workdir's real path), sorted. */
export async function filesUnder(root: string, directory: string): Promise<string[]> {
  const entries = await readdir(join(root, directory), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relativePath(root, join(entry.parentPath, entry.name)))
    .sort();
}
