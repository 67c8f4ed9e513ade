import { describe, expect, it } from 'vitest';
import { isValidRunId, newRunId, phaseDirName, runLayout } from '../../shared/run-dir/run-layout.js';

describe('isValidRunId', () => {
  it.each(['a', '20261121-103955-k3x9', 'run_1.final', 'A-b_c.d', '9'.repeat(64)])('accepts %j', (runId) => {
    expect(isValidRunId(runId)).toBe(true);
  });

  it.each(['', '-x', '.hidden', '_x', 'a..b', 'a/b', 'a\\b', 'a b', 'x'.repeat(65), 'ü', 'a:b', 'a\nb', '..'])('rejects %j', (runId) => {
    expect(isValidRunId(runId)).toBe(false);
  });
});

describe('newRunId', () => {
  it('is the UTC time plus a 4-character suffix', () => {
    expect(newRunId(new Date('2026-11-21T10:39:55.123Z'), () => 0)).toBe('20261121-103955-aaaa');
    expect(newRunId(new Date('2026-01-02T03:04:05.000Z'), () => 0.9999)).toBe('20260102-030405-9999');
  });

  it('uses the whole alphabet for the suffix', () => {
    const values = [0, 25 / 36, 26 / 36, 35 / 36];
    let i = 0;
    const random = (): number => values[i++ % values.length]!;
    expect(newRunId(new Date('2026-11-21T10:39:55Z'), random)).toBe('20261121-103955-az09');
  });

  it('is a valid run id', () => {
    for (let i = 0; i < 50; i++) expect(isValidRunId(newRunId(new Date()))).toBe(true);
  });

  it('sorts in time order', () => {
    const times = ['2025-12-31T23:59:59Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', '2026-01-01T09:59:59Z', '2026-01-01T10:00:00Z', '2026-10-01T00:00:00Z'];
    const ids = times.map((time, i) => newRunId(new Date(time), () => (times.length - i) / 10));
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('runLayout', () => {
  it('keeps every file of a run under WORKDIR/.tasker/runs/RUN_ID', () => {
    const layout = runLayout('/work/dir', 'r1');
    expect(layout.runDir).toBe('/work/dir/.tasker/runs/r1');
    expect(layout.planPath).toBe('/work/dir/.tasker/runs/r1/plan.json');
    expect(layout.resultsPath).toBe('/work/dir/.tasker/runs/r1/results.jsonl');
    expect(layout.summaryPath).toBe('/work/dir/.tasker/runs/r1/summary.json');
    expect(layout.jobsCopyPath(0, '../some dir/jobs (1).sh')).toBe('/work/dir/.tasker/runs/r1/jobs/1-jobs_1_.sh');
  });

  it('records log paths relative to the workdir, with a safe phase directory', () => {
    const layout = runLayout('/w', 'r1');
    const log = layout.logRelativePath({ index: 2, name: 'sim/ulate' }, 'f1-L7', 3);
    expect(log).toBe('.tasker/runs/r1/logs/02-sim_ulate/f1-L7.3.log');
    expect(layout.absolute(log)).toBe('/w/.tasker/runs/r1/logs/02-sim_ulate/f1-L7.3.log');
  });
});

describe('phaseDirName', () => {
  it('prefixes the zero-padded index', () => {
    expect(phaseDirName({ index: 3, name: 'simulate' })).toBe('03-simulate');
    expect(phaseDirName({ index: 12, name: 'a.b_c-d' })).toBe('12-a.b_c-d');
  });

  it('is one safe path segment whatever the name', () => {
    const names = ['../../etc/passwd', '..', '.', '.hidden', 'a/b\\c', 'spaces and tabs\t', '日本語', 'x'.repeat(300), 'C:\\x', 'a\u0000b'];
    for (const name of names) {
      const dirName = phaseDirName({ index: 1, name });
      expect(dirName).toMatch(/^01-[A-Za-z0-9._-]+$/);
      expect(dirName).not.toContain('/');
      expect(dirName.slice(3).startsWith('.')).toBe(false);
      expect(dirName.length).toBeLessThanOrEqual(63);
    }
    expect(phaseDirName({ index: 1, name: 'a/b c' })).toBe('01-a_b_c');
  });
});
