import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { runsDirOf, type RunLayout } from '../../shared/run-dir/run-layout.js';
import type { RunConfig } from '../config.js';
import { sha256File } from '../jobs/jobs-reader.js';
import type { Plan } from '../jobs/planning.js';
import { assignPools, withDefaultPools } from '../jobs/phase-pools.js';
import { runRecordPath, type RunRecord } from '../run-state/run-record.js';

/** Resuming a run: its plan comes from its own run.json and jobs copies, checked against what was asked for. */

export async function planResumedRun(layout: RunLayout, config: RunConfig, logger: Logger): Promise<Plan> {
  const plan = await loadExistingRun(layout, config);
  if (config.clean) logger.warn({ runId: layout.runId }, 'resuming an existing run: --clean is ignored, the workdir is never cleaned on resume');
  return plan;
}

async function loadExistingRun(layout: RunLayout, config: RunConfig): Promise<Plan> {
  const record = JSON.parse(await fs.readFile(runRecordPath(layout), 'utf8')) as RunRecord;
  if (config.files.length > 0) await checkSameFiles(layout, config, record);
  const sources = record.files.map((file) => ({ displayPath: file.path, readPath: join(layout.runDir, file.copy), sha256: file.sha256 }));
  for (const source of sources) {
    if (!existsSync(source.readPath)) throw new InputError('run-state', `run ${layout.runId} is missing its copy of ${source.displayPath} (${source.readPath}); it cannot be resumed`);
  }
  // --pool on resume moves a phase to another pool: its commands not yet queued go there.
  return { split: record.split ?? undefined, sources, scans: [], phases: assignPools(withDefaultPools(record.phases), config.pools) };
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
