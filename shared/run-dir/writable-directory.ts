import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { markerDirName } from './run-layout.js';

/**
 * Throws one InputError unless `path` is a directory this user can write to, ending with `fix`
 * (what to do about it). The tasker's workdir and the worker's both pass through here.
 */
export async function checkWritableDirectory(path: string, fix: string): Promise<void> {
  const stat = await fs.stat(path);
  if (!stat.isDirectory()) throw new InputError('workdir', `workdir ${path} is a file, not a directory; ${fix}`);
  try {
    await fs.access(path, constants.W_OK | constants.X_OK);
    // access() says yes to root on a read-only or special file system: make sure with a real write.
    await fs.rmdir(await fs.mkdtemp(join(path, `${markerDirName}-write-test-`)));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new InputError('workdir', `workdir ${path} is not writable by this user (${code}); ${fix}`, { cause: error });
  }
}
