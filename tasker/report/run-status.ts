import { resumeCommand } from '../../shared/cli/invocation.js';
import { defaultNamespace } from '../../shared/config/names.js';
import { formatDuration } from '../../shared/config/duration.js';
import type { RunMeta, WorkerInfo } from '../../shared/state/run-store.js';
import { formatPools, type PoolStatus } from './pool-status.js';
import { describeRunState, describeShare, formatRunViews, runView, type RunView } from './run-view.js';

/**
 * What `tasker status` prints of a run in RabbitMQ and Redis. What runs comes from the workers'
 * heartbeats only: the "Running" list of a run and the "Workers" section are two views of one
 * snapshot, and a worker that died drops out of both when its heartbeat expires. Counts are
 * commands; queue depths, in messages (a bundle carries several commands), have their own lines.
 */

/** A tasker heartbeat older than this means no tasker is running the run: `tasker purge` may go on without --force. (`tasker status` says "gone" sooner: run-view.ts.) */
export const taskerGoneAfterMs = 30_000;

export type RunningCommand = WorkerInfo['running'][number] & { worker: string };

export interface StatusReport {
  /** The namespace the run was found in: a resume elsewhere than the default one names it. */
  namespace: string;
  run: RunMeta | undefined;
  runId: string | undefined;
  /** Messages, not commands: a bundle message carries several commands. */
  queue: { name: string; ready: number; consumers: number } | undefined;
  /** Result messages not yet read (a bundle's results share one). */
  runQueue: { name: string; ready: number } | undefined;
  /** Messages in the dead-letter queue, of every run. */
  deadLetters: number | undefined;
  /** This run's commands the workers say they are running, oldest first (for --json: read off `workers`). */
  running: RunningCommand[];
  workers: WorkerInfo[];
  /** Per pool: its queue, workers and what they run (pool-status.ts). */
  pools: PoolStatus[];
  /** Without a run id: every run still running or whose tasker is gone, and the latest (run-view.ts); else that run. */
  runs: RunView[];
}

/** The commands of `runId` in the workers' heartbeats, oldest first. */
export function runningOf(workers: readonly WorkerInfo[], runId: string | undefined): RunningCommand[] {
  if (runId === undefined) return [];
  return workers
    .flatMap((worker) => worker.running.filter((item) => item.runId === runId).map((item) => ({ ...item, worker: worker.id })))
    .sort((a, b) => a.since.localeCompare(b.since));
}

/**
 * What runs for a run, from the workers' heartbeats (one source for both sections of the status).
 * Nothing once it finished: a worker killed mid-command lists it until its heartbeat expires.
 */
export function runningFor(run: RunMeta | undefined, workers: readonly WorkerInfo[], runId: string | undefined): RunningCommand[] {
  return run?.state === 'finished' ? [] : runningOf(workers, runId);
}

/** How long ago `iso` was; undefined for a time that is missing, unparsable or not after 1970 (never a real heartbeat). */
export function agoMs(iso: string, now: number): number | undefined {
  const at = Date.parse(iso);
  return Number.isFinite(at) && at > 0 ? now - at : undefined;
}

/** Whether the run's tasker sent a heartbeat within `taskerGoneAfterMs`. */
export function taskerAlive(run: RunMeta, now: number): boolean {
  const ago = agoMs(run.heartbeatAt, now);
  return run.state === 'running' && ago !== undefined && ago <= taskerGoneAfterMs;
}

function runLines(run: RunMeta, running: number, now: number, resume: { invocation: string; namespace: string }): string[] {
  const view = runView(run, running, now);
  const ago = agoMs(run.heartbeatAt, now);
  const state = view.state === 'tasker-gone' ? `running, but its ${describeRunState(view)}` : run.state;
  const status = run.status !== undefined && run.status !== run.state ? ` (${run.status})` : '';
  const when = ago === undefined ? 'no heartbeat recorded' : run.state === 'running' ? `last heartbeat ${formatDuration(ago)} ago` : `ended ${formatDuration(ago)} ago`;
  // What is waiting of a run that no longer goes on (finished, interrupted, cancelled) will not run unless resumed.
  const counts = `${run.done}/${run.total} done, ${run.failed} failed, ${view.running} running, ${view.waiting} ${run.state === 'running' ? 'waiting' : 'not run'}`;
  const lines = [
    `Run ${run.runId}: ${state}${status}; started ${run.startedAt}; tasker ${run.host}, ${when}`,
    // The counts are the run's, over all its phases; the phase is where it is.
    `  commands: ${counts}; now in phase ${run.phaseIndex}/${run.phaseCount} ${run.phase || '-'}${run.pool && run.pool !== 'default' ? ` (pool ${run.pool})` : ''}`,
  ];
  lines.push(`  priority ${view.priority}${view.share === undefined ? '' : `; share: ${describeShare(view)}`}`);
  if (view.waitsBehind !== '') lines.push(`  waits behind: ${view.waitsBehind}`);
  if (run.state === 'running' && run.warning) lines.push(`  warning: ${run.warning}`);
  if (run.state === 'interrupted') {
    const namespace = resume.namespace === defaultNamespace ? undefined : resume.namespace;
    lines.push(`  its queued commands wait, not run, until it is resumed: ${resumeCommand(resume.invocation, run.runId, run.workdir, undefined, namespace)}`);
  }
  return lines;
}

/** The other runs of `tasker status` without a run id: every run still running (or whose tasker is gone). */
function otherRunsLines(report: StatusReport): string[] {
  if (report.runs.length <= 1) return [];
  return [`Runs (${report.runs.length}, newest first; counts are commands):`, ...formatRunViews(report.runs), ''];
}

/** The queues of the run, for operators: depths in messages, never beside the commands' counts. */
function queueLines(report: StatusReport): string[] {
  const lines: string[] = [];
  if (report.queue !== undefined) lines.push(`  work queue ${report.queue.name}: ${report.queue.ready} ready (of every run of the pool), ${report.queue.consumers} consumer${report.queue.consumers === 1 ? '' : 's'}`);
  if (report.runQueue !== undefined) lines.push(`  result queue ${report.runQueue.name}: ${report.runQueue.ready} not yet read`);
  if (report.deadLetters !== undefined && report.deadLetters > 0) lines.push(`  dead letters: ${report.deadLetters} (of every run; see the dead-letter queue; tasker purge does not touch it)`);
  return lines.length === 0 ? [] : ['', 'Queues (in messages: a bundle message carries several commands):', ...lines];
}

/** `invocation`: how the user started us (`npx tasker`, `tasker`...), for the resume command it prints. */
export function formatStatus(report: StatusReport, now: number, invocation = 'tasker'): string {
  const running = runningFor(report.run, report.workers, report.runId);
  const resume = { invocation, namespace: report.namespace };
  const out: string[] = [...otherRunsLines(report), ...(report.run === undefined ? ['No runs recorded in Redis.'] : runLines(report.run, running.length, now, resume))];
  if (running.length > 0) {
    out.push('', `Running (${running.length}):`);
    for (const item of running) {
      const command = item.command.length > 80 ? `${item.command.slice(0, 80)}…` : item.command;
      out.push(`  ${item.id.padEnd(12)} on ${item.worker}, attempt ${item.attempt}, for ${formatDuration(now - Date.parse(item.since))}: ${command}`);
    }
  }
  out.push(...queueLines(report));
  out.push(...formatPools(report.pools));
  out.push('', `Workers (${report.workers.length}):`);
  if (report.workers.length === 0) out.push('  none is sending heartbeats');
  for (const worker of report.workers) {
    const busy = worker.running.length === 0 ? 'idle' : `busy with ${worker.running.map((r) => `${r.runId}/${r.id}`).join(', ')}`;
    out.push(`  ${worker.id.padEnd(24)} concurrency ${worker.concurrency}, pools ${(worker.pools ?? ['default']).join(',')}, ${busy}`);
    if (worker.unseenRuns !== undefined && worker.unseenRuns.length > 0) {
      out.push(`    cannot see the directory of run ${worker.unseenRuns.join(', ')} in its workdir ${worker.workdir ?? '(not said)'}: hands those commands back unrun (wrong --workdir, or the shared volume not mounted)`);
    }
  }
  return `${out.join('\n')}\n`;
}
