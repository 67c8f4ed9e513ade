import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { runsDirOf, type RunLayout } from '../../shared/run-dir/run-layout.js';
import type { RunConfig } from '../config.js';
import { takeRecordedCopies } from '../jobs/jobs-copies.js';
import { sha256File } from '../jobs/jobs-reader.js';
import { planPhases, type PhaseSpec } from '../jobs/plan.js';
import type { Plan } from '../jobs/planning.js';
import { assignPools, withDefaultPools } from '../jobs/phase-pools.js';
import { runRecordPath, type RunRecord } from '../run-state/run-record.js';

/**
 * Resuming a run: its plan comes from its own run.json and jobs copies, checked against what was
 * asked for and against each other (the run directory is on the shared volume, where commands
 * write): the copies must have the sha256 recorded when the run was prepared, and the phases of
 * run.json must be those of the copies. `scratchDir` receives the checked copies the run reads.
 */

export async function planResumedRun(layout: RunLayout, config: RunConfig, logger: Logger, scratchDir: string): Promise<Plan> {
  const plan = await loadExistingRun(layout, config, scratchDir);
  if (config.clean) logger.warn({ runId: layout.runId }, 'resuming an existing run: --clean is ignored, the workdir is never cleaned on resume');
  return plan;
}

async function loadExistingRun(layout: RunLayout, config: RunConfig, scratchDir: string): Promise<Plan> {
  const { record, sha256 } = await readRunRecord(layout);
  if (config.files.length > 0) await checkSameFiles(layout, config, record);
  const split = record.split ?? undefined;
  const scratchPath = (index: number): string => join(scratchDir, String(index));
  const copies = { runId: layout.runId, runDir: layout.runDir, jobsDir: layout.jobsDir, recordPath: runRecordPath(layout), files: record.files, split, scratchPath };
  const { sources, scans } = await takeRecordedCopies(copies);
  const recorded = withDefaultPools(record.phases);
  checkPhases(layout, recorded, planPhases(scans, split));
  // --pool on resume moves a phase to another pool: its commands not yet queued go there.
  return { split, sources, scans, phases: assignPools(recorded, config.pools), recordSha256: sha256 };
}

/** run.json, parsed and of the expected shape, with the sha256 of its bytes. */
async function readRunRecord(layout: RunLayout): Promise<{ record: RunRecord; sha256: string }> {
  const path = runRecordPath(layout);
  const bytes = await fs.readFile(path);
  let record: RunRecord | undefined;
  try {
    record = JSON.parse(bytes.toString('utf8')) as RunRecord;
  } catch {
    record = undefined; // reported below, as any other damage
  }
  const fileOk = (file: unknown): boolean => typeof file === 'object' && file !== null && ['path', 'sha256', 'copy'].every((key) => typeof (file as Record<string, unknown>)[key] === 'string');
  if (record?.version !== 1 || !Array.isArray(record.files) || !record.files.every(fileOk) || !Array.isArray(record.phases)) {
    throw new InputError('run-state', `${path} is damaged (not the run record the tasker wrote); run ${layout.runId} cannot be resumed: start a new run (another --run-id) from your jobs file`);
  }
  return { record, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The phases run.json records must be those its jobs copies give (pools aside: --pool may move them). */
function checkPhases(layout: RunLayout, recorded: readonly PhaseSpec[], planned: readonly PhaseSpec[]): void {
  const shape = (phase: PhaseSpec): string => JSON.stringify([phase.index, phase.name, phase.runsOn, phase.fileIndex, phase.selector, phase.commandCount]);
  const differs = recorded.length !== planned.length || recorded.some((phase, i) => shape(phase) !== shape(planned[i]!));
  if (!differs) return;
  throw new InputError(
    'run-state',
    `${runRecordPath(layout)}: its phases are not those of the run's jobs files (${planned.map((phase) => `${phase.name}: ${phase.commandCount}`).join(', ')}): ` +
      `run.json was changed since run ${layout.runId} was prepared, and the run cannot be resumed; start a new run (another --run-id) from your jobs file`,
  );
}

/** Jobs files given on resume must be the ones the run started with, unchanged, split the same way. */
async function checkSameFiles(layout: RunLayout, config: RunConfig, record: RunRecord): Promise<void> {
  const requestedSplit = config.split ?? null;
  if (config.files.length !== record.files.length) {
    throw new InputError('run-state', `run ${layout.runId} was started with ${record.files.length} jobs file(s), not ${config.files.length}; resume it with the same files, or without files (--resume ${layout.runId}), or start a new run with another --run-id`);
  }
  if (requestedSplit !== record.split) {
    throw new InputError('run-state', `run ${layout.runId} was started with --split ${record.split ?? '(none)'}; resume it with the same option`);
  }
  for (const [index, file] of config.files.entries()) {
    const expected = record.files[index]!;
    let actual: string;
    try {
      actual = await sha256File(file);
    } catch (error) {
      throw new InputError('jobs-file', `jobs file not readable: ${file}`, { cause: error });
    }
    if (actual !== expected.sha256) {
      throw new InputError('run-state', `${file} changed since run ${layout.runId} started; a resumed run must run the same commands. Start a new run (another --run-id), or resume without files to use the run's own copy`);
    }
  }
}

async function listRuns(workdir: string): Promise<string[]> {
  try {
    return (await fs.readdir(runsDirOf(workdir))).sort();
  } catch {
    return []; // no runs directory: no runs
  }
}

/** --resume of a run that is not there: the error names the runs that are. */
export async function missingRunError(workdirPath: string, runId: string): Promise<InputError> {
  const runs = await listRuns(workdirPath);
  return new InputError(
    'run-state',
    `no run "${runId}" in ${runsDirOf(workdirPath)}${runs.length > 0 ? ` (runs there: ${runs.slice(-5).join(', ')})` : ' (no runs there yet)'}; check --workdir and the run id`,
  );
}
