import { runsOnShown, type PhaseSpec } from '../jobs/plan.js';
import type { FailedCommand, PhaseSummary, RanAgain, Retried, RunMode } from '../report/summary.js';
import type { Progress, RunPhasesOptions, RunPorts } from './phase-ports.js';
import { runPhase } from './phase-run.js';

/**
 * The phase loop: streams each phase's commands to its dispatch (local slots, or the workers
 * through RabbitMQ), retries failures with backoff, and waits for the phase to finish before the
 * next starts. It knows nothing of processes, files or brokers: those are ports (phase-ports.ts).
 */

export type { AttemptOutcome, PhaseDispatch, Progress, RunPhasesOptions, RunPorts } from './phase-ports.js';

export interface RunPhasesResult {
  phases: PhaseSummary[];
  failed: FailedCommand[];
  interrupted: boolean;
  ranAgain: RanAgain;
  succeededAfterRetry: Retried;
}

function emptySummary(phase: PhaseSpec, alreadyDone: number, mode: RunMode): PhaseSummary {
  return {
    index: phase.index,
    name: phase.name,
    runsOn: runsOnShown(phase.runsOn, mode === 'rabbitmq'),
    ...(phase.runsOn === 'workers' ? { pool: phase.pool } : {}),
    status: 'not-started',
    total: phase.commandCount,
    succeeded: 0,
    alreadyDone,
    failed: 0,
    interrupted: 0,
    skipped: phase.commandCount - alreadyDone,
    durationMs: 0,
  };
}

export async function runPhases(
  phases: readonly PhaseSpec[],
  ports: RunPorts,
  options: RunPhasesOptions,
  progress: Progress,
  signal: AbortSignal,
): Promise<RunPhasesResult> {
  const summaries = phases.map((phase) => emptySummary(phase, options.prior.succeededByPhase.get(phase.index) ?? 0, options.mode));
  const failed: FailedCommand[] = [];
  const ranAgain: RanAgain = { count: 0, commands: [] };
  const retried: Retried = { count: 0, commands: [] };
  const maxTailsKept = options.maxTailsKept ?? 100;
  let stopAfterPhase = false;
  const halt = { mode: options.halt ?? 'never', controller: new AbortController() };
  progress.phaseCount = phases.length;
  progress.total = phases.reduce((sum, phase) => sum + phase.commandCount, 0);
  progress.done = summaries.reduce((sum, phase) => sum + phase.alreadyDone, 0);

  for (const [position, phase] of phases.entries()) {
    const stats = summaries[position]!;
    if (signal.aborted) break;
    // A phase all done in an earlier session is done, even after a failed phase: nothing of it is "not run".
    if (stats.alreadyDone === phase.commandCount) {
      stats.status = 'succeeded';
      stats.skipped = 0;
      ports.logger.info({ phase: phase.name, commands: phase.commandCount }, 'phase already done in an earlier session');
      continue;
    }
    if (stopAfterPhase) {
      stats.status = 'skipped';
      continue;
    }
    await runPhase(phase, { ports, options, signal, tally: { stats, progress, failed, ranAgain, retried, maxTailsKept, halt } });
    if (stats.failed > 0 && !options.keepGoing) {
      stopAfterPhase = true;
      if (position < phases.length - 1) {
        ports.logger.warn({ phase: phase.name }, 'later phases will not start because this phase had failures (use --keep-going to run them anyway)');
      }
    }
  }
  return { phases: summaries, failed, interrupted: signal.aborted, ranAgain, succeededAfterRetry: retried };
}
