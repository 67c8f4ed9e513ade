import { describe, expect, it } from 'vitest';
import { maxRefreshPauseMs, refreshPauseMs } from '../../tasker/report/report-refresher.js';

describe('the live report pace', () => {
  it('rewrites every 2 s early, a tenth of the run age later, a minute at most', () => {
    expect(refreshPauseMs(0, 5, 2000)).toBe(2000);
    expect(refreshPauseMs(20_000, 5, 2000)).toBe(2000);
    expect(refreshPauseMs(40_000, 5, 2000)).toBe(4000);
    expect(refreshPauseMs(5 * 60_000, 5, 2000)).toBe(30_000);
    expect(refreshPauseMs(5 * 3600_000, 5, 2000)).toBe(maxRefreshPauseMs);
  });

  it('spends at most a twentieth of the time on writing, and never pauses less than asked', () => {
    // A write of 3 s (a run of about a million attempts): 60 s between writes, even early.
    expect(refreshPauseMs(10_000, 3000, 2000)).toBe(60_000);
    expect(refreshPauseMs(5 * 3600_000, 9000, 2000)).toBe(180_000);
    expect(refreshPauseMs(0, 5, 120_000)).toBe(120_000);
    expect(refreshPauseMs(5 * 3600_000, 5, 120_000)).toBe(120_000);
  });
});
