import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../../shared/errors.js';
import { markerDirName } from '../../shared/run-dir/run-layout.js';
import { checkWritableDirectory } from '../../shared/run-dir/writable-directory.js';
import { cleanRefusal } from './clean-guard.js';

/** Preparing the workdir: creating and checking it, the `--clean` check and emptying, copying `--stage` inputs in. */

/**
 * `mkdir -p`, without Node's recursive mode: that one loops forever, busy and deaf to signals,
 * where mkdir answers ENOENT under a parent that exists (/proc).
 */
async function makeDirectories(path: string): Promise<void> {
  const missing: string[] = [];
  for (let current = path; ; current = dirname(current)) {
    try {
      await fs.stat(current);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    missing.push(current);
    if (dirname(current) === current) break;
  }
  for (const directory of missing.reverse()) {
    try {
      await fs.mkdir(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error; // made meanwhile by someone else: fine
    }
  }
}

/** Creates the workdir when missing and checks it is a writable directory. Returns its real path. */
export async function prepareWorkdir(workdir: string): Promise<string> {
  const path = resolve(workdir);
  try {
    await makeDirectories(path);
  } catch (error) {
    throw new InputError('workdir', `cannot create workdir ${path} (${(error as Error).message}); create it yourself or choose another --workdir`, { cause: error });
  }
  await checkWritableDirectory(path, 'fix its permissions or choose another --workdir');
  return fs.realpath(path);
}

/** Throws unless `--clean` may empty the workdir. Call before anything is changed. */
export async function checkClean(workdir: string, force: boolean): Promise<void> {
  const entries = await fs.readdir(workdir);
  let home = homedir();
  try {
    home = await fs.realpath(home);
  } catch {
    // a home that does not exist cannot be inside the workdir; compare the plain path
  }
  const refusal = cleanRefusal({
    workdir,
    home,
    isEmpty: entries.length === 0,
    hasMarker: entries.includes(markerDirName),
    force,
  });
  if (refusal !== undefined) throw new InputError('workdir', refusal);
}

/** Empties the workdir, keeping the directory itself (it is often a volume mount point). */
export async function emptyWorkdir(workdir: string): Promise<number> {
  const entries = await fs.readdir(workdir);
  await Promise.all(entries.map((entry) => fs.rm(join(workdir, entry), { recursive: true, force: true })));
  return entries.length;
}

/** Checks every --stage path exists before anything is cleaned. */
export async function checkStagePaths(paths: readonly string[], workdir: string, willClean: boolean): Promise<void> {
  for (const path of paths) {
    const real = resolve(path);
    if (willClean && (real === workdir || real.startsWith(`${workdir}/`))) {
      throw new InputError('usage', `--stage ${path} is inside the workdir, which --clean empties first; stage from outside the workdir`);
    }
    try {
      await fs.stat(path);
    } catch (error) {
      throw new InputError('usage', `--stage ${path}: no such file or directory`, { cause: error });
    }
    const name = basename(resolve(path));
    if (name === markerDirName) throw new InputError('usage', `--stage ${path}: a path named ${markerDirName} would overwrite the run records`);
    const target = resolve(workdir, name);
    if (resolve(path) === target) throw new InputError('usage', `--stage ${path} is already in the workdir; nothing to copy`);
  }
}

/** Copies each --stage path into the workdir under its own name. */
export async function stageInputs(paths: readonly string[], workdir: string): Promise<string[]> {
  const staged: string[] = [];
  for (const path of paths) {
    const target = join(workdir, basename(resolve(path)));
    await fs.cp(path, target, { recursive: true, force: true, preserveTimestamps: true });
    staged.push(target);
  }
  return staged;
}
