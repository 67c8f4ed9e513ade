import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import type { Plan } from '../jobs/planning.js';
import type { PlannedCommand } from '../jobs/plan.js';
import { readResultRecords } from './results-file.js';
import { archivedResultsPath, writePlanFile, writeRunRecord, type RunRecord } from './run-record.js';

/**
 * A run's records move to the next revision (its jobs files were edited): the new copies, the
 * results of unchanged commands carried over to their new ids (the earlier results kept whole as
 * results.rN.jsonl), run.json, plan.json. In that order, so that a crash before run.json is
 * renamed leaves the archive of the current revision, which `recoverRevision` puts back.
 */

/** A command of a plan with its phase. */
export interface RerunCommand extends PlannedCommand {
  phase: string;
  phaseIndex: number;
}

export interface Revision {
  /** The revision the run becomes (2 after the first edit). */
  number: number;
  record: RunRecord;
  bytes: Buffer;
  sha256: string;
  /** run.json's sha256 before: what Redis was told (distributed). */
  previousSha256: string;
  /** Earlier id → the command it is now (same phase and text): its results carry over to the new id. */
  carry: Map<string, RerunCommand>;
  /** Ids that run again: a mark of an earlier command under the same id must not make a worker skip them. */
  rerunIds: string[];
}

export async function writeRevision(run: RunLayout, revision: Revision, plan: Plan): Promise<void> {
  for (const [index, source] of plan.sources.entries()) await fs.copyFile(source.readPath, join(run.runDir, revision.record.files[index]!.copy));
  const next = `${run.resultsPath}.next`;
  await writeCarried(run.resultsPath, next, revision);
  const archive = archivedResultsPath(run, revision.number - 1);
  // Whole or not at all: a resume after a crash puts the archive back in place of results.jsonl.
  if (existsSync(run.resultsPath)) await fs.copyFile(run.resultsPath, `${archive}.tmp`);
  else await fs.writeFile(`${archive}.tmp`, '');
  await fs.rename(`${archive}.tmp`, archive);
  await fs.rename(next, run.resultsPath);
  await writeRunRecord(run, revision.record);
  await writePlanFile(run, plan, run.runId, revision.record.mode === 'rabbitmq');
}

/** The records of carried commands, under their new id, line, file and phase. */
async function writeCarried(from: string, to: string, revision: Revision): Promise<void> {
  const handle = await fs.open(to, 'w');
  try {
    let pending = '';
    for await (const record of readResultRecords(from)) {
      const now = revision.carry.get(record.id);
      if (now === undefined) continue;
      pending += `${JSON.stringify({ ...record, id: now.id, file: now.file, line: now.line, phase: now.phase, phaseIndex: now.phaseIndex })}\n`;
      if (pending.length >= 1024 * 1024) {
        await handle.write(pending);
        pending = '';
      }
    }
    await handle.write(pending);
  } finally {
    await handle.close();
  }
}

/** A revision whose writing stopped before run.json: the current revision's results are put back. */
export async function recoverRevision(run: RunLayout, record: RunRecord): Promise<void> {
  const archive = archivedResultsPath(run, record.revision ?? 1);
  if (existsSync(archive)) await fs.rename(archive, run.resultsPath);
}

/** The results files of the run's earlier revisions. */
export function earlierResultsPaths(run: RunLayout, record: Pick<RunRecord, 'earlier'>): string[] {
  return (record.earlier ?? []).map((entry) => archivedResultsPath(run, entry.revision)).filter((path) => existsSync(path));
}
