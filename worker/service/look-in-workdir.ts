import { promises as fs } from 'node:fs';
import { runLayout } from '../../shared/run-dir/run-layout.js';
import { readRunToken } from '../../shared/run-dir/run-token.js';
import type { RunDirLook } from '../message/run-directory-check.js';

/** The run directory check's look on disk (message/run-directory-check.ts stays free of I/O). */

/** `look` for a workdir on disk: the token first (one read, the usual case), the directory only without one. */
export function lookInWorkdir(workdir: string): (runId: string) => Promise<RunDirLook> {
  return async (runId) => {
    const layout = runLayout(workdir, runId);
    const token = await readRunToken(layout.tokenPath);
    if (token !== undefined) return { dirExists: true, token };
    try {
      return { dirExists: (await fs.stat(layout.runDir)).isDirectory(), token };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return { dirExists: false, token };
      throw error;
    }
  };
}
