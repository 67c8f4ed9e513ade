import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { names } from '../../shared/config/names.js';
import type { Logger } from '../../shared/observe/logger.js';
import { newRunId, runLayout } from '../../shared/run-dir/run-layout.js';
import type { S3Store } from '../../shared/storage/s3-store.js';
import type { RunConfig, RunS3Config } from '../config.js';
import { scanAndPlan, type Plan } from '../jobs/planning.js';
import { assignPools } from '../jobs/phase-pools.js';
import { createScratchDir, removeScratchDir } from '../jobs/scratch-dirs.js';
import type { Backend } from '../distributed/distributed-backend.js';
import { checkClean, checkStagePaths } from '../workdir/workdir.js';
import { missingRunError, planResumedRun } from './resume-run.js';
import type { RunDeps, RunOutputs } from './run-deps.js';
import { runRecordPath } from '../run-state/run-record.js';
import { runPrepared, staleAfterMs } from './run-session.js';

/** The start of `tasker run`: nothing in the workdir changes until the input is checked and S3, RabbitMQ and Redis are reached. */

/** What preparing a run has opened so far; `closeOpened` closes it again, in reverse order. */
interface Opened {
  scratch?: string;
  s3?: S3Store;
  backend?: Backend;
}

/**
 * `tasker run`: plans a new run (or reads a resumed one's records), opens S3 and the backend, then
 * runs it (run-session.ts): the phases run here or on the workers. Returns the exit code.
 */
export async function runRun(config: RunConfig, deps: RunDeps): Promise<number> {
  const { logger } = deps;
  const sessionStart = deps.now();
  const workdirPath = resolve(config.workdir);
  const runId = config.runId ?? newRunId(new Date(sessionStart));
  const layout = runLayout(workdirPath, runId);
  const resuming = existsSync(runRecordPath(layout));

  if (config.mustExist && !resuming) throw await missingRunError(workdirPath, runId);

  // 1. Everything that can be wrong with the input is found before anything is changed. Whatever
  // fails, what was opened so far is closed again (in reverse order) by the `finally`.
  const opened: Opened = {};
  try {
    // The run reads its jobs files from the tasker's own scratch copies, checked, never from the shared volume.
    const scratch = await createScratchDir(resuming ? 'tasker-resume-' : 'tasker-plan-');
    opened.scratch = scratch;
    const { plan, revision } = resuming ? await planResumedRun(layout, config, logger, scratch, deps.commandEnv) : { plan: await planNewRun(config, deps.commandEnv, workdirPath, scratch), revision: undefined };
    // Reach S3, the broker and Redis before the workdir is touched: a wrong URL or a missing bucket
    // must not half-run.
    const outputs = config.s3 === undefined ? undefined : await openOutputs(config.s3, runId, logger, opened);
    let backend: Backend | undefined;
    if (config.amqpUrl !== undefined) {
      backend = await openBackend(config, { amqpUrl: config.amqpUrl, runId }, logger, opened);
      if (!resuming) await backend.checkUnusedRunId(runId);
      // Redis is told of the edited run before its records change (run-registration.ts).
      if (revision !== undefined) await backend.acceptRevision({ runId, recordSha256: revision.previousSha256, nextSha256: revision.sha256, rerunIds: revision.rerunIds, staleAfterMs: staleAfterMs(config) });
    }
    deps.onPrepared?.();
    return await runPrepared(config, deps, { plan, revision, scratch: opened.scratch, resuming, runId, workdirPath, sessionStart, backend, outputs });
  } finally {
    await closeOpened(opened);
  }
}

/** Reads and checks the jobs files (copying them to the scratch directory) and the workdir options. */
async function planNewRun(config: RunConfig, commandEnv: RunDeps['commandEnv'], workdirPath: string, planDir: string): Promise<Plan> {
  const plan = await scanAndPlan(config.files, config.split, commandEnv, (index) => join(planDir, String(index)));
  plan.phases = assignPools(plan.phases, config.pools);
  await checkStagePaths(config.stage, workdirPath, config.clean);
  if (config.clean && existsSync(workdirPath)) await checkClean(await fs.realpath(workdirPath), config.forceClean);
  return plan;
}

async function openOutputs(s3: RunS3Config, runId: string, logger: Logger, opened: Opened): Promise<RunOutputs> {
  // Loaded only when S3 is on, for the same reason as the distributed backend (openBackend).
  const { createS3Store } = await import('../../shared/storage/s3-store.js');
  const store = createS3Store({ connection: s3.connection, logger });
  opened.s3 = store;
  await store.checkBucket(s3.bucket);
  return { store, spec: { bucket: s3.bucket, prefix: s3.prefix ?? runId, patterns: s3.patterns } };
}

async function openBackend(config: RunConfig, { amqpUrl, runId }: { amqpUrl: string; runId: string }, logger: Logger, opened: Opened): Promise<Backend> {
  // Loaded only in distributed mode: the RabbitMQ and Redis clients add ~25 MB to the process.
  const { connectBackend } = await import('../distributed/distributed-backend.js');
  const backend = await connectBackend({ amqpUrl, amqpTls: config.amqpTls, redisUrl: config.redisUrl, redisTls: config.redisTls, names: names(config.namespace), logger, purpose: { run: runId } });
  opened.backend = backend;
  return backend;
}

/** Reverse order of opening; every step runs even if an earlier one failed, and the first failure is thrown. */
async function closeOpened(opened: Opened): Promise<void> {
  const steps: (() => unknown)[] = [
    () => opened.backend?.close(),
    () => opened.s3?.close(),
    // The jobs files the run read its commands from: kept until the run is over.
    () => (opened.scratch === undefined ? undefined : removeScratchDir(opened.scratch)),
  ];
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}
