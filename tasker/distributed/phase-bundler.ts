import { bundledCommandBytes } from '../../shared/broker/messages.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { bundleSize, nextTypicalMs } from './bundle-size.js';

/**
 * Gathers a phase's attempts into the messages of the work queue (bundle-size.ts says how many
 * per message), cut by bytes too, so no message outgrows what the broker accepts.
 */

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
  /**
   * Bytes the attempts of one message may take (the message's limit, maxMessageBytes, less what
   * the rest of the message takes). One attempt alone always goes: a command fits by itself
   * (jobs-file.ts bounds it), and the publisher refuses a message over the limit.
   */
  maxBytes: number;
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

/**
 * A bundle not full goes out this long after its first attempt came: the phase loop hands over a
 * window's worth of attempts in a few turns of the event loop, not always in one (fair share opens
 * room a batch at a time), and a bundle cut at each turn would be a message per attempt.
 */
const partialFlushMs = 15;

/** Attempts published one per message before the phase's first result, at least. */
const minProbes = 8;

interface Pending extends BundledAttempt {
  /** What it adds to a bundle's message. */
  bytes: number;
  resolve(published: boolean): void;
  reject(error: unknown): void;
}

/**
 * A bundle goes out as soon as it is full; whatever the phase loop has handed over goes out
 * `partialFlushMs` after it came, so a phase's last attempts are never held back waiting for
 * company. Until the phase's first result says how long its commands take, attempts
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
  const publishChunk = (count: number): void => {
    const chunk = pending.splice(0, count);
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
      const count = chunkLength(pending, size, options.maxBytes);
      // Not full yet, by count or by bytes: wait for more (or for the end of this turn).
      if (!all && count === pending.length && count < size) return;
      publishChunk(count);
    }
  };

  /** Full bundles now, the rest `partialFlushMs` later. */
  const flushSoon = (): void => {
    flush(false);
    if (pending.length === 0 || flushScheduled) return;
    flushScheduled = true;
    setTimeout(() => {
      flushScheduled = false;
      flush(true);
    }, partialFlushMs);
  };

  return {
    add(command, attempt) {
      handed++;
      return new Promise<boolean>((resolve, reject) => {
        const bytes = bundledCommandBytes({ id: command.id, attempt, command: command.command, file: command.file, line: command.line });
        pending.push({ command, attempt, bytes, resolve, reject });
        flushSoon();
      });
    },
    observe(durationMs) {
      const first = typicalMs === undefined;
      typicalMs = nextTypicalMs(typicalMs, durationMs);
      if (first) {
        // The probe's hold ends: what it held goes out in bundles of the size now known.
        clearTimeout(probeTimer);
        flushSoon();
      }
    },
    size: sizeNow,
    dropPending() {
      clearTimeout(probeTimer);
      for (const entry of pending.splice(0)) entry.resolve(false);
    },
  };
}

/** How many of the first pending attempts make one message: at most `size`, and within `maxBytes` (at least one). */
function chunkLength(pending: readonly { bytes: number }[], size: number, maxBytes: number): number {
  let bytes = 0;
  let count = 0;
  for (const entry of pending) {
    if (count === size || (count > 0 && bytes + entry.bytes > maxBytes)) break;
    bytes += entry.bytes;
    count++;
  }
  return count;
}
