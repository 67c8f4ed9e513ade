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
  /** How the run dispatches its workers phases; a resume in the other mode is refused. Absent from runs recorded before. */
  mode?: RunMode;
  /** Distributed runs: the namespace of their queues and Redis keys. */
  namespace?: string;
  /** 1 until a resume with edited jobs files made a new revision (absent: 1). */
  revision?: number;
  /** The files of earlier revisions (their copies stay in jobs/, their results in results.rN.jsonl). */
  earlier?: { revision: number; files: RunRecord['files']; replacedAt: string }[];
}

/** `rabbitmq`: workers phases go through RabbitMQ to the workers; `local`: to local slots. */
export type RunMode = 'local' | 'rabbitmq';

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

/** run.json's bytes and their sha256, as writeRunRecord writes them. */
export function runRecordBytes(record: RunRecord): { bytes: Buffer; sha256: string } {
  const bytes = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Writes run.json (in one rename: a crash leaves the old one or the new one); returns the sha256 of what it wrote. */
export async function writeRunRecord(run: RunLayout, record: RunRecord): Promise<string> {
  const { bytes, sha256 } = runRecordBytes(record);
  const next = `${runRecordPath(run)}.next`;
  await fs.writeFile(next, bytes);
  await fs.rename(next, runRecordPath(run));
  return sha256;
}

/** Where the results of an earlier revision of the run are kept once its jobs files were edited. */
export function archivedResultsPath(run: RunLayout, revision: number): string {
  return join(run.runDir, `results.r${revision}.jsonl`);
}

/** `distributed`: the run's mode, for what plan.json says runs its workers phases. */
export async function writePlanFile(run: RunLayout, plan: Plan, runId: string, distributed: boolean): Promise<void> {
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
      distributed,
      { runId },
    );
    await handle.write(pending);
  } finally {
    await handle.close();
  }
}
