import { deleteQueue, queueDepth } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import { InputError } from '../../shared/errors.js';
import type { Names } from '../../shared/config/names.js';
import type { RunMeta, RunningInfo, WorkerInfo } from '../../shared/state/redis-store.js';
import type { Backend } from '../distributed/distributed-backend.js';

/** `tasker status` and `tasker purge`: what a run is doing, and removing what it left behind. */

/** A tasker heartbeat older than this means no tasker is running the run. */
export const taskerGoneAfterMs = 30_000;

export interface StatusReport {
  run: RunMeta | undefined;
  runId: string | undefined;
  queue: { name: string; ready: number; consumers: number } | undefined;
  runQueue: { name: string; ready: number } | undefined;
  deadLetters: number | undefined;
  running: (RunningInfo & { id: string })[];
  workers: WorkerInfo[];
}

async function resolveRunId(backend: Backend, runId: string | undefined): Promise<string | undefined> {
  if (runId !== undefined) return runId;
  const [latest] = await backend.store.latestRunIds(1);
  return latest;
}

export async function collectStatus(backend: Backend, names: Names, requested: string | undefined): Promise<StatusReport> {
  const runId = await resolveRunId(backend, requested);
  const run = runId === undefined ? undefined : await backend.store.getRun(runId);
  if (requested !== undefined && run === undefined) {
    throw new InputError('run-state', `no run "${requested}" in Redis (namespace ${names.namespace}); runs there: ${(await backend.store.latestRunIds(5)).join(', ') || 'none'}`);
  }
  const work = await backend.session.withChannel((channel) => queueDepth(channel, names.workQueue));
  const dead = await backend.session.withChannel((channel) => queueDepth(channel, names.deadQueue));
  const own = runId === undefined ? undefined : await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)));
  const running = runId === undefined ? [] : [...(await backend.store.running(runId)).entries()].map(([id, info]) => ({ id, ...info }));
  return {
    run,
    runId,
    queue: work === undefined ? undefined : { name: names.workQueue, ready: work.ready, consumers: work.consumers },
    runQueue: own === undefined || runId === undefined ? undefined : { name: names.runQueue(runId), ready: own.ready },
    deadLetters: dead?.ready,
    running: running.sort((a, b) => a.since.localeCompare(b.since)),
    workers: await backend.store.workers(),
  };
}

export function formatStatus(report: StatusReport, now: number): string {
  const out: string[] = [];
  const run = report.run;
  if (run === undefined) {
    out.push('No runs recorded in Redis.');
  } else {
    const beat = formatDuration(now - Date.parse(run.heartbeatAt));
    const state = run.state === 'running' && now - Date.parse(run.heartbeatAt) > taskerGoneAfterMs ? 'running, but its tasker has not been heard of' : run.state;
    out.push(`Run ${run.runId}: ${state}${run.status !== undefined ? ` (${run.status})` : ''}; started ${run.startedAt}; tasker ${run.host}, last heartbeat ${beat} ago`);
    out.push(`  phase ${run.phaseIndex}/${run.phaseCount} ${run.phase || '-'}: ${run.done}/${run.total} done, ${run.failed} failed, ${report.running.length} running`);
  }
  if (report.queue !== undefined) out.push(`  work queue ${report.queue.name}: ${report.queue.ready} waiting, ${report.queue.consumers} consumers`);
  if (report.runQueue !== undefined) out.push(`  result queue ${report.runQueue.name}: ${report.runQueue.ready} results not yet read`);
  if (report.deadLetters !== undefined && report.deadLetters > 0) out.push(`  dead letters: ${report.deadLetters} (see the dead-letter queue; tasker purge does not touch it)`);
  if (report.running.length > 0) {
    out.push('', `Running (${report.running.length}):`);
    for (const item of report.running) {
      const command = item.command.length > 80 ? `${item.command.slice(0, 80)}…` : item.command;
      out.push(`  ${item.id.padEnd(12)} on ${item.worker}, attempt ${item.attempt}, for ${formatDuration(now - Date.parse(item.since))}: ${command}`);
    }
  }
  out.push('', `Workers (${report.workers.length}):`);
  if (report.workers.length === 0) out.push('  none is sending heartbeats');
  for (const worker of report.workers) {
    const busy = worker.running.length === 0 ? 'idle' : `busy with ${worker.running.map((r) => `${r.runId}/${r.id}`).join(', ')}`;
    out.push(`  ${worker.id.padEnd(24)} concurrency ${worker.concurrency}, ${busy}`);
  }
  return `${out.join('\n')}\n`;
}

export interface PurgeReport {
  runId: string;
  queueDeleted: boolean;
  keysRemoved: number;
}

export async function purgeRun(backend: Backend, names: Names, runId: string, force: boolean, now: number): Promise<PurgeReport> {
  const run = await backend.store.getRun(runId);
  const exists = run !== undefined || (await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)))) !== undefined;
  if (!exists) throw new InputError('run-state', `no run "${runId}" to purge (namespace ${names.namespace})`);
  if (run !== undefined && run.state === 'running' && now - Date.parse(run.heartbeatAt) < taskerGoneAfterMs && !force) {
    throw new InputError(
      'run-state',
      `run ${runId} is in progress (its tasker ${run.host} sent a heartbeat ${formatDuration(now - Date.parse(run.heartbeatAt))} ago); stop it first, or add --force`,
    );
  }
  // Workers drop this run's leftover messages from now on instead of running them.
  await backend.store.cancelRun(runId);
  const queueDeleted = await backend.session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
  const keysRemoved = await backend.store.purgeRun(runId);
  return { runId, queueDeleted, keysRemoved };
}
