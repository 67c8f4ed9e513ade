/**
 * Exponential backoff with "equal jitter": the delay for retry `attempt` (1 = first retry)
 * is uniform in [base*2^(attempt-1) / 2, base*2^(attempt-1)], capped at maxMs.
 * `random` is injectable so tests are deterministic.
 */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  if (baseMs <= 0) return 0;
  const exponent = Math.max(0, attempt - 1);
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(exponent, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
