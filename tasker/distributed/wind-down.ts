import type { RunStore } from '../../shared/state/run-store.js';
import { killedOutcome, type AwaitedAttempts } from './result-inbox.js';

/**
 * What becomes of the attempts a distributed tasker still awaits when it stops (Ctrl-C, cancel,
 * --halt now, its own error): workers start none of them from now on, results arriving within a
 * short window are recorded as what they did, then the ones a worker still runs (lease held) are
 * recorded `interrupted`, and the rest, never started, are not recorded at all (a resume runs them).
 */

export interface WindDownPorts {
  /** Tells workers to start none of the run's queued commands (the run is stopped, or already cancelled). */
  stopRun(): Promise<void>;
  /** The ones of these commands some worker runs now. */
  running(ids: readonly string[]): Promise<Set<string>>;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export interface WindDownOptions {
  /** Longest wait for results of commands still running (default 2 s). */
  windowMs?: number;
  /** How often the leases are looked at meanwhile (default 250 ms). */
  pollMs?: number;
}

/** Settles every awaited attempt; `reason` is what stopped the tasker (e.g. `interrupted`). Never throws. */
export async function windDown(awaited: AwaitedAttempts, ports: WindDownPorts, reason: string, options: WindDownOptions = {}): Promise<void> {
  const windowMs = options.windowMs ?? 2000;
  const pollMs = options.pollMs ?? 250;
  await ports.stopRun().catch(() => undefined); // Redis unreachable: the workers run what they have, as after a SIGKILL
  const deadline = ports.now() + windowMs;
  let idleLooks = 0;
  // Two looks in a row with nothing running: a result sent just before the first look has arrived by the second.
  while (awaited.count() > 0 && ports.now() < deadline && idleLooks < 2) {
    const running = await ports.running(awaited.commandIds()).catch(() => undefined);
    idleLooks = running?.size === 0 ? idleLooks + 1 : 0;
    await ports.sleep(pollMs);
  }
  const stillRunning = awaited.count() === 0 ? new Set<string>() : await ports.running(awaited.commandIds()).catch(() => undefined);
  const now = new Date(ports.now()).toISOString();
  // Redis unreachable: what may run is recorded as interrupted, so a resume awaits or reruns it, never skips it.
  awaited.settleAll((waiter, commandId) => (stillRunning === undefined || stillRunning.has(commandId) ? killedOutcome(waiter.attempt, reason, now) : undefined));
}

/** The run's wind-down on Redis, started by the first call only (every phase's dispatch may ask). */
export function createWindDown(awaited: AwaitedAttempts, store: Pick<RunStore, 'runStanding' | 'stopRun' | 'runningCommands'>, runId: string): (reason: string) => void {
  let started = false;
  return (reason) => {
    if (started) return;
    started = true;
    void windDown(awaited, {
      // A cancelled run is refused by the workers already: nothing of it is written again.
      stopRun: async () => ((await store.runStanding(runId)) === 'live' ? store.stopRun(runId) : undefined),
      running: (ids) => store.runningCommands(runId, ids),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      now: Date.now,
    }, reason);
  };
}
