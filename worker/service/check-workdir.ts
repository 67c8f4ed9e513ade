import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { InputError } from '../../shared/errors.js';
import { checkWritableDirectory } from '../../shared/run-dir/writable-directory.js';

/**
 * The worker's workdir is the directory it shares with the tasker (a volume in a pod). A worker
 * must not create it: a missing one means a wrong --workdir or mount, and commands run in an
 * empty directory of their own would fail, or worse, seem to work. Checked before connecting.
 */
export async function checkWorkerWorkdir(workdir: string): Promise<void> {
  const path = resolve(workdir);
  try {
    await fs.stat(path);
  } catch (error) {
    throw new InputError('workdir', `workdir ${path} does not exist; it must be the directory shared with the tasker (check --workdir or WORKDIR, and the volume mount)`, { cause: error });
  }
  await checkWritableDirectory(path, 'commands and their logs are written there: check --workdir or WORKDIR, its permissions, and that the volume is mounted read-write');
}
