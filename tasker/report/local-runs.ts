import { existsSync, promises as fs } from 'node:fs';
import { InputError } from '../../shared/errors.js';
import { isValidRunId, markerDirName, runLayout, runsDirOf } from '../../shared/run-dir/run-layout.js';
import { readResultRecords } from '../run-state/results-file.js';
import { createResultTallier, runState, type RunOverview } from './run-overview.js';
import type { RunSummary } from './summary.js';
import { runRecordPath, type RunRecord } from '../run-state/run-record.js';
import { readJsonFile } from './report-input.js';

/** The runs of a workdir, read from their files: what `tasker runs`, `tasker status` without a broker, and `tasker report` find. */

export interface LocalRun {
  overview: RunOverview;
  /** summary.json, when it describes the run's latest session. */
  summary: RunSummary | undefined;
}

/** One run of the workdir; undefined when its directory has no run.json (not a run, or not started). */
export async function readLocalRun(workdir: string, runId: string): Promise<LocalRun | undefined> {
  const layout = runLayout(workdir, runId);
  const record = await readJsonFile<RunRecord>(runRecordPath(layout));
  if (record === undefined) return undefined;
  const tallier = createResultTallier();
  for await (const result of readResultRecords(layout.resultsPath)) tallier.add(result);
  const results = tallier.tally();
  const summary = await readJsonFile<RunSummary>(layout.summaryPath);
  const state = runState(summary, results.lastFinishedAt);
  const current = state === 'unfinished' ? undefined : summary;
  const overview: RunOverview = {
    runId,
    createdAt: record.createdAt,
    files: record.files.map((file) => file.path),
    commands: record.phases.reduce((sum, phase) => sum + phase.commandCount, 0),
    state,
    finishedAt: current?.finishedAt,
    exitCode: current?.exitCode,
    results,
  };
  return { overview, summary: current };
}

/** The runs of the workdir (those with a run.json), newest first: read from run.json alone. */
async function runIdsNewestFirst(workdir: string): Promise<string[]> {
  let ids: string[];
  try {
    ids = await fs.readdir(runsDirOf(workdir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new InputError('workdir', `cannot read the runs of ${workdir}: ${(error as Error).message}`, { cause: error });
  }
  const runs: { id: string; createdAt: string }[] = [];
  for (const id of ids) {
    const record = await readJsonFile<RunRecord>(runRecordPath(runLayout(workdir, id)));
    if (record !== undefined) runs.push({ id, createdAt: record.createdAt });
  }
  return runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id)).map((run) => run.id);
}

/** Every run of the workdir, newest first. */
export async function listLocalRuns(workdir: string): Promise<RunOverview[]> {
  const runs: RunOverview[] = [];
  for (const id of await runIdsNewestFirst(workdir)) {
    const run = await readLocalRun(workdir, id);
    if (run !== undefined) runs.push(run.overview);
  }
  return runs;
}

/** The run to show: the one named, else the newest; a clear error when there is none. */
export async function findLocalRun(workdir: string, runId: string | undefined): Promise<LocalRun> {
  const id = await findLocalRunId(workdir, runId);
  const run = await readLocalRun(workdir, id);
  if (run === undefined) throw noSuchRun(workdir, runId, await runIdsNewestFirst(workdir));
  return run;
}

function noSuchRun(workdir: string, runId: string | undefined, ids: readonly string[]): InputError {
  return new InputError('run-state', `no run "${runId ?? ''}" in ${workdir}; runs there: ${ids.slice(0, 5).join(', ') || 'none'} (tasker runs --workdir ${workdir} lists them)`);
}

/** The id of the run named (checked to exist), else of the newest run; a clear error when there is none. Reads run.json files only. */
export async function findLocalRunId(workdir: string, runId: string | undefined): Promise<string> {
  if (runId !== undefined && !isValidRunId(runId)) throw new InputError('run-state', `"${runId}" is not a run id: 1-64 letters, digits, ".", "_" or "-"`);
  if (!existsSync(runsDirOf(workdir))) {
    throw new InputError('run-state', `no tasker runs in ${workdir} (no ${markerDirName}/runs there): give the workdir of a local run with --workdir DIR, or set AMQP_URL (or --amqp-url) to ask RabbitMQ and Redis about a distributed run`);
  }
  const ids = await runIdsNewestFirst(workdir);
  const id = runId ?? ids[0];
  if (id === undefined || !ids.includes(id)) throw noSuchRun(workdir, runId, ids);
  return id;
}
