import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { redactUrl } from '../../shared/config/urls.js';
import { defaultPool, names } from '../../shared/config/names.js';
import { poolsOf } from '../jobs/phase-pools.js';
import type { Logger } from '../../shared/observe/logger.js';
import { runLayout, type RunLayout } from '../../shared/run-dir/run-layout.js';
import type { RunConfig } from '../config.js';
import type { Plan } from '../jobs/planning.js';
import type { Backend } from '../distributed/distributed-backend.js';
import { readEarlierAttempts, readPriorResults } from '../run-state/results-file.js';
import { earlierResultsPaths, writeRevision, type Revision } from '../run-state/run-revision.js';
import { heartbeatIntervalMs } from './run-heartbeat.js';
import { emptyWorkdir, prepareWorkdir, stageInputs } from '../workdir/workdir.js';
import { finishRun } from './finish-run.js';
import { executePhases } from './phase-execution.js';
import type { RunDeps, RunOutputs } from './run-deps.js';
import { copyJobsToRun, runRecordPath, writePlanFile, writeRunRecord, type RunRecord } from '../run-state/run-record.js';
import { reportPathOf } from '../report/report-writer.js';

/** A run whose input was checked and whose services were reached: sets up the workdir, runs the phases, reports. */

export interface PreparedRun {
  plan: Plan;
  /** Set when a resume's jobs files were edited: the run's next revision, written before the phases run. */
  revision: Revision | undefined;
  /** The tasker's own copies of the jobs files, which the run reads (removed by the caller at the end). */
  scratch: string | undefined;
  resuming: boolean;
  runId: string;
  workdirPath: string;
  sessionStart: number;
  backend: Backend | undefined;
  /** Set when S3 is on. */
  outputs: RunOutputs | undefined;
}

/** Returns the exit code. */
export async function runPrepared(config: RunConfig, deps: RunDeps, prepared: PreparedRun): Promise<number> {
  const { plan, resuming, runId, sessionStart, backend, outputs } = prepared;
  // Per-command uploads only when there are patterns; the run record is uploaded either way.
  const perCommand = outputs !== undefined && outputs.spec.patterns.length > 0 ? outputs : undefined;
  const created = !existsSync(prepared.workdirPath);
  const workdir = await prepareWorkdir(prepared.workdirPath);
  await deps.guardWorkdir?.(workdir, created);
  const run = runLayout(workdir, runId);

  // 2. Prepare the workdir and the run's records (new runs only).
  if (!resuming) await setUpNewRun(config, prepared, run, deps.logger);
  if (prepared.revision !== undefined) {
    await writeRevision(run, prepared.revision, plan);
    plan.recordSha256 = prepared.revision.sha256;
  }

  const prior = await readPriorResults(run.resultsPath);
  // Attempts of earlier revisions count for numbering: their logs keep their names.
  if (resuming) await readEarlierAttempts(await earlierResultsOf(run), prior.attempts);
  const remote = await backend?.start({
    layout: run,
    phases: plan.phases,
    timeoutMs: config.timeoutMs,
    killGraceMs: config.killGraceMs,
    maxInFlight: config.maxInFlight,
    bundleSize: config.bundleSize,
    priority: config.priority,
    stallWarningMs: config.stallWarningMs,
    recordedAttempts: prior.resultAttempts,
    staleAfterMs: staleAfterMs(config),
    upload: perCommand?.spec,
    signingKey: config.signingKey,
    recordSha256: plan.recordSha256,
  });
  deps.logger.info(
    {
      runId,
      workdir,
      phases: plan.phases.length,
      commands: plan.phases.reduce((sum, phase) => sum + phase.commandCount, 0),
      alreadyDone: prior.succeeded.size,
      resumed: resuming,
      report: reportPathOf(run),
      ...(remote === undefined ? { mode: 'local', concurrency: config.concurrency } : { mode: 'rabbitmq', queues: poolsOf(plan.phases).map((pool) => names(config.namespace).poolQueue(pool)) }),
    },
    resuming ? 'resuming run' : 'run started',
  );
  if (remote === undefined) logIgnoredSettings(plan, config, deps.logger);
  else {
    deps.metrics?.trackPools(() => remote.poolDepths());
    deps.metrics?.trackDemand({ pools: () => remote.pools, read: (pool) => remote.poolDemand(pool) });
  }
  if (remote !== undefined && config.signingOff) deps.logger.warn(unsignedWarning, 'TASKER_SIGNING=off: commands are published unsigned and results are not checked');

  // The report is written from the first second on (phase-execution.ts): open it now. Stdout
  // stays the summary's; elsewhere than a terminal, the log line above names the report.
  deps.terminal?.write(`Live report: ${reportPathOf(run)}\n`);

  // 3. Run the phases.
  const { outcome, progress } = await executePhases({ config, plan, run, prior, remote, perCommand }, deps);

  // 4. Report.
  return finishRun({ runId, workdir, run, sessionStart, outcome, progress, remote, outputs, priority: config.priority, distributed: distributedOf(config, remote) }, deps);
}

function distributedOf(config: RunConfig, remote: unknown): { redactedAmqpUrl: string; namespace: string } | undefined {
  return remote === undefined || config.amqpUrl === undefined ? undefined : { redactedAmqpUrl: redactUrl(config.amqpUrl), namespace: config.namespace };
}

/** A heartbeat older than this means the previous tasker of the run is gone. */
export function staleAfterMs(config: Pick<RunConfig, 'progressIntervalMs'>): number {
  return 3 * heartbeatIntervalMs(config.progressIntervalMs);
}

const unsignedWarning = { hint: 'anyone who can publish to the work queue can run commands on the workers, and report results; set the same TASKER_SIGNING_KEY on the tasker and every worker instead' };

/** Said once: a local run has no workers and no queue, so pools and bundles mean nothing here. */
function logIgnoredSettings(plan: Plan, { bundleSize, priority }: Pick<RunConfig, 'bundleSize' | 'priority'>, logger: Logger): void {
  const pools = poolsOf(plan.phases).filter((pool) => pool !== defaultPool);
  if (pools.length > 0) logger.info({ pools }, `local run: worker pools are ignored (${pools.join(', ')}); every workers phase runs on the local slots`);
  if (bundleSize !== undefined) logger.info({ bundleSize }, 'local run: --bundle-size (TASKER_BUNDLE_SIZE) is ignored; bundles are messages of the work queue, and local slots take commands one by one');
  if (priority !== 'normal') logger.info({ priority }, 'local run: --priority (TASKER_PRIORITY) is ignored; it orders the runs that share a pool of workers');
}

/** Cleans and stages the workdir as asked, then writes the run's records. */
async function setUpNewRun(config: RunConfig, prepared: PreparedRun, run: RunLayout, logger: Logger): Promise<void> {
  const { plan, runId } = prepared;
  if (config.clean) {
    const removed = await emptyWorkdir(run.workdir);
    logger.info({ workdir: run.workdir, removed }, 'workdir cleaned');
  }
  if (config.stage.length > 0) {
    const staged = await stageInputs(config.stage, run.workdir);
    logger.info({ staged }, 'inputs staged');
  }
  const files = await copyJobsToRun(run, plan);
  const mode = prepared.backend === undefined ? { mode: 'local' as const } : { mode: 'rabbitmq' as const, namespace: config.namespace };
  plan.recordSha256 = await writeRunRecord(run, { version: 1, runId, createdAt: new Date(prepared.sessionStart).toISOString(), split: plan.split ?? null, files, phases: plan.phases, ...mode });
  await writePlanFile(run, plan, runId, prepared.backend !== undefined);
}

/** The results files of the run's earlier revisions, as its run.json lists them. */
async function earlierResultsOf(run: RunLayout): Promise<string[]> {
  const record = JSON.parse(await readFile(runRecordPath(run), 'utf8')) as Pick<RunRecord, 'earlier'>;
  return earlierResultsPaths(run, record);
}
