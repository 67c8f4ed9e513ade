import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import type { Cancellation } from '../../shared/state/run-store.js';
import type { RunConfig } from '../config.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { commandsOf, type Plan } from '../jobs/planning.js';
import type { RunningBackend } from '../distributed/distributed-backend.js';
import { createLocalDispatch } from '../dispatch/local-dispatch.js';
import { runPhases, type PhaseDispatch, type Progress, type RunPhasesResult, type RunPorts } from '../dispatch/run-phases.js';
import { createEmptyProgress, startProgressReporter } from '../report/progress-reporter.js';
import { openResultsWriter, type PriorResults, type ResultsWriter } from '../run-state/results-file.js';
import { startReportRefresher } from '../report/report-refresher.js';
import { writeRunReport } from '../report/report-writer.js';
import { createLiveAttempts, type LiveAttempts } from './live-attempts.js';
import { heartbeatIntervalMs, startRunHeartbeat } from './run-heartbeat.js';
import { startCancelWatch, type CancelWatch } from './cancel-watch.js';
import type { RunDeps, RunOutputs } from './run-deps.js';

/**
 * Runs a prepared run's phases, wired to this process: results.jsonl, the progress reporter, the
 * heartbeat, the live report, and per phase the local slots or the workers' queue.
 */

export interface PhaseExecution {
  config: RunConfig;
  plan: Plan;
  run: RunLayout;
  prior: PriorResults;
  /** Set in distributed mode: workers phases go through its queue. */
  remote: RunningBackend | undefined;
  /** Set when S3 is on with upload patterns: what each command's outputs upload to. */
  perCommand: RunOutputs | undefined;
}

/** How the session's phases ended; `cancelled`: an operator's cancel stopped them. */
export type SessionOutcome = RunPhasesResult & { cancelled: Cancellation | undefined };

type ExecutionDeps = Pick<RunDeps, 'logger' | 'executor' | 'terminal' | 'signal' | 'now' | 'metrics' | 'placement'>;

export async function executePhases(execution: PhaseExecution, deps: ExecutionDeps): Promise<{ outcome: SessionOutcome; progress: Progress }> {
  const { config, remote } = execution;
  const results = openResultsWriter(execution.run.resultsPath);
  const progress = createEmptyProgress();
  deps.metrics?.trackInFlight(() => progress.running);
  // Distributed, the tasker knows what it handed to the queue, not what a worker started.
  const runningLabel = remote === undefined ? 'running' : 'queued or running';
  const reporter = startProgressReporter({
    progress,
    logger: deps.logger,
    terminal: deps.terminal,
    intervalMs: config.progressIntervalMs,
    now: deps.now,
    runningLabel,
    ...(remote === undefined ? {} : { notice: () => remote.warning() }),
  });
  const heartbeat = remote === undefined ? undefined : startRunHeartbeat(remote, progress, heartbeatIntervalMs(config.progressIntervalMs), deps.logger);
  const live = createLiveAttempts(deps.now);
  const workerName = taskerWorkerName();
  const report = startReportRefresher({
    write: (nextWriteMs) => writeRunReport({ layout: execution.run, live: { runningNow: progress.running, runningLabel, nextWriteMs, worker: workerName, ...live.snapshot() }, dataFile: true, now: deps.now }),
    minIntervalMs: config.reportIntervalMs,
    now: deps.now,
    logger: deps.logger,
    runId: execution.run.runId,
  });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  deps.signal.addEventListener('abort', onSignal, { once: true });
  if (deps.signal.aborted) stop.abort();
  const cancelWatch = remote === undefined ? undefined : watchForCancel(remote, stop, deps.logger);
  try {
    const outcome = await runPhases(
      execution.plan.phases,
      phasePorts(execution, deps, results, live, workerName),
      { retries: config.retries, retryDelayMs: config.retryDelayMs, maxRetryDelayMs: config.maxRetryDelayMs, keepGoing: config.keepGoing, halt: config.halt, prior: execution.prior, mode: execution.remote === undefined ? 'local' : 'rabbitmq' },
      progress,
      stop.signal,
    );
    return { outcome: { ...outcome, cancelled: cancelWatch?.seen() }, progress };
  } finally {
    cancelWatch?.stop();
    deps.signal.removeEventListener('abort', onSignal);
    reporter.stop();
    // Before results.jsonl closes and the final report is written: no refresh may land after it.
    await report.stop();
    results.close();
    heartbeat?.stop();
  }
}

/** The worker name of the attempts this tasker runs itself. */
function taskerWorkerName(): string {
  return `tasker@${hostname()}`;
}

function phasePorts(execution: PhaseExecution, deps: ExecutionDeps, results: ResultsWriter, live: LiveAttempts, workerName: string): RunPorts {
  // Distributed, a workers phase's attempt "starts" when it is published: the live report does not draw those as running.
  const startsAreRuns = (phase: PhaseSpec): boolean => execution.remote === undefined || phase.runsOn !== 'workers';
  return {
    phaseCommands: (phase) => commandsOf(execution.plan, phase),
    dispatchFor: (phase) => live.track(phase, dispatchFor(phase, execution, deps, workerName), startsAreRuns(phase)),
    record: (record) => {
      deps.metrics?.commandFinished(record.outcome, record.durationMs);
      return results.append(record);
    },
    sleep: sleepUnlessAborted,
    now: deps.now,
    logger: deps.logger,
  };
}

/** An operator's cancel stops the run as Ctrl-C does (the dispatch's killAll), and is then recorded as such. */
function watchForCancel(remote: RunningBackend, stop: AbortController, logger: ExecutionDeps['logger']): CancelWatch {
  return startCancelWatch(() => remote.cancellation(), 1000, (cancellation) => {
    logger.warn({ by: cancellation.by, reason: cancellation.reason, at: cancellation.at }, `run cancelled by ${cancellation.by}: stopping (no command of it starts any more)`);
    stop.abort();
  }, logger);
}

/** Workers phases go to the queue in distributed mode; everything else runs here ('tasker' phases one at a time). */
function dispatchFor(phase: PhaseSpec, execution: PhaseExecution, deps: ExecutionDeps, workerName: string): PhaseDispatch {
  const { config, remote, perCommand } = execution;
  if (remote !== undefined && phase.runsOn === 'workers') return remote.dispatchFor(phase);
  const slots = phase.runsOn === 'tasker' ? 1 : config.concurrency;
  return createLocalDispatch({
    executor: deps.executor,
    layout: execution.run,
    phase,
    slots,
    placement: deps.placement === undefined ? undefined : { ...deps.placement, slots },
    timeoutMs: config.timeoutMs,
    killGraceMs: config.killGraceMs,
    settleBeforeStart: config.halt !== 'never',
    workerName,
    outputs: perCommand === undefined ? undefined : { spec: perCommand.spec, watch: perCommand.store.watchOutputs },
  });
}

async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks the signal
  }
}
