import { join } from 'node:path';
import type { ExecuteRequest } from '../exec/executor-contract.js';

/**
 * Where a run keeps its files, relative to the workdir. Tasker and workers share this
 * layout over the shared volume, so it is the one place that names these paths.
 *
 *   WORKDIR/.tasker/                       marker: this directory held tasker runs
 *   WORKDIR/.tasker/runs/RUN_ID/plan.json
 *   WORKDIR/.tasker/runs/RUN_ID/token        distributed runs: what workers check before running its commands
 *   WORKDIR/.tasker/runs/RUN_ID/results.jsonl
 *   WORKDIR/.tasker/runs/RUN_ID/summary.json
 *   WORKDIR/.tasker/runs/RUN_ID/jobs/N-NAME   byte copies of the jobs files
 *   WORKDIR/.tasker/runs/RUN_ID/logs/PP-PHASE/ID.ATTEMPT.log
 */

export const markerDirName = '.tasker';

const runIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Run ids end up in paths, queue names and Redis keys: keep them to a safe alphabet. */
export function isValidRunId(runId: string): boolean {
  return runIdPattern.test(runId) && !runId.includes('..');
}

/** A sortable, readable default run id: UTC time plus a random suffix, e.g. `20261121-103955-k3x9`. */
export function newRunId(now: Date, random: () => number = Math.random): string {
  const iso = now.toISOString(); // 2026-11-21T10:39:55.123Z
  const stamp = `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
  const suffix = Array.from({ length: 4 }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(random() * 36)]).join('');
  return `${stamp}-${suffix}`;
}

export interface RunLayout {
  workdir: string;
  runId: string;
  /** Absolute. */
  runDir: string;
  planPath: string;
  resultsPath: string;
  summaryPath: string;
  /** The run token (run-token.ts): a worker that does not find it here is not in the tasker's workdir. */
  tokenPath: string;
  jobsDir: string;
  /** Snapshot of jobs file number `index` (0-based). */
  jobsCopyPath(index: number, originalPath: string): string;
  /** Log of one attempt, relative to the workdir (as recorded in results). */
  logRelativePath(phase: PhaseName, commandId: string, attempt: number): string;
  absolute(relative: string): string;
}

/** WORKDIR/.tasker/runs: one directory per run. */
export function runsDirOf(workdir: string): string {
  return join(workdir, markerDirName, 'runs');
}

export function runLayout(workdir: string, runId: string): RunLayout {
  const runRelative = join(markerDirName, 'runs', runId);
  const runDir = join(workdir, runRelative);
  return {
    workdir,
    runId,
    runDir,
    planPath: join(runDir, 'plan.json'),
    resultsPath: join(runDir, 'results.jsonl'),
    summaryPath: join(runDir, 'summary.json'),
    tokenPath: join(runDir, 'token'),
    jobsDir: join(runDir, 'jobs'),
    jobsCopyPath(index, originalPath) {
      const base = originalPath.split(/[\\/]/).filter((part) => part !== '').pop() ?? 'jobs';
      return join(runDir, 'jobs', `${index + 1}-${base.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
    },
    logRelativePath(phase, commandId, attempt) {
      return join(runRelative, 'logs', phaseDirName(phase), `${commandId}.${attempt}.log`);
    },
    absolute(relative) {
      return join(workdir, relative);
    },
  };
}

export interface AttemptSpec {
  phase: PhaseName;
  commandId: string;
  command: string;
  attempt: number;
  timeoutMs: number | undefined;
  killGraceMs: number;
}

/**
 * How one attempt runs, wherever it runs (tasker or worker): in the workdir, logging to its own
 * file, with the TASKER_* variables. Returns the request and the log path relative to the workdir.
 */
export function attemptRequest(layout: RunLayout, spec: AttemptSpec): { request: ExecuteRequest; log: string } {
  const log = layout.logRelativePath(spec.phase, spec.commandId, spec.attempt);
  return {
    log,
    request: {
      command: spec.command,
      cwd: layout.workdir,
      logPath: layout.absolute(log),
      env: {
        TASKER_RUN_ID: layout.runId,
        TASKER_PHASE: spec.phase.name,
        TASKER_COMMAND_ID: spec.commandId,
        TASKER_ATTEMPT: String(spec.attempt),
        TASKER_WORKDIR: layout.workdir,
      },
      timeoutMs: spec.timeoutMs,
      killGraceMs: spec.killGraceMs,
    },
  };
}

/** A phase as the run directory names it: its 1-based position and its name. */
export interface PhaseName {
  index: number;
  name: string;
}


/** Makes a phase name safe as one path segment, keeping it readable. */
export function phaseDirName(phase: PhaseName): string {
  const safe = phase.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_').slice(0, 60);
  return `${String(phase.index).padStart(2, '0')}-${safe}`;
}
