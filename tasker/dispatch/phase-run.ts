import type { PhaseSpec, PlannedCommand } from '../jobs/plan.js';
import type { CommandRef } from '../../shared/state/results.js';
import { runCommandAttempts, type PhaseTally } from './command-attempts.js';
import type { PhaseDispatch, RunPhasesOptions, RunPorts } from './phase-ports.js';

/**
 * One phase: streams its commands into its dispatch as room frees up, and returns only when
 * every attempt it handed over has finished and been recorded (the barrier between phases).
 */

export interface PhaseRunContext {
  ports: RunPorts;
  options: RunPhasesOptions;
  signal: AbortSignal;
  /** The phase's summary (filled in here), the live counters and the run's failures. */
  tally: PhaseTally;
}

export async function runPhase(phase: PhaseSpec, context: PhaseRunContext): Promise<void> {
  const { ports, signal, tally } = context;
  const { stats, progress } = tally;
  progress.phase = phase.name;
  progress.phaseIndex = phase.index;
  progress.pool = phase.runsOn === 'workers' ? phase.pool : '';
  const startedAt = ports.now();
  ports.logger.info(
    { phase: phase.name, phaseIndex: phase.index, runsOn: stats.runsOn, ...(phase.runsOn === 'workers' ? { pool: phase.pool } : {}), commands: phase.commandCount, alreadyDone: stats.alreadyDone },
    'phase started',
  );
  const dispatch = ports.dispatchFor(phase);
  await dispatchPhaseCommands(phase, dispatch, context);

  stats.durationMs = ports.now() - startedAt;
  stats.skipped = phase.commandCount - stats.alreadyDone - stats.succeeded - stats.failed - stats.interrupted;
  stats.status = signal.aborted ? 'interrupted' : stats.failed > 0 ? 'failed' : 'succeeded';
  ports.logger.info(
    { phase: phase.name, phaseIndex: phase.index, succeeded: stats.succeeded, failed: stats.failed, durationMs: stats.durationMs },
    'phase finished',
  );
}

/** Hands over every command not done in an earlier session, then waits for all of them. */
async function dispatchPhaseCommands(phase: PhaseSpec, dispatch: PhaseDispatch, context: PhaseRunContext): Promise<void> {
  const { ports, options, signal } = context;
  const onAbort = (): void => dispatch.killAll('interrupted');
  signal.addEventListener('abort', onAbort, { once: true });
  const { halt } = context.tally;
  const onHalt = (): void => {
    if (halt.mode === 'now') dispatch.killAll('halted: a command failed (--halt now)');
    else dispatch.stopStarting?.('halted: a command failed (--halt soon)');
  };
  halt.controller.signal.addEventListener('abort', onHalt, { once: true });
  const inFlight = new Set<Promise<void>>();
  // An error here is the tasker's own (results file unwritable, dispatch broken), not a command's.
  let internalError: unknown;
  let seen = 0;
  try {
    for await (const planned of ports.phaseCommands(phase)) {
      seen++;
      if (signal.aborted || halt.controller.signal.aborted || internalError !== undefined) break;
      if (options.prior.succeeded.has(planned.id)) continue;
      await dispatch.waitForRoom(phase.commandCount - seen + 1);
      if (signal.aborted || halt.controller.signal.aborted) break;
      const running: Promise<void> = runPlannedCommand(planned, phase, dispatch, context).then(
        () => {
          inFlight.delete(running);
        },
        (error: unknown) => {
          inFlight.delete(running);
          if (internalError === undefined) {
            internalError = error;
            dispatch.killAll('tasker error');
          }
        },
      );
      inFlight.add(running);
    }
  } finally {
    // Whatever stopped the loop (interrupt, unreadable file), never leave attempts unrecorded.
    await Promise.all(inFlight);
    signal.removeEventListener('abort', onAbort);
    halt.controller.signal.removeEventListener('abort', onHalt);
  }
  if (internalError !== undefined) throw internalError;
}

function runPlannedCommand(planned: PlannedCommand, phase: PhaseSpec, dispatch: PhaseDispatch, context: PhaseRunContext): Promise<void> {
  const { ports, options, signal, tally } = context;
  // Fields named, not spread: a literal of fixed shape is several times cheaper to build, per command.
  const command: CommandRef = { id: planned.id, phase: phase.name, phaseIndex: phase.index, command: planned.command, file: planned.file, line: planned.line };
  const firstAttempt = (options.prior.attempts.get(command.id) ?? 0) + 1;
  return runCommandAttempts(command, firstAttempt, { dispatch, ports, options, signal, tally });
}
