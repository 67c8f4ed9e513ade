import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { ExitCode } from '../../shared/errors.js';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import type { RunningBackend } from '../distributed/distributed-backend.js';
import type { Progress } from '../dispatch/run-phases.js';
import type { SessionOutcome } from './phase-execution.js';
import { readFinalResults, writeRunReport } from '../report/report-writer.js';
import type { ReportData } from '../report/report-data.js';
import { sizePools } from '../report/pool-sizing.js';
import type { PhaseResources } from '../report/resource-stats.js';
import { uploadRunRecord } from './run-record-upload.js';
import { summarizeRun, type RunSummary } from '../report/summary.js';
import { formatSummary } from '../report/summary-text.js';
import type { Priority } from '../../shared/state/fair-share.js';
import { resumeCommand, resumeSettings } from '../../shared/cli/invocation.js';
import type { RunDeps, RunOutputs } from './run-deps.js';

/** The end of a `tasker run` session: summary.json, report.html, the run's end in Redis, the printed summary, the S3 upload, the exit code. */

export interface FinishedSession {
  runId: string;
  workdir: string;
  run: RunLayout;
  sessionStart: number;
  outcome: SessionOutcome;
  progress: Progress;
  remote: RunningBackend | undefined;
  /** Set when S3 is on. */
  outputs: RunOutputs | undefined;
  priority: Priority;
  /** A distributed run's broker (its URL redacted) and namespace, for the resume hint. */
  distributed: { redactedAmqpUrl: string; namespace: string } | undefined;
}

/** Reports the session and returns the exit code. */
export async function finishRun(session: FinishedSession, deps: Pick<RunDeps, 'logger' | 'writeOut' | 'now' | 'cwd' | 'invocation'>): Promise<number> {
  const { runId, workdir, run, outputs } = session;
  const { logger } = deps;
  const mode = session.remote === undefined ? 'local' : 'rabbitmq';
  const last = session.remote?.lastShare();
  const share = last?.share === undefined || last.slots === undefined ? undefined : { share: last.share, slots: last.slots };
  const summary = summarizeRun({ runId, workdir, mode, startedAtMs: session.sessionStart, finishedAtMs: deps.now(), outcome: session.outcome, priority: session.priority, share });
  const { status, exitCode, totals } = summary;
  // results.jsonl is read once for both the summary's resources and the report (20,000 results: ~100 ms a pass).
  const results = await readResults(run, deps, logger);
  if (results !== undefined) addResources(summary, results.resources ?? []);
  await fs.writeFile(run.summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  // An interrupted run is not over: its queue keeps results for the tasker that resumes it.
  await session.remote?.finish(status, session.progress, summary.cancelled);
  logger.info({ runId, status, exitCode, ...totals, durationMs: summary.durationMs }, 'run finished');
  const resume = resumeCommand(deps.invocation, runId, workdir, resolve(deps.cwd), session.distributed?.namespace);
  const report = await writeFinalReport(run, resume, deps, results === undefined ? undefined : { data: results, summary });
  const records = { report, results: run.resultsPath, logs: join(run.runDir, 'logs') };
  deps.writeOut(formatSummary(summary, { logPath: (relative) => run.absolute(relative), records }));
  if (outputs !== undefined && status !== 'interrupted') {
    // The run record (plan, results, summary, every log) goes up once, when nothing writes to it.
    const uploaded = await uploadRunRecord({ outputs, workdir, runDir: run.runDir, runId, logger, writeOut: deps.writeOut });
    if (!uploaded && exitCode === ExitCode.ok) return ExitCode.internal;
  }
  // A cancelled run cannot be resumed (its commands are refused for 7 days): no hint.
  if (status !== 'succeeded' && status !== 'cancelled') {
    // Results and logs are named by the summary (formatSummary's records) already.
    deps.writeOut(`Resume with: ${resume}\n${session.distributed === undefined ? '' : `${resumeSettings(session.distributed.redactedAmqpUrl)}\n`}`);
  }
  return exitCode;
}

/** The run's results for the summary and the report; a run whose results cannot be read goes without (the report then reads them itself). */
async function readResults(run: RunLayout, deps: Pick<RunDeps, 'now'>, logger: RunDeps['logger']): Promise<ReportData | undefined> {
  try {
    return await readFinalResults(run, deps.now());
  } catch (error) {
    logger.warn({ err: error }, 'could not read what the commands used from results.jsonl');
    return undefined;
  }
}

/** What the run's commands used and the pool sizes it suggests, into the summary. */
function addResources(summary: RunSummary, measured: PhaseResources[]): void {
  const { phases, sizing } = sizePools(measured, summary.phases);
  for (const phase of summary.phases) {
    const resources = phases.find((entry) => entry.phase === phase.name);
    if (resources !== undefined) phase.resources = resources;
  }
  if (sizing.length > 0) summary.sizing = sizing;
}

/** report.html, after summary.json; its path, or undefined when it could not be written (the run's result stands). */
async function writeFinalReport(run: RunLayout, resume: string, deps: Pick<RunDeps, 'logger' | 'now'>, final: { data: ReportData; summary: RunSummary } | undefined): Promise<string | undefined> {
  try {
    // report-data.js too: a page open on the live report takes the end from it, and stops polling.
    const written = await writeRunReport({ layout: run, resumeCommand: resume, dataFile: true, now: deps.now, ...(final === undefined ? {} : { final }) });
    deps.logger.debug({ runId: run.runId, bytes: written.bytes }, 'report written');
    return written.path;
  } catch (error) {
    deps.logger.warn({ runId: run.runId, err: error }, 'report.html could not be written');
    return undefined;
  }
}
