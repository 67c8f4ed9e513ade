/** How many attempts the tasker puts in one message of the work queue. Pure arithmetic. */

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
