/**
 * The worker's command slots: `concurrency` commands handed to the executor at once (plus the
 * lookahead's one, lookahead.ts); once draining, none is given out. (The executor's own runners,
 * shared/exec/, are below this: a command holds a slot from before its lease to its record.)
 */

export interface CommandSlots {
  /**
   * Resolves with the slot's release, or undefined when the message goes back to the queue.
   * `patient`: not handed back for having waited long (only by the drain).
   */
  acquire(patient?: boolean): Promise<(() => void) | undefined>;
  /** True when `acquire` would give one of the `concurrency` slots now (the lookahead's aside). */
  freeNow(): boolean;
  /** One slot more than `concurrency` (1) or not (0). */
  setLookahead(extra: 0 | 1): void;
  /** Stops giving out slots, for good. */
  drain(): void;
  draining(): boolean;
  /**
   * Waits until the caller's slot is the only one taken, giving out none meanwhile (a suspect
   * command runs alone); resolves with the release, or undefined when another caller already
   * waits for that, or when draining.
   */
  runAlone(): Promise<(() => void) | undefined>;
  /** Resolves the waiters queued at or before `cutoffMs`, patient ones aside (default: all waiters), with undefined; returns how many. */
  handBackWaiting(cutoffMs?: number): number;
}

export function createCommandSlots(concurrency: number): CommandSlots {
  let lookahead: 0 | 1 = 0;
  let taken = 0;
  let draining = false;
  /** A caller waits to run alone, or runs alone: no slot is given out. */
  let alone = false;
  const waiters: { since: number; patient: boolean; resolve: (release: (() => void) | undefined) => void }[] = [];
  const release = (): void => {
    taken--;
    wakeWaiters();
  };
  const wakeWaiters = (): void => {
    while (!draining && !alone && taken < concurrency + lookahead && waiters.length > 0) {
      taken++;
      waiters.shift()!.resolve(release);
    }
  };
  return {
    acquire(patient = false) {
      if (draining) return Promise.resolve(undefined);
      if (!alone && taken < concurrency + lookahead) {
        taken++;
        return Promise.resolve(release);
      }
      return new Promise((resolve) => waiters.push({ since: Date.now(), patient, resolve }));
    },
    freeNow: () => !draining && !alone && taken < concurrency,
    setLookahead(extra) {
      lookahead = extra;
      wakeWaiters();
    },
    runAlone() {
      if (draining || alone) return Promise.resolve(undefined);
      alone = true;
      const endAlone = (): void => {
        alone = false;
        wakeWaiters();
      };
      return new Promise((resolve) => {
        // Polled: rare (only after a worker was lost), and a command's end needs no hook here.
        const check = (): void => {
          if (draining) {
            endAlone();
            resolve(undefined);
          } else if (taken <= 1) resolve(endAlone);
          else setTimeout(check, 50);
        };
        check();
      });
    },
    drain() {
      draining = true;
    },
    draining: () => draining,
    handBackWaiting(cutoffMs) {
      const handedBack = waiters.filter((entry) => cutoffMs === undefined || (!entry.patient && entry.since <= cutoffMs));
      for (const waiter of handedBack) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(undefined);
      }
      return handedBack.length;
    },
  };
}
