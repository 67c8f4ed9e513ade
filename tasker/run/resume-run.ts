import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { runsDirOf, type RunLayout } from '../../shared/run-dir/run-layout.js';
import type { RunConfig } from '../config.js';
import { takeRecordedCopies } from '../jobs/jobs-copies.js';
import { sha256File } from '../jobs/jobs-reader.js';
import { planPhases, type PhaseSpec, type SplitPreset } from '../jobs/plan.js';
import { scanAndPlan, type Plan } from '../jobs/planning.js';
import { countReasons } from '../jobs/rerun-diff.js';
import { readPriorStatuses } from '../run-state/results-file.js';
import { recoverRevision } from '../run-state/run-revision.js';
import { buildRevision, comparePlans, type RerunComparison, type Revision } from './rerun-plan.js';
import { assignPools, withDefaultPools } from '../jobs/phase-pools.js';
import { runRecordPath, type RunRecord } from '../run-state/run-record.js';

/**
 * Resuming a run: its plan comes from its own run.json and jobs copies, checked against each other
 * (the run directory is on the shared volume, where commands write): the copies must have the
 * sha256 recorded when the run was prepared, and the phases of run.json must be those of the
 * copies. Jobs files given that differ from the copies make the run's next revision: what runs
 * again is decided by content (rerun-plan.ts). `scratchDir` receives the checked copies the run reads.
 */

/** What resuming needs from the command line (`tasker run` or `tasker plan --resume`). */
export interface ResumeRequest {
  files: readonly string[];
  split: SplitPreset | undefined;
  pools: RunConfig['pools'];
  /** The environment commands run with (the shell's syntax check of edited files). */
  commandEnv: Record<string, string | undefined>;
  /** Compare even when the files were not edited (`tasker plan --resume`); a run compares edited ones only (it holds both plans in memory). */
  compareAlways?: boolean;
}

export interface LoadedResume {
  record: RunRecord;
  sha256: string;
  /** The plan that runs: the edited files' when they differ from the run's, else the run's own. */
  plan: Plan;
  /** Undefined when not edited and not asked for. */
  comparison: RerunComparison | undefined;
}

export async function planResumedRun(layout: RunLayout, config: RunConfig, logger: Logger, scratchDir: string, commandEnv: ResumeRequest['commandEnv']): Promise<{ plan: Plan; revision: Revision | undefined }> {
  const { record } = await readRunRecord(layout);
  checkMode(layout, record, config);
  const loaded = await loadResume(layout, { ...config, commandEnv }, scratchDir);
  if (config.clean) logger.warn({ runId: layout.runId }, 'resuming an existing run: --clean is ignored, the workdir is never cleaned on resume');
  const { plan, comparison } = loaded;
  if (comparison?.edited !== true) return { plan, revision: undefined };
  const revision = buildRevision(layout, loaded, plan, comparison, new Date());
  logger.info({ runId: layout.runId, revision: revision.number, kept: comparison.diff.kept, deleted: comparison.diff.deleted.length, ...countReasons(comparison.diff) }, 'jobs files edited since the run started: unchanged commands that succeeded are kept, the rest runs again');
  return { plan, revision };
}

/** The run's plan from its records and, with files given that differ, the edited one; compared. Changes nothing but a revision left half-written. */
export async function loadResume(layout: RunLayout, request: ResumeRequest, scratchDir: string): Promise<LoadedResume> {
  const { record, sha256 } = await readRunRecord(layout);
  await recoverRevision(layout, record);
  const edited = request.files.length > 0 && (await filesChanged(layout, request, record));
  const before = await recordedPlan(layout, record, (index) => join(scratchDir, String(index)));
  before.recordSha256 = sha256;
  let after: Plan | undefined;
  if (edited) {
    after = await scanAndPlan(request.files, request.split, request.commandEnv, (index) => join(scratchDir, `edited-${index}`));
    after.phases = assignPools(after.phases, request.pools);
    after.recordSha256 = sha256;
  }
  const comparison = edited || request.compareAlways === true ? await comparePlans(before, after, await readPriorStatuses(layout.resultsPath)) : undefined;
  before.phases = assignPools(before.phases, request.pools);
  return { record, sha256, plan: after ?? before, comparison };
}

async function recordedPlan(layout: RunLayout, record: RunRecord, scratchPath: (index: number) => string): Promise<Plan> {
  const split = record.split ?? undefined;
  const copies = { runId: layout.runId, runDir: layout.runDir, jobsDir: layout.jobsDir, recordPath: runRecordPath(layout), files: record.files, split, scratchPath };
  const { sources, scans } = await takeRecordedCopies(copies);
  const recorded = withDefaultPools(record.phases);
  checkPhases(layout, recorded, planPhases(scans, split));
  // --pool on resume moves a phase to another pool (assigned by the caller): its commands not yet queued go there.
  return { split, sources, scans, phases: recorded };
}

/** A distributed run resumes through its broker and namespace, a local one without a broker: the other way would run it elsewhere, silently. */
function checkMode(layout: RunLayout, record: RunRecord, config: Pick<RunConfig, 'amqpUrl' | 'namespace'>): void {
  const id = layout.runId;
  if (record.mode === 'rabbitmq' && config.amqpUrl === undefined) {
    throw new InputError('run-state', `run ${id} is a distributed run (RabbitMQ, namespace ${record.namespace ?? 'tasker'}): resume it with AMQP_URL set (and REDIS_URL and TASKER_SIGNING_KEY as when it started); without a broker the tasker would run its commands itself`);
  }
  if (record.mode === 'local' && config.amqpUrl !== undefined) {
    throw new InputError('run-state', `run ${id} is a local run: resume it without a broker (unset AMQP_URL, no --amqp-url); its commands run on this machine`);
  }
  if (record.mode === 'rabbitmq' && record.namespace !== undefined && record.namespace !== config.namespace) {
    throw new InputError('run-state', `run ${id} is a distributed run of namespace ${record.namespace}, not ${config.namespace}: resume it with --namespace ${record.namespace} (or TASKER_NAMESPACE=${record.namespace})`);
  }
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

/** Jobs files given on resume: as many as the run has, split the same way; whether any differs from the run's (an edited run). */
async function filesChanged(layout: RunLayout, config: Pick<ResumeRequest, 'files' | 'split'>, record: RunRecord): Promise<boolean> {
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
    if (actual !== expected.sha256) return true;
  }
  return false;
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
