import type { PhaseSpec } from '../jobs/plan.js';
import type { PhaseDispatch } from '../dispatch/phase-ports.js';
import type { LiveState } from '../report/report-model.js';

/**
 * What the live report needs beyond results.jsonl: the phase running now, since when, and when
 * each attempt still running started, so the page draws them as running rather than stalled.
 * Wraps each phase's dispatch; the phase loop does not know about it.
 */

export interface LiveAttempts {
  /** The phase's dispatch, its attempts' starts and ends noted. `startsAreRuns`: onStart is a real start (not a publish). */
  track(phase: PhaseSpec, dispatch: PhaseDispatch, startsAreRuns: boolean): PhaseDispatch;
  /** The part of the live state this knows. */
  snapshot(): Pick<LiveState, 'phaseIndex' | 'phaseStartedMs' | 'runningSinceMs'>;
}

export function createLiveAttempts(now: () => number): LiveAttempts {
  let phaseIndex: number | undefined;
  let phaseStartedMs: number | undefined;
  // Start times of the attempts running here; a Set of boxes, since two attempts may start in the same ms.
  const running = new Set<{ startMs: number }>();
  return {
    track(phase, dispatch, startsAreRuns) {
      phaseIndex = phase.index;
      phaseStartedMs = now();
      const stopStarting = dispatch.stopStarting;
      return {
        waitForRoom: (backlog) => dispatch.waitForRoom(backlog),
        killAll: (reason) => dispatch.killAll(reason),
        ...(stopStarting === undefined ? {} : { stopStarting: (reason: string) => stopStarting.call(dispatch, reason) }),
        // Attempts handed to workers are not drawn as running: nothing to note, no wrapper per attempt.
        runAttempt: startsAreRuns ? notingStarts(dispatch, running, now) : (command, attempt, onStart) => dispatch.runAttempt(command, attempt, onStart),
      };
    },
    snapshot() {
      return { phaseIndex, phaseStartedMs, runningSinceMs: [...running].map((entry) => entry.startMs) };
    },
  };
}

/** The dispatch's runAttempt, each attempt's start time in `running` while it runs. */
function notingStarts(dispatch: PhaseDispatch, running: Set<{ startMs: number }>, now: () => number): PhaseDispatch['runAttempt'] {
  return async (command, attempt, onStart) => {
    const entry = { startMs: 0 };
    try {
      return await dispatch.runAttempt(command, attempt, () => {
        entry.startMs = now();
        running.add(entry);
        onStart();
      });
    } finally {
      running.delete(entry);
    }
  };
}
