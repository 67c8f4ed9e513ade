import { bundledCommandBytes } from '../../shared/broker/messages.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { PhaseDispatch } from '../dispatch/phase-ports.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { BundledAttempt, PublishBundle } from './command-publisher.js';
import type { LostQueueRecovery } from './lost-queue-recovery.js';
import type { AwaitedAttempts, ResultInbox } from './result-inbox.js';

/**
 * One phase's dispatch through RabbitMQ: an attempt is awaited, then published (unless a previous
 * tasker of this run already did) alone or in a bundle, and settled by its result. The bundler
 * gathers the attempts into messages, as many per message as bundleSize says, cut by bytes too.
 */

export interface DistributedDispatchParts {
  awaited: AwaitedAttempts;
  inbox: ResultInbox;
  resumed: ResumedAttempts;
  bundler: PhaseBundler;
  /** Publishes an awaited attempt again if its queue is deleted meanwhile. */
  recovery: Pick<LostQueueRecovery, 'track'>;
  phase: PhaseSpec;
  /** Settles every awaited attempt when the tasker stops (wind-down.ts); runs once per run. */
  windDown(reason: string): void;
}

export interface DistributedDispatch extends PhaseDispatch {
  /** The phase's commands not handed over yet, as the phase loop last said (run-share.ts). */
  backlog(): number;
}

export function createDistributedDispatch(parts: DistributedDispatchParts): DistributedDispatch {
  const { awaited, inbox, resumed, bundler, recovery, phase, windDown } = parts;
  let backlog = phase.commandCount;
  return {
    backlog: () => backlog,
    async waitForRoom(commandsLeft) {
      backlog = commandsLeft;
      await awaited.waitForRoom();
      // This one is about to be awaited: counted in flight from now on.
      backlog = commandsLeft - 1;
    },
    async runAttempt(command, attempt, onStart) {
      const claimed = resumed.claim(command.id, attempt);
      const early = inbox.claimEarly(command.id, claimed.attempt);
      if (early !== undefined) return early;
      // Tracked from before it is published: a queue lost at any time after that sends it again.
      const untrack = recovery.track(phase, command, claimed.attempt, !claimed.publish);
      const outcome = awaited.awaitResult(command.id, claimed.attempt).finally(untrack);
      // Dropped before it was published (interrupt): settled by killAll, never started.
      if (claimed.publish && !(await bundler.add(command, claimed.attempt))) return outcome;
      onStart();
      const settled = await outcome;
      if (settled === undefined) return undefined; // the tasker stopped before a worker started it
      // How long the phase's commands take sizes its next bundles; a run the tasker stopped awaiting says nothing of that.
      if (settled.worker !== 'tasker') bundler.observe(settled.result.durationMs);
      return settled;
    },
    killAll(reason) {
      // The workers keep running what they have: a restarted tasker awaits those results.
      bundler.dropPending();
      windDown(reason);
    },
  };
}

// ---- attempts a previous tasker of this run published and nobody recorded yet: their results
// are still to come, so they are awaited rather than published again (loadResumedAttempts in
// distributed-run.ts). In a new run every claim publishes the attempt asked for.

export interface ClaimedAttempt {
  /** The attempt to await: the one published earlier, or the one asked for. */
  attempt: number;
  /** False when an earlier tasker already published it. */
  publish: boolean;
}

export interface ResumedAttempts {
  /** What to do for this command's `attempt`; a command's earlier publication counts once only. */
  claim(commandId: string, attempt: number): ClaimedAttempt;
  /** Attempts of the previous tasker not claimed yet. */
  pending(): number;
}

// ---- the bundler: attempts into messages

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

// ---- how many attempts per message: pure arithmetic

/** About this much work per bundle, summed over its commands. */
export const bundleTargetMs = 250;
/** Commands per adaptive bundle, at most. */
export const maxAdaptiveBundle = 100;

export interface BundleSizeInput {
  /** --bundle-size / TASKER_BUNDLE_SIZE; undefined: adaptive. */
  fixed: number | undefined;
  /** Typical duration of the phase's commands so far (ms); undefined: no result yet. */
  typicalMs: number | undefined;
  /** Attempts of the phase not published yet, this one included. */
  remaining: number;
  /** Commands the workers run at once (the sum of their slots). */
  lanes: number;
}

/**
 * Adaptive (no fixed size): one per message until the phase's first results say how long its
 * commands take, and whenever they are long (so long simulations are dealt out one by one,
 * fairly, to whichever worker is free). While they are short, a bundle holds about
 * `bundleTargetMs` of work, at most `maxAdaptiveBundle` commands, and never more than a share of
 * what is left to publish in the phase (remaining / (2 x worker slots)): the phase's last bundles
 * get smaller and smaller, so its end is not a few workers finishing big bundles while the others
 * wait (guided self-scheduling).
 */
export function bundleSize(input: BundleSizeInput): number {
  if (input.fixed !== undefined) return Math.max(1, input.fixed);
  if (input.typicalMs === undefined) return 1;
  const byWork = Math.floor(bundleTargetMs / Math.max(1, input.typicalMs));
  const share = Math.ceil(input.remaining / (2 * Math.max(1, input.lanes)));
  return Math.max(1, Math.min(byWork, share, maxAdaptiveBundle));
}

/** The typical duration after one more result: a moving average that follows a phase turning long or short within a few bundles. */
export function nextTypicalMs(typicalMs: number | undefined, durationMs: number): number {
  return typicalMs === undefined ? durationMs : 0.8 * typicalMs + 0.2 * durationMs;
}
