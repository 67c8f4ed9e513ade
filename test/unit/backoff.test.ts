import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../shared/config/backoff.js';

const low = (): number => 0;
const high = (): number => 0.999999;
const middle = (): number => 0.5;

describe('backoffMs', () => {
  it('lies between half the exponential ceiling and the ceiling', () => {
    // attempt n: ceiling = base * 2^(n-1)
    expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, 1000, 60_000, low))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, 1000, 60_000, high))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(3, 1000, 60_000, middle)).toBe(3000);
  });

  it('is capped at maxMs, jitter included', () => {
    expect(backoffMs(7, 1000, 60_000, high)).toBe(60_000);
    expect(backoffMs(7, 1000, 60_000, low)).toBe(30_000);
    expect(backoffMs(1000, 1000, 60_000, high)).toBe(60_000);
    expect(backoffMs(5, 10_000, 3_000, middle)).toBe(2_250);
  });

  it('treats attempt 0 or below like the first retry', () => {
    expect(backoffMs(0, 800, 10_000, high)).toBe(backoffMs(1, 800, 10_000, high));
    expect(backoffMs(-3, 800, 10_000, low)).toBe(400);
  });

  it('is 0 when the base delay is 0 or negative', () => {
    expect(backoffMs(3, 0, 60_000, high)).toBe(0);
    expect(backoffMs(3, -5, 60_000, high)).toBe(0);
  });

  it('returns whole milliseconds', () => {
    expect(Number.isInteger(backoffMs(2, 333, 60_000, () => 0.123))).toBe(true);
  });

  it('stays in range with the default random source', () => {
    for (let i = 0; i < 200; i++) {
      const delay = backoffMs(3, 100, 60_000);
      expect(delay).toBeGreaterThanOrEqual(200);
      expect(delay).toBeLessThanOrEqual(400);
    }
  });
});
