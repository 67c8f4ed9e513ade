import type { ExecutionResult } from './executor-contract.js';

/** How an attempt that ran ended, in the terms of a result (both executors decide it here). */
export interface Ending {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Why it was killed on purpose (timeout, interrupt, shutdown); undefined when it was not. */
  killedFor: string | undefined;
  /** The raw status as a shell reports it (128+n for signal n), when that is all that is known. */
  shellStatus?: number;
}

export function outcomeOf(ending: Ending): Pick<ExecutionResult, 'outcome' | 'reason'> {
  const { exitCode, signal, killedFor } = ending;
  if (ending.timedOut) return { outcome: 'timed-out', reason: killedFor ?? 'timed out' };
  if (killedFor !== undefined && exitCode !== 0) return { outcome: 'killed', reason: killedFor };
  if (exitCode === 0) return { outcome: 'succeeded' };
  if (signal !== null) {
    // A shell reports signal n as 128+n, which a program may also exit with itself: say both.
    return { outcome: 'failed', reason: `killed by ${signal}${ending.shellStatus === undefined ? '' : ` (exit status ${ending.shellStatus})`}` };
  }
  return { outcome: 'failed', reason: `exit code ${exitCode}` };
}
