import { lstat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../../shared/errors.js';
import { scanJobsFile } from './jobs-reader.js';
import type { FileScan, SplitPreset } from './plan.js';
import type { JobsSource } from './planning.js';

/**
 * A run's copies of its jobs files, as a resumed tasker takes them back. The run directory is on
 * the shared volume, where any command can write: each copy must be a regular file inside the
 * run's jobs/ directory (run.json names it), with the sha256 recorded when the run was prepared.
 * Each is read once, checked and copied into the tasker's own scratch directory in the same pass;
 * the run reads its commands from that copy, so what a command writes later changes nothing.
 */

/** A copy as run.json records it: the file the user gave, its sha256, the copy relative to the run directory. */
export interface RecordedCopy {
  path: string;
  sha256: string;
  copy: string;
}

export interface CopiesToCheck {
  runId: string;
  runDir: string;
  jobsDir: string;
  /** run.json, for messages. */
  recordPath: string;
  files: readonly RecordedCopy[];
  split: SplitPreset | undefined;
  /** Where the checked copy of file `index` goes (a private scratch directory). */
  scratchPath(index: number): string;
}

/** Checks and takes every copy; throws an InputError naming the file that is not what the run recorded. */
export async function takeRecordedCopies(check: CopiesToCheck): Promise<{ sources: JobsSource[]; scans: FileScan[] }> {
  const sources: JobsSource[] = [];
  const scans: FileScan[] = [];
  for (const [index, file] of check.files.entries()) {
    const copyPath = await confinedCopy(check, file);
    const scratch = check.scratchPath(index);
    const scan = await scanJobsFile(copyPath, index, check.split, { displayName: file.path, copyTo: scratch });
    if (scan.sha256 !== file.sha256) {
      throw new InputError(
        'run-state',
        `${copyPath}: the run's copy of ${file.path} changed since run ${check.runId} was prepared (sha256 ${scan.sha256.slice(0, 12)}…, recorded ${file.sha256.slice(0, 12)}…): ` +
          `something wrote into the run directory (a command can). Resume runs only the commands it planned: start a new run (another --run-id) from your jobs file`,
      );
    }
    sources.push({ displayPath: file.path, readPath: scratch, sha256: scan.sha256 });
    scans.push(scan);
  }
  return { sources, scans };
}

/** The copy's path: inside the run's jobs directory, an existing regular file (not a link that leads elsewhere). */
async function confinedCopy(check: CopiesToCheck, file: RecordedCopy): Promise<string> {
  const path = resolve(check.runDir, file.copy);
  const inside = relative(check.jobsDir, path);
  if (isAbsolute(file.copy) || inside === '' || inside.startsWith('..') || isAbsolute(inside) || inside.includes(sep)) {
    throw new InputError(
      'run-state',
      `${check.recordPath} names ${JSON.stringify(file.copy)} as the copy of ${file.path}, which is not a file of the run's jobs directory ${check.jobsDir}: ` +
        `run.json was changed since run ${check.runId} was prepared, and the run cannot be resumed; start a new run (another --run-id) from your jobs file`,
    );
  }
  let stat;
  try {
    stat = await lstat(path);
  } catch (error) {
    throw new InputError('run-state', `run ${check.runId} is missing its copy of ${file.path} (${path}); it cannot be resumed`, { cause: error });
  }
  if (!stat.isFile()) {
    throw new InputError(
      'run-state',
      `${path}: the run's copy of ${file.path} is not a regular file (${stat.isSymbolicLink() ? 'a symbolic link' : 'something else'}): something replaced it since run ${check.runId} was prepared. ` +
        'Resume runs only the commands it planned: start a new run (another --run-id) from your jobs file',
    );
  }
  return path;
}
