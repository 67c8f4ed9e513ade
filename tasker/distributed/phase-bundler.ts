import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { bundleSize, nextTypicalMs } from './bundle-size.js';

/** Gathers a phase's attempts into the messages of the work queue (bundle-size.ts says how many per message). */

export interface BundledAttempt {
  command: CommandRef;
  attempt: number;
}

/** Publishes attempts of one phase in one message; resolves once the broker has it. */
export type PublishBundle = (phase: PhaseSpec, attempts: readonly BundledAttempt[]) => Promise<void>;

export interface PhaseBundlerOptions {
  publish: PublishBundle;
  /** --bundle-size; undefined: adaptive. */
  fixedSize: number | undefined;
  /** Commands the workers run at once (the sum of their slots), as last heard. */
  lanes(): number;
  probeMs: number;
}

export interface PhaseBundler {
  /** Resolves true once the attempt is published (alone or in a bundle); false when it was dropped first (interrupt). */
  add(command: CommandRef, attempt: number): Promise<boolean>;
  /** A result of this phase came back, its command having run this long. */
  observe(durationMs: number): void;
  /** Drops the attempts not published yet (the run is interrupted): they resolve false. */
  dropPending(): void;
  /** Attempts per message now. */
  size(): number;
}

/** Attempts published one per message before the phase's first result, at least. */
const minProbes = 8;

interface Pending extends BundledAttempt {
  resolve(published: boolean): void;
  reject(error: unknown): void;
}

/**
 * A bundle goes out as soon as it is full; whatever the phase loop has handed over by the end of
 * the current turn of the event loop goes out too, so a phase's last attempts are never held back
 * waiting for company. Until the phase's first result says how long its commands take, attempts
 * go one per message, 2 per worker slot (at least 8); the others wait for that result, at most
 * `probeMs` (then they go one per message: their commands are taken to be long).
 */
export function createPhaseBundler(phase: PhaseSpec, options: PhaseBundlerOptions): PhaseBundler {
  const pending: Pending[] = [];
  let handed = 0;
  let typicalMs: number | undefined;
  /** Published before the phase's first result. */
  let probes = 0;
  const probeUntil = Date.now() + options.probeMs;
  let flushScheduled = false;
  let probeTimer: NodeJS.Timeout | undefined;

  const sizeNow = (): number => {
    const remaining = Math.max(pending.length, phase.commandCount - handed + pending.length, 1);
    return bundleSize({ fixed: options.fixedSize, typicalMs, remaining, lanes: options.lanes() });
  };
  const holding = (): boolean => options.fixedSize === undefined && typicalMs === undefined && probes >= Math.max(minProbes, 2 * options.lanes()) && Date.now() < probeUntil;
  const publishChunk = (size: number): void => {
    const chunk = pending.splice(0, size);
    if (typicalMs === undefined) probes += chunk.length;
    options.publish(phase, chunk).then(
      () => chunk.forEach((entry) => entry.resolve(true)),
      (error: unknown) => chunk.forEach((entry) => entry.reject(error)),
    );
  };
  /** Publishes full bundles; with `all`, the rest too. */
  const flush = (all: boolean): void => {
    while (pending.length > 0) {
      if (holding()) {
        probeTimer ??= setTimeout(() => flush(true), Math.max(0, probeUntil - Date.now()));
        return;
      }
      const size = sizeNow();
      if (!all && pending.length < size) return;
      publishChunk(size);
    }
  };

  return {
    add(command, attempt) {
      handed++;
      return new Promise<boolean>((resolve, reject) => {
        pending.push({ command, attempt, resolve, reject });
        flush(false);
        if (pending.length === 0 || flushScheduled) return;
        flushScheduled = true;
        setImmediate(() => {
          flushScheduled = false;
          flush(true);
        });
      });
    },
    observe(durationMs) {
      const first = typicalMs === undefined;
      typicalMs = nextTypicalMs(typicalMs, durationMs);
      if (first) {
        clearTimeout(probeTimer);
        flush(true);
      }
    },
    size: sizeNow,
    dropPending() {
      clearTimeout(probeTimer);
      for (const entry of pending.splice(0)) entry.resolve(false);
    },
  };
}
