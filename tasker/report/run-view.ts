import { formatShare, type Priority } from '../../shared/state/fair-share.js';
import type { RunMeta } from '../../shared/state/run-store.js';

/**
 * One run as `tasker status` and `tasker runs` show it from Redis (pure): its commands waiting,
 * running (the workers' heartbeats), done and failed, its priority and share of its pool, whom it
 * waits behind, and whether its tasker is alive or gone.
 */

/** A tasker not heard for three heartbeats is gone (killed, or cut off from Redis). */
/** A distributed run's tasker refreshes its heartbeat at least this often (run/run-heartbeat.ts). */
export const maxHeartbeatIntervalMs = 2000;

export const taskerSilentAfterMs = 3 * maxHeartbeatIntervalMs;

export type RunViewState = RunMeta['state'] | 'tasker-gone';

export interface RunView {
  runId: string;
  state: RunViewState;
  priority: Priority;
  pool: string;
  phase: string;
  phaseIndex: number;
  phaseCount: number;
  /** Commands, never attempts or messages. */
  total: number;
  done: number;
  failed: number;
  running: number;
  /** Not started yet: queued, held back by the tasker, or of later phases. Of a run that ended: not run. */
  waiting: number;
  /** Its part of its pool's slots, and the pool's slots, while a workers phase runs. */
  share: number | undefined;
  slots: number | undefined;
  waitsBehind: string;
  host: string;
  /** The tasker's last heartbeat (or the run's end). */
  heartbeatAt: string;
  /** Since then; undefined when the time cannot be read. */
  silentMs: number | undefined;
}

export function runView(meta: RunMeta, running: number, now: number): RunView {
  const at = Date.parse(meta.heartbeatAt);
  const silentMs = Number.isFinite(at) && at > 0 ? Math.max(0, now - at) : undefined;
  const gone = meta.state === 'running' && (silentMs === undefined || silentMs > taskerSilentAfterMs);
  const live = meta.state === 'running' && !gone;
  const runningNow = meta.state === 'finished' ? 0 : running;
  return {
    runId: meta.runId,
    state: gone ? 'tasker-gone' : meta.state,
    priority: meta.priority ?? 'normal',
    pool: meta.pool || 'default',
    phase: meta.phase,
    phaseIndex: meta.phaseIndex,
    phaseCount: meta.phaseCount,
    total: meta.total,
    done: meta.done,
    failed: meta.failed,
    running: runningNow,
    waiting: Math.max(0, meta.total - meta.done - meta.failed - runningNow),
    // A gone tasker's last share is stale: its entry left the demand table.
    share: live ? meta.share : undefined,
    slots: live ? meta.slots : undefined,
    waitsBehind: live ? (meta.waitsBehind ?? '') : '',
    host: meta.host,
    heartbeatAt: meta.heartbeatAt,
    silentMs,
  };
}

function clock(iso: string): string {
  const at = new Date(iso);
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** "running", "tasker gone since 10:42 (not heard for 125 s)", "interrupted", "finished". */
export function describeRunState(view: RunView): string {
  if (view.state !== 'tasker-gone') return view.state;
  if (view.silentMs === undefined) return 'tasker gone (no heartbeat recorded)';
  return `tasker gone since ${clock(view.heartbeatAt)} (not heard for ${Math.round(view.silentMs / 1000)} s)`;
}

/** "2 of 8 slots of pool default", or '-' when no workers phase runs. */
export function describeShare(view: RunView): string {
  return view.share === undefined || view.slots === undefined ? '-' : `${formatShare(view.share, view.slots)} of pool ${view.pool}`;
}

/** One line per run, newest first (`tasker runs` with a broker, the top of `tasker status`). */
export function formatRunViews(views: readonly RunView[]): string[] {
  const idWidth = Math.max(6, ...views.map((view) => view.runId.length));
  const out = [`  ${'run id'.padEnd(idWidth)}  priority  ${'waiting'.padStart(7)}  ${'running'.padStart(7)}  ${'done'.padStart(7)}  ${'failed'.padStart(7)}  ${'share'.padEnd(28)}  state`];
  for (const view of views) {
    const counts = [view.waiting, view.running, view.done, view.failed].map((count) => String(count).padStart(7)).join('  ');
    const behind = view.waitsBehind === '' ? '' : `; waits behind ${view.waitsBehind}`;
    out.push(`  ${view.runId.padEnd(idWidth)}  ${view.priority.padEnd(8)}  ${counts}  ${describeShare(view).padEnd(28)}  ${describeRunState(view)}${behind}`);
  }
  return out;
}
