import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../shared/config/duration.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['2h', 7_200_000],
    ['1.5m', 90_000],
    ['500ms', 500],
    ['15m', 900_000],
    ['1d', 86_400_000],
    ['2H', 7_200_000],
    [' 30s ', 30_000],
    ['5 s', 5_000],
    ['0s', 0],
  ])('parses %j as %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each([
    ['10', 10_000],
    ['0', 0],
    ['1.5', 1_500],
    ['0.25', 250],
  ])('reads a bare number %j as seconds', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['', '   ', 'abc', 's', '-5s', '-5', '+5s', '5x', '1e3', '1e3s', 'Infinity', 'NaN', '.5s', '5.s', '1h30m', '5s extra', '0x10'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [999.4, '999ms'],
    [1000, '1.0s'],
    [12_300, '12.3s'],
    [60_000, '1m00s'],
    [245_000, '4m05s'],
    [3_540_000, '59m00s'],
    [3_600_000, '1h00m'],
    [7_380_000, '2h03m'],
    [90_061_000, '25h01m'],
  ])('formats %d ms as %j', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });

  it('prints ? for values that are not durations', () => {
    expect(formatDuration(-1)).toBe('?');
    expect(formatDuration(Number.NaN)).toBe('?');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('?');
  });
});
