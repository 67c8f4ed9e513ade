import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { PhaseSpec, SplitPreset } from '../jobs/plan.js';
import { writePlanJson, type Plan } from '../jobs/planning.js';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';

/** A new run's records in its run directory: the copies of its jobs files, run.json and plan.json. */

/** run.json: the small, machine-read record of a run that a resumed tasker starts from. */
export interface RunRecord {
  version: 1;
  runId: string;
  createdAt: string;
  split: SplitPreset | null;
  files: { path: string; sha256: string; copy: string }[];
  phases: PhaseSpec[];
}

export function runRecordPath(layout: RunLayout): string {
  return join(layout.runDir, 'run.json');
}

/**
 * Copies the copies made while planning into the run directory, the run's record of its input (a
 * resume checks them against their sha256: jobs-copies.ts). The plan keeps reading the tasker's
 * own copies: commands can write in the run directory. Returns what run.json lists of them.
 */
export async function copyJobsToRun(run: RunLayout, plan: Plan): Promise<RunRecord['files']> {
  await fs.mkdir(run.jobsDir, { recursive: true });
  const files: RunRecord['files'] = [];
  for (const [index, source] of plan.sources.entries()) {
    const copy = run.jobsCopyPath(index, source.displayPath);
    await fs.copyFile(source.readPath, copy);
    files.push({ path: source.displayPath, sha256: source.sha256, copy: copy.slice(run.runDir.length + 1) });
  }
  return files;
}

/** Writes run.json; returns the sha256 of what it wrote. */
export async function writeRunRecord(run: RunLayout, record: RunRecord): Promise<string> {
  const bytes = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  await fs.writeFile(runRecordPath(run), bytes);
  return createHash('sha256').update(bytes).digest('hex');
}

export async function writePlanFile(run: RunLayout, plan: Plan, runId: string): Promise<void> {
  const handle = await fs.open(run.planPath, 'w');
  try {
    // Written in 1 MiB pieces: one write per command costs seconds on a million-line file.
    let pending = '';
    await writePlanJson(
      plan,
      async (chunk) => {
        pending += chunk;
        if (pending.length >= 1024 * 1024) {
          await handle.write(pending);
          pending = '';
        }
      },
      { runId },
    );
    await handle.write(pending);
  } finally {
    await handle.close();
  }
}
