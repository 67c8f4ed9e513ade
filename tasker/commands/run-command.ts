import { existsSync, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, ExitCode } from '../../shared/errors.js';
import { createScratchDir, removeScratchDir } from '../jobs/scratch-dirs.js';
import { sha256File } from '../jobs/jobs-reader.js';
import type { Executor } from '../../shared/exec/executor.js';
import type { Logger } from '../../shared/observe/logger.js';
import { objectKey, type OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec, SplitPreset } from '../jobs/plan.js';
import { openResultsWriter, readPriorResults } from '../report/results-file.js';
import { newRunId, runLayout, type RunLayout } from '../../shared/state/run-layout.js';
import { formatSummary, totalsOf, type RunSummary } from '../report/summary.js';
import type { RunConfig } from '../config.js';
import { createLocalDispatch } from '../dispatch/local-dispatch.js';
import { scanAndPlan, writePlanJson, commandsOf, type Plan } from '../jobs/planning.js';
import { createEmptyProgress, startProgressReporter } from '../report/progress-reporter.js';
import { runPhases } from '../dispatch/run-phases.js';
import type { Backend, RunningBackend } from '../dispatch/distributed-backend.js';
import type { S3Store } from '../../shared/storage/s3-store.js';
import { names } from '../../shared/config/names.js';
import { checkClean, checkStagePaths, emptyWorkdir, prepareWorkdir, stageInputs } from '../workdir/workdir.js';

/** run.json: the small, machine-read record of a run that a resumed tasker starts from. */
interface RunRecord {
  version: 1;
  runId: string;
  createdAt: string;
  split: SplitPreset | null;
  files: { path: string; sha256: string; copy: string }[];
  phases: PhaseSpec[];
}

export interface RunDeps {
  logger: Logger;
  executor: Executor;
  /** The environment commands run with (the executor's): the shell's syntax check uses it too. */
  commandEnv: Record<string, string | undefined>;
  /** Where the summary is printed. */
  writeOut: (text: string) => void;
  /** stderr when it is a terminal (live progress bar), else undefined. */
  terminal: NodeJS.WriteStream | undefined;
  /** The user's current directory (for the resume hint). */
  cwd: string;
  signal: AbortSignal;
  now: () => number;
  /** Counts finished attempts and reads the in-flight count, when a metrics server runs. */
  metrics?: RunMetrics;
  /** Called once, when the checks are over and the workdir is about to change. Until then nothing needs stopping. */
  onPrepared?: () => void;
}

/** What a run reports for its metrics (a narrow port of the metrics server). */
export interface RunMetrics {
  commandFinished(outcome: string, durationMs: number): void;
  trackInFlight(read: () => number): void;
}

function runRecordPath(layout: RunLayout): string {
  return join(layout.runDir, 'run.json');
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await fs.copyFile(from, to);
    await fs.rm(from, { force: true });
  }
}

async function loadExistingRun(layout: RunLayout, config: RunConfig): Promise<Plan> {
  const record = JSON.parse(await fs.readFile(runRecordPath(layout), 'utf8')) as RunRecord;
  const requestedSplit = config.split ?? null;
  if (config.files.length > 0) {
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
  const sources = record.files.map((file) => ({ displayPath: file.path, readPath: join(layout.runDir, file.copy), sha256: file.sha256 }));
  for (const source of sources) {
    if (!existsSync(source.readPath)) throw new InputError('run-state', `run ${layout.runId} is missing its copy of ${source.displayPath} (${source.readPath}); it cannot be resumed`);
  }
  return { split: record.split ?? undefined, sources, scans: [], phases: record.phases };
}

async function listRuns(workdir: string): Promise<string[]> {
  try {
    return (await fs.readdir(join(workdir, '.tasker', 'runs'))).sort();
  } catch {
    return []; // no runs directory: no runs
  }
}

/** `tasker run`: plans, prepares the workdir, runs every phase locally, reports. Returns the exit code. */
export async function runRun(config: RunConfig, deps: RunDeps): Promise<number> {
  const { logger } = deps;
  const sessionStart = deps.now();
  const workdirPath = resolve(config.workdir);
  const runId = config.runId ?? newRunId(new Date(sessionStart));
  const layout = runLayout(workdirPath, runId);
  const resuming = existsSync(runRecordPath(layout));

  if (config.mustExist && !resuming) {
    const runs = await listRuns(workdirPath);
    throw new InputError(
      'run-state',
      `no run "${runId}" in ${workdirPath}/.tasker/runs${runs.length > 0 ? ` (runs there: ${runs.slice(-5).join(', ')})` : ' (no runs there yet)'}; check --workdir and the run id`,
    );
  }

  // 1. Everything that can be wrong with the input is found before anything is changed. Whatever
  // fails, what was opened so far is closed again (in reverse order) by the `finally`.
  let scratch: string | undefined;
  let s3: S3Store | undefined;
  let backend: Backend | undefined;
  try {
    let plan: Plan;
    if (resuming) {
      plan = await loadExistingRun(layout, config);
      if (config.clean) logger.warn({ runId }, 'resuming an existing run: --clean is ignored, the workdir is never cleaned on resume');
    } else {
      const planDir = await createScratchDir('tasker-plan-');
      scratch = planDir;
      plan = await scanAndPlan(config.files, config.split, deps.commandEnv, (index) => join(planDir, String(index)));
      await checkStagePaths(config.stage, workdirPath, config.clean);
      if (config.clean && existsSync(workdirPath)) await checkClean(await fs.realpath(workdirPath), config.forceClean);
    }
    // Reach S3, the broker and Redis before the workdir is touched: a wrong URL or a missing bucket
    // must not half-run.
    let outputs: Prepared['outputs'];
    if (config.s3 !== undefined) {
      // Loaded only when S3 is on, for the same reason as the distributed backend below.
      const { createS3Store } = await import('../../shared/storage/s3-store.js');
      s3 = createS3Store({ connection: config.s3.connection, logger });
      await s3.checkBucket(config.s3.bucket);
      outputs = { store: s3, spec: { bucket: config.s3.bucket, prefix: config.s3.prefix ?? runId, patterns: config.s3.patterns } };
    }
    if (config.amqpUrl !== undefined) {
      // Loaded only in distributed mode: the RabbitMQ and Redis clients add ~25 MB to the process.
      const { connectBackend } = await import('../dispatch/distributed-backend.js');
      backend = await connectBackend({ amqpUrl: config.amqpUrl, redisUrl: config.redisUrl, names: names(config.namespace), logger });
      if (!resuming) await backend.checkUnusedRunId(runId);
    }
    deps.onPrepared?.();
    return await runPrepared(config, deps, { plan, scratch, resuming, runId, workdirPath, sessionStart, backend, outputs });
  } finally {
    await backend?.close();
    s3?.close();
    // Gone already when the run started; still there when preparing the workdir failed.
    if (scratch !== undefined) await removeScratchDir(scratch);
  }
}

/** How often a distributed tasker refreshes its run's heartbeat in Redis. */
function heartbeatMs(config: RunConfig): number {
  return Math.min(2000, config.progressIntervalMs);
}

interface Prepared {
  plan: Plan;
  scratch: string | undefined;
  resuming: boolean;
  runId: string;
  workdirPath: string;
  sessionStart: number;
  backend: Backend | undefined;
  /** Set when S3 is on. */
  outputs: { store: S3Store; spec: OutputSpec } | undefined;
}

async function runPrepared(config: RunConfig, deps: RunDeps, prepared: Prepared): Promise<number> {
  const { logger } = deps;
  const { plan, scratch, resuming, runId, workdirPath, sessionStart, backend, outputs } = prepared;
  // Per-command uploads only when there are patterns; the run record is uploaded either way.
  const perCommand = outputs !== undefined && outputs.spec.patterns.length > 0 ? outputs : undefined;
  const workdir = await prepareWorkdir(workdirPath);
  const run = runLayout(workdir, runId);

  // 2. Prepare the workdir and the run's records (new runs only).
  if (!resuming) {
    if (config.clean) {
      const removed = await emptyWorkdir(workdir);
      logger.info({ workdir, removed }, 'workdir cleaned');
    }
    if (config.stage.length > 0) {
      const staged = await stageInputs(config.stage, workdir);
      logger.info({ staged }, 'inputs staged');
    }
    await fs.mkdir(run.jobsDir, { recursive: true });
    const files: RunRecord['files'] = [];
    for (const [index, source] of plan.sources.entries()) {
      const copy = run.jobsCopyPath(index, source.displayPath);
      await moveFile(source.readPath, copy);
      source.readPath = copy;
      files.push({ path: source.displayPath, sha256: source.sha256, copy: copy.slice(run.runDir.length + 1) });
    }
    await removeScratchDir(scratch!);
    const record: RunRecord = { version: 1, runId, createdAt: new Date(sessionStart).toISOString(), split: plan.split ?? null, files, phases: plan.phases };
    await fs.writeFile(runRecordPath(run), `${JSON.stringify(record, null, 2)}\n`);
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

  const prior = await readPriorResults(run.resultsPath);
  const total = plan.phases.reduce((sum, phase) => sum + phase.commandCount, 0);
  const remote: RunningBackend | undefined = await backend?.start({
    layout: run,
    phases: plan.phases,
    timeoutMs: config.timeoutMs,
    killGraceMs: config.killGraceMs,
    maxInFlight: config.maxInFlight,
    stallWarningMs: config.stallWarningMs,
    recordedAttempts: prior.attempts,
    staleAfterMs: 3 * heartbeatMs(config),
    upload: perCommand?.spec,
    signingKey: config.signingKey,
  });
  logger.info(
    {
      runId,
      workdir,
      phases: plan.phases.length,
      commands: total,
      alreadyDone: prior.succeeded.size,
      resumed: resuming,
      ...(remote === undefined ? { mode: 'local', concurrency: config.concurrency } : { mode: 'rabbitmq', queue: names(config.namespace).workQueue }),
    },
    resuming ? 'resuming run' : 'run started',
  );

  // 3. Run the phases.
  const results = openResultsWriter(run.resultsPath);
  const progress = createEmptyProgress();
  deps.metrics?.trackInFlight(() => progress.running);
  const reporter = startProgressReporter({
    progress,
    logger,
    terminal: deps.terminal,
    intervalMs: config.progressIntervalMs,
    now: deps.now,
    // Distributed, the tasker knows what it handed to the queue, not what a worker started.
    runningLabel: backend === undefined ? 'running' : 'queued or running',
  });
  const beat = (): void => {
    remote?.heartbeat(progress).catch((error: unknown) => logger.debug({ err: error }, 'run heartbeat failed'));
  };
  beat();
  const heartbeat =
    remote === undefined
      ? undefined
      : setInterval(() => {
          remote.heartbeat(progress).catch((error: unknown) => logger.debug({ err: error }, 'run heartbeat failed'));
        }, heartbeatMs(config));
  const workerName = `tasker@${hostname()}`;
  let outcome;
  try {
    outcome = await runPhases(
      plan.phases,
      {
        phaseCommands: (phase) => commandsOf(plan, phase),
        dispatchFor: (phase) =>
          remote !== undefined && phase.runsOn === 'workers'
            ? remote.dispatchFor(phase)
            : createLocalDispatch({
            executor: deps.executor,
            layout: run,
            phase,
            slots: phase.runsOn === 'tasker' ? 1 : config.concurrency,
            timeoutMs: config.timeoutMs,
            killGraceMs: config.killGraceMs,
            workerName,
            outputs: perCommand === undefined ? undefined : { spec: perCommand.spec, watch: perCommand.store.watchOutputs },
          }),
        record: (record) => {
          results.append(record);
          deps.metrics?.commandFinished(record.outcome, record.durationMs);
        },
        sleep: async (ms, signal) => {
          try {
            await sleep(ms, undefined, { signal });
          } catch {
            // aborted: the caller checks the signal
          }
        },
        now: deps.now,
        logger,
      },
      { retries: config.retries, retryDelayMs: config.retryDelayMs, maxRetryDelayMs: config.maxRetryDelayMs, keepGoing: config.keepGoing, prior },
      progress,
      deps.signal,
    );
  } finally {
    reporter.stop();
    results.close();
    if (heartbeat !== undefined) clearInterval(heartbeat);
  }

  // 4. Report.
  const finishedAt = deps.now();
  const totals = totalsOf(outcome.phases);
  const status = outcome.interrupted ? 'interrupted' : totals.failed > 0 || outcome.phases.some((p) => p.status === 'skipped') ? 'failed' : 'succeeded';
  const exitCode = status === 'interrupted' ? ExitCode.interrupted : status === 'failed' ? ExitCode.commandsFailed : ExitCode.ok;
  const summary: RunSummary = {
    runId,
    status,
    exitCode,
    workdir,
    startedAt: new Date(sessionStart).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - sessionStart,
    totals,
    phases: outcome.phases,
    failed: outcome.failed,
  };
  await fs.writeFile(run.summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  // An interrupted run is not over: its queue keeps results for the tasker that resumes it.
  await remote?.finish(status, status !== 'interrupted', progress);
  logger.info({ runId, status, exitCode, ...totals, durationMs: summary.durationMs }, 'run finished');
  deps.writeOut(formatSummary(summary, { logPath: (relative) => run.absolute(relative) }));
  if (outputs !== undefined && status !== 'interrupted') {
    // The run record (plan, results, summary, every log) goes up once, when nothing writes to it.
    const { bucket, prefix } = outputs.spec;
    const report = await outputs.store.uploadDirectory(outputs.spec, workdir, relative(workdir, run.runDir));
    if (report.ok) {
      logger.info({ runId, bucket, objects: report.keys.length }, 'run record uploaded');
      deps.writeOut(`S3: run record uploaded to s3://${bucket}/${objectKey(prefix, relative(workdir, run.runDir))}/ (${report.keys.length} objects)\n`);
    } else {
      logger.error({ runId, bucket, reason: report.reason }, 'run record upload failed');
      deps.writeOut(`S3: the run record could not be uploaded to s3://${bucket}/${prefix}/: ${report.reason}\n`);
      if (exitCode === ExitCode.ok) return ExitCode.internal;
    }
  }
  if (status !== 'succeeded') {
    deps.writeOut(`Results: ${run.resultsPath}\nResume with: tasker run --resume ${runId}${workdir === resolve(deps.cwd) ? '' : ` --workdir ${workdir}`}\n`);
  }
  return exitCode;
}
