import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import split2 from 'split2';
import { InputError } from '../../shared/errors.js';
import { isValidRunId, markerDirName, runLayout } from '../../shared/state/run-layout.js';
import { parseResultLine } from '../../shared/state/results.js';
import { createResultTallier, runState, type RunOverview } from '../report/run-overview.js';
import type { RunSummary } from '../report/summary.js';
import { runRecordPath, type RunRecord } from './run-record.js';

/** `tasker runs` and `tasker status --workdir`: the runs of a workdir, read from their files. */

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // torn by a crash mid-write: treated as missing, the other files still tell
  }
}

export interface LocalRun {
  overview: RunOverview;
  /** summary.json, when it describes the run's latest session. */
  summary: RunSummary | undefined;
}

/** One run of the workdir; undefined when its directory has no run.json (not a run, or not started). */
export async function readLocalRun(workdir: string, runId: string): Promise<LocalRun | undefined> {
  const layout = runLayout(workdir, runId);
  const record = await readJson<RunRecord>(runRecordPath(layout));
  if (record === undefined) return undefined;
  const tallier = createResultTallier();
  if (existsSync(layout.resultsPath)) {
    for await (const line of createReadStream(layout.resultsPath).pipe(split2()) as AsyncIterable<string>) {
      const result = parseResultLine(line);
      if (result !== undefined) tallier.add(result);
    }
  }
  const results = tallier.tally();
  const summary = await readJson<RunSummary>(layout.summaryPath);
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

function runsDir(workdir: string): string {
  return join(workdir, markerDirName, 'runs');
}

/** Every run of the workdir, newest first. */
export async function listLocalRuns(workdir: string): Promise<RunOverview[]> {
  let ids: string[];
  try {
    ids = await fs.readdir(runsDir(workdir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new InputError('workdir', `cannot read the runs of ${workdir}: ${(error as Error).message}`, { cause: error });
  }
  const runs: RunOverview[] = [];
  for (const id of ids) {
    const run = await readLocalRun(workdir, id);
    if (run !== undefined) runs.push(run.overview);
  }
  return runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId));
}

/** The run to show: the one named, else the newest; a clear error when there is none. */
export async function findLocalRun(workdirInput: string, runId: string | undefined): Promise<LocalRun> {
  const workdir = resolve(workdirInput);
  if (runId !== undefined && !isValidRunId(runId)) throw new InputError('run-state', `"${runId}" is not a run id: 1-64 letters, digits, ".", "_" or "-"`);
  if (!existsSync(runsDir(workdir))) {
    throw new InputError('run-state', `no tasker runs in ${workdir} (no ${markerDirName}/runs there): give the workdir of a local run with --workdir DIR, or set AMQP_URL (or --amqp-url) to ask RabbitMQ and Redis about a distributed run`);
  }
  const id = runId ?? (await listLocalRuns(workdir))[0]?.runId;
  const run = id === undefined ? undefined : await readLocalRun(workdir, id);
  if (run === undefined) {
    const known = (await listLocalRuns(workdir)).slice(0, 5).map((r) => r.runId);
    throw new InputError('run-state', `no run "${runId ?? ''}" in ${workdir}; runs there: ${known.join(', ') || 'none'} (tasker runs --workdir ${workdir} lists them)`);
  }
  return run;
}
