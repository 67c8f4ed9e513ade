/**
 * Fair share of a pool's worker slots between the runs that have commands for it. Pure
 * arithmetic: every tasker computes the same split from the same table (shared/redis/redis-demand.ts).
 */

export const priorities = ['low', 'normal', 'high'] as const;
export type Priority = (typeof priorities)[number];

/** A run's entry in its pool's demand table. */
export interface RunDemand {
  runId: string;
  priority: Priority;
  /** Commands it could run now: published and not finished, plus those of its phase not published yet. */
  demand: number;
  /** Published and not finished (queued or running). */
  inFlight: number;
  /** The phase it runs. */
  phase: string;
  /** When its tasker wrote this (ms since the epoch). */
  at: number;
}

/**
 * Slots per run: strict priority between classes (a higher one takes what it can use first), and
 * max-min fairness within a class (each gets an equal part; what a run cannot use goes to the
 * others). Work-conserving: while runs want more, no slot is left over. Fractions are kept.
 */
export function allocateSlots(slots: number, runs: readonly Pick<RunDemand, 'runId' | 'priority' | 'demand'>[]): Map<string, number> {
  const shares = new Map<string, number>();
  let left = Math.max(0, slots);
  for (const priority of [...priorities].reverse()) {
    const inClass = runs.filter((run) => run.priority === priority).sort((a, b) => a.demand - b.demand);
    for (let index = 0; index < inClass.length; index++) {
      const run = inClass[index] as (typeof inClass)[number];
      const equalPart = left / (inClass.length - index);
      const share = Math.min(Math.max(0, run.demand), equalPart);
      shares.set(run.runId, share);
      left -= share;
    }
  }
  return shares;
}

/**
 * Commands a run keeps published and unfinished for `share` slots: two bundles per slot (one
 * running, one waiting behind it), so its slots never idle while the tasker tops up, and another
 * run's first commands wait behind at most about one bundle's work per slot (bundles hold about
 * half a second of work, or one long command). At least one while it has any share.
 */
export function shareWindow(share: number, bundleSize: number): number {
  if (share <= 0) return 0;
  return Math.max(1, Math.ceil(share * 2 * Math.max(1, bundleSize)));
}

/** Entries older than this are of a tasker that is gone (they are written 4 times a second): left out, and removed by whoever reads them. */
export const demandStaleMs = 5000;

/** The pool's split as a run sees it, for its progress line, `tasker status` and the metrics. */
export interface ShareView {
  /** The slots the pool's live workers run at once. */
  slots: number;
  /** This run's part of them (may be fractional). */
  share: number;
  /** Other runs of the pool holding slots while this one has commands waiting: those with a share, and those of its priority or higher still running commands. */
  waitsBehind: { runId: string; priority: Priority; share: number }[];
}

export function shareView(runId: string, slots: number, runs: readonly RunDemand[]): ShareView {
  const shares = allocateSlots(slots, runs);
  const mine = runs.find((run) => run.runId === runId);
  const waiting = mine !== undefined && mine.demand > mine.inFlight;
  const waitsBehind = waiting
    ? runs
        .filter((run) => run.runId !== runId && ((shares.get(run.runId) ?? 0) > 0 || (run.inFlight > 0 && rank(run.priority) >= rank(mine.priority))))
        .map((run) => ({ runId: run.runId, priority: run.priority, share: shares.get(run.runId) ?? 0 }))
    : [];
  return { slots, share: shares.get(runId) ?? 0, waitsBehind };
}

function rank(priority: Priority): number {
  return priorities.indexOf(priority);
}

/** A share as shown: two decimals at most. */
export function roundShare(share: number): number {
  return Math.round(share * 100) / 100;
}

/** "2.5 of 8 slots". */
export function formatShare(share: number, slots: number): string {
  return `${roundShare(share)} of ${slots} slot${slots === 1 ? '' : 's'}`;
}

export function parsePriority(value: string): Priority | undefined {
  return (priorities as readonly string[]).includes(value) ? (value as Priority) : undefined;
}
