import { constants, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../shared/errors.js';

/**
 * The worker's workdir is the directory it shares with the tasker (a volume in a pod). A worker
 * must not create it: a missing one means a wrong --workdir or mount, and commands run in an
 * empty directory of their own would fail, or worse, seem to work. Checked before connecting.
 */
export async function checkWorkerWorkdir(workdir: string): Promise<void> {
  const path = resolve(workdir);
  let isDirectory: boolean;
  try {
    isDirectory = (await fs.stat(path)).isDirectory();
  } catch (error) {
    throw new InputError('workdir', `workdir ${path} does not exist; it must be the directory shared with the tasker (check --workdir or WORKDIR, and the volume mount)`, { cause: error });
  }
  if (!isDirectory) throw new InputError('workdir', `workdir ${path} is a file, not a directory; check --workdir or WORKDIR`);
  try {
    await fs.access(path, constants.W_OK | constants.X_OK);
    // access() says yes to root on a read-only file system: make sure with a real write.
    await fs.rmdir(await fs.mkdtemp(join(path, '.tasker-write-test-')));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new InputError('workdir', `workdir ${path} is not writable by this user (${code}); commands and their logs are written there. Fix its permissions or mount it read-write`, { cause: error });
  }
}
