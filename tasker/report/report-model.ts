import { sizePools, type PoolSizing } from './pool-sizing.js';
import type { ReportData } from './report-data.js';
import type { RunFileRecord } from './report-input.js';
import type { RunSummary } from './summary.js';
import { phaseStatusLabel } from './summary-text.js';

/**
 * What the report page is given: the run's header (state, counts, phases as planned and as they
 * ended) and the aggregated results. Pure: the files' contents in, the page's data out.
 */

/** `running`: written by the tasker during the run; `unfinished`: no summary after the last result (stopped, or running elsewhere). */
export type ReportState = 'running' | 'unfinished' | 'succeeded' | 'failed' | 'interrupted' | 'cancelled';

export interface ReportPhase {
  index: number;
  name: string;
  runsOn: string;
  commands: number;
  /** From summary.json, when the last session wrote one, as the summary prints it ("not run", "already done"...). */
  status: string | undefined;
  /** Not run by the last session (summary.json's `skipped`). */
  skipped: number | undefined;
  alreadyDone: number | undefined;
  durationMs: number | undefined;
}

export interface ReportRun {
  runId: string;
  workdir: string;
  files: string[];
  state: ReportState;
  exitCode: number | undefined;
  mode: string | undefined;
  /** The run's --priority, and its last share of its pool's slots (distributed), from summary.json. */
  priority: string | undefined;
  share: { share: number; slots: number } | undefined;
  createdAt: string | undefined;
  /** The last session's start and end (summary.json), when it ended. */
  sessionStartedAt: string | undefined;
  sessionFinishedAt: string | undefined;
  /** The last session's wall time when it ended; while running, since the run was created. */
  wallMs: number | undefined;
  commands: number;
  done: number;
  failed: number;
  deadLettered: number;
  interrupted: number;
  /** Not run by the last session (an earlier phase failed, or it stopped first); summary.json's `skipped`. */
  skipped: number | undefined;
  /** Done in an earlier session of the run, not run again by the last one; from summary.json. */
  alreadyDone: number | undefined;
  /** Not finished yet, or never started. */
  notRun: number;
  resumeCommand: string | undefined;
  generatedAt: string;
  /** Commands running when a live report was written (the tasker's count), and what it counts. */
  runningNow: number | undefined;
  runningLabel: string | undefined;
  /** A live report: the phase running, since when (epoch ms), and about when the next rewrite comes (the page polls at that pace). */
  runningPhase: number | undefined;
  runningPhaseStartedMs: number | undefined;
  nextWriteMs: number | undefined;
  /** Log paths (relative to the workdir) as links: the report's directory relative to the workdir, and the way back. */
  links: ReportLinks;
}

export interface ReportLinks {
  /** e.g. `.tasker/runs/RUN_ID`: a log under it is linked relative to the report. */
  reportDir: string;
  /** e.g. `../../..`: other paths go through the workdir. */
  toWorkdir: string;
}

export interface ReportModel {
  run: ReportRun;
  phases: ReportPhase[];
  data: ReportData;
  /** The pool sizes the workers phases suggest (pool-sizing.ts). */
  sizing: PoolSizing[];
}

/** A run in progress, as its tasker sees it. */
export interface LiveState {
  runningNow: number;
  /** `running` here, or `queued or running` (distributed: the tasker knows what it handed to the queue). */
  runningLabel: string;
  /** The phase running now and when it started. */
  phaseIndex?: number | undefined;
  phaseStartedMs?: number | undefined;
  /** When each attempt running here started (local slots, tasker phases), and this tasker's worker name; none for attempts handed to workers. */
  runningSinceMs?: number[];
  worker?: string;
  /** The pause before the next rewrite, about. */
  nextWriteMs?: number;
}

export interface ModelInput {
  runId: string;
  workdir: string;
  record: RunFileRecord | undefined;
  /** summary.json, only when it describes the last session (no result came after it). */
  summary: RunSummary | undefined;
  data: ReportData;
  live: LiveState | undefined;
  /** How to resume, shown when the run did not succeed. */
  resumeCommand: string | undefined;
  nowMs: number;
  links: ReportLinks;
}

function stateOf(input: ModelInput): ReportState {
  if (input.live !== undefined) return 'running';
  return input.summary?.status ?? 'unfinished';
}

/** A workers phase of a local run ran on the tasker's local slots (run.json says "workers"). */
function runsOnOf(runsOn: string | undefined, mode: string | undefined): string {
  if (runsOn === undefined) return '?';
  return runsOn === 'workers' && mode === 'local' ? 'local slots' : runsOn;
}

function phasesOf(input: ModelInput): ReportPhase[] {
  const mode = input.record?.mode ?? input.summary?.mode;
  const planned = input.record?.phases ?? [];
  const ended = new Map((input.summary?.phases ?? []).map((phase) => [phase.index, phase]));
  const seen = new Map(input.data.phases.map((phase) => [phase.index, phase]));
  const indexes = [...new Set([...planned.map((phase) => phase.index), ...seen.keys()])].sort((a, b) => a - b);
  return indexes.map((index) => {
    const plan = planned.find((phase) => phase.index === index);
    const end = ended.get(index);
    return {
      index,
      name: plan?.name ?? seen.get(index)?.name ?? String(index),
      runsOn: runsOnOf(plan?.runsOn, mode),
      commands: plan?.commandCount ?? end?.total ?? 0,
      status: end === undefined ? undefined : phaseStatusLabel(end),
      skipped: end?.skipped,
      alreadyDone: end?.alreadyDone,
      durationMs: end?.durationMs,
    };
  });
}

export function reportModel(input: ModelInput): ReportModel {
  const { data, summary, record } = input;
  const phases = phasesOf(input);
  const commands = phases.reduce((sum, phase) => sum + phase.commands, 0);
  const state = stateOf(input);
  const { failures } = data;
  const createdMs = record === undefined ? Number.NaN : Date.parse(record.createdAt);
  const wallMs = summary !== undefined ? summary.durationMs : Number.isFinite(createdMs) ? input.nowMs - createdMs : undefined;
  return {
    run: {
      runId: input.runId,
      workdir: input.workdir,
      files: record?.files.map((file) => file.path) ?? [],
      state,
      exitCode: summary?.exitCode,
      mode: summary?.mode ?? record?.mode,
      priority: summary?.priority,
      share: summary?.share,
      createdAt: record?.createdAt,
      sessionStartedAt: summary?.startedAt,
      sessionFinishedAt: summary?.finishedAt,
      wallMs,
      commands,
      done: data.succeeded,
      failed: failures.failed,
      deadLettered: failures.deadLettered,
      interrupted: failures.interrupted,
      skipped: summary?.totals.skipped,
      alreadyDone: summary?.totals.alreadyDone,
      notRun: Math.max(0, commands - data.succeeded - failures.failed - failures.interrupted),
      resumeCommand: state === 'succeeded' || state === 'running' ? undefined : input.resumeCommand,
      generatedAt: new Date(input.nowMs).toISOString(),
      runningNow: input.live?.runningNow,
      runningLabel: input.live?.runningLabel,
      runningPhase: input.live?.phaseIndex,
      runningPhaseStartedMs: input.live?.phaseStartedMs,
      nextWriteMs: input.live?.nextWriteMs,
      links: input.links,
    },
    phases,
    data,
    sizing: sizePools(data.resources ?? [], phases.map((phase) => ({ ...phase, pool: summary?.phases.find((ended) => ended.index === phase.index)?.pool }))).sizing,
  };
}
