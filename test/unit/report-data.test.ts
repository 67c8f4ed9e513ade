import { describe, expect, it } from 'vitest';
import type { ResultRecord } from '../../shared/state/results.js';
import { createBusyBins, createDurationSketch, createTopN, niceBinMs } from '../../tasker/report/report-bins.js';
import { createReportAggregator } from '../../tasker/report/report-data.js';
import { createFailureTracker } from '../../tasker/report/report-failures.js';
import { reportModel } from '../../tasker/report/report-model.js';
import { renderReportPage } from '../../tasker/report/report-page.js';

const t0 = Date.parse('2026-11-21T10:00:00.000Z');

function record(id: string, attempt: number, outcome: ResultRecord['outcome'], startS: number, endS: number, extra: Partial<ResultRecord> = {}): ResultRecord {
  return {
    id,
    phase: 'sims',
    phaseIndex: 2,
    command: `run ${id}`,
    file: 'jobs.sh',
    line: 3,
    attempt,
    outcome,
    exitCode: outcome === 'succeeded' ? 0 : outcome === 'failed' ? 3 : null,
    signal: outcome === 'timed-out' ? 'SIGTERM' : null,
    startedAt: new Date(t0 + startS * 1000).toISOString(),
    finishedAt: new Date(t0 + endS * 1000).toISOString(),
    durationMs: (endS - startS) * 1000,
    worker: 'w1',
    log: `logs/${id}.${attempt}.log`,
    ...extra,
  };
}

describe('busy bins', () => {
  it('adds each interval exactly: partial bins directly, full bins in between', () => {
    const bins = createBusyBins(0, 10, 5);
    bins.add(5, 35); // 5 of bin 0, all of bins 1 and 2, 5 of bin 3
    bins.add(41, 43);
    bins.add(-100, 2); // clamped to the first bin
    bins.add(48, 1000); // clamped to the last
    expect([...bins.totals()]).toEqual([7, 10, 10, 5, 4]);
  });
});

describe('duration sketch', () => {
  it('gives quantiles within 2.5 % and exact min, max and mean', () => {
    const sketch = createDurationSketch();
    for (let ms = 1; ms <= 10_000; ms++) sketch.add(ms);
    expect(sketch.minMs).toBe(1);
    expect(sketch.maxMs).toBe(10_000);
    expect(sketch.sumMs / sketch.count).toBe(5000.5);
    for (const [q, exact] of [[0.5, 5000], [0.9, 9000], [0.99, 9900]] as const) {
      expect(Math.abs(sketch.quantile(q) - exact) / exact).toBeLessThanOrEqual(0.025);
    }
    const bars = sketch.histogram(20);
    expect(bars.length).toBeLessThanOrEqual(20);
    expect(bars.reduce((sum, bar) => sum + bar.count, 0)).toBe(10_000);
  });

  it('is empty without durations', () => {
    const sketch = createDurationSketch();
    expect([sketch.quantile(0.5), sketch.minMs, sketch.maxMs, sketch.histogram(10).length]).toEqual([0, 0, 0, 0]);
  });
});

describe('top N', () => {
  it('keeps the largest, largest first', () => {
    const top = createTopN<number>(3);
    for (const n of [5, 1, 9, 7, 3, 8]) top.offer(n, () => n);
    expect(top.sorted()).toEqual([9, 8, 7]);
  });
});

describe('niceBinMs', () => {
  it('picks a round width of at least 50 ms giving at most the bins asked for', () => {
    expect(niceBinMs(0, 3000, 600)).toBe(50);
    expect(niceBinMs(0, 3_600_000, 600)).toBe(10_000);
    expect(niceBinMs(0, 100 * 3_600_000, 600)).toBe(600_000);
    expect(niceBinMs(0, 1000 * 3_600_000, 600)).toBe(7_200_000);
  });
});

describe('failure tracker', () => {
  it('lists commands whose latest attempt failed; a later success takes a command off', () => {
    const tracker = createFailureTracker(10);
    for (const r of [
      record('a', 1, 'failed', 0, 1),
      record('a', 2, 'succeeded', 2, 3),
      record('b', 1, 'failed', 0, 1, { tail: 'boom\n' }),
      record('b', 2, 'timed-out', 2, 3, { reason: 'timed out after 1.0s' }),
      record('c', 1, 'dead-lettered', 0, 0, { reason: 'poison' }),
      record('d', 1, 'interrupted', 0, 1),
      record('e', 1, 'succeeded', 0, 1),
    ]) tracker.add(r);
    const report = tracker.report();
    expect({ ...report, rows: report.rows.map((row) => [row.id, row.outcome, row.attempts, row.reason]) }).toEqual({
      failed: 2,
      deadLettered: 1,
      interrupted: 1,
      succeededAfterRetry: 1,
      retried: [{ id: 'a', phase: 'sims', attempt: 2 }],
      failedAttempts: 4,
      rows: [
        ['b', 'timed-out', 2, 'timed out after 1.0s'],
        ['c', 'dead-lettered', 1, 'poison'],
      ],
    });
  });

  it('keeps full rows for the first failures only, and still counts all; interrupted commands take no row', () => {
    const tracker = createFailureTracker(2);
    tracker.add(record('i', 1, 'interrupted', 0, 1));
    for (let i = 0; i < 5; i++) tracker.add(record(`f${i}`, 1, 'failed', 0, 1));
    const report = tracker.report();
    expect(report.failed).toBe(5);
    expect(report.rows.map((row) => row.id)).toEqual(['f0', 'f1']);
  });
});

describe('report aggregation', () => {
  it('counts attempts, outcomes, phases, workers and time bins from the records', () => {
    const aggregator = createReportAggregator({ fromMs: t0, toMs: t0 + 10_000, bins: 10 });
    aggregator.add(record('a', 1, 'succeeded', 0, 4));
    aggregator.add(record('b', 1, 'failed', 1, 2, { worker: 'w2' }));
    aggregator.add(record('b', 2, 'succeeded', 3, 10, { worker: 'w2' }));
    aggregator.add({ ...record('p', 1, 'succeeded', 0, 1), phase: 'prep', phaseIndex: 1, bundle: 'b1' } as ResultRecord);
    aggregator.skip();
    const data = aggregator.finish();
    expect(data).toMatchObject({ attempts: 4, succeeded: 3, outcomes: { succeeded: 3, failed: 1 }, skippedLines: 1, firstStartMs: t0, lastFinishMs: t0 + 10_000 });
    expect(data.bins).toEqual({ fromMs: t0, binMs: 1000, count: 10, toMs: t0 + 10_000 });
    expect(data.running).toEqual([2, 2, 1, 2, 1, 1, 1, 1, 1, 1]);
    expect(data.finished).toEqual([0, 1, 1, 0, 1, 0, 0, 0, 0, 1]);
    expect(data.failed).toEqual([0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(data.liveWorkers).toEqual([1, 2, 1, 2, 1, 1, 1, 1, 1, 1]);
    expect(data.phases.map((p) => [p.index, p.name, p.attempts, p.outcomes])).toEqual([
      [1, 'prep', 1, { succeeded: 1 }],
      [2, 'sims', 3, { succeeded: 2, failed: 1 }],
    ]);
    const sims = data.phases[1]!;
    expect([sims.firstStartMs, sims.lastStartMs, sims.lastFinishMs]).toEqual([t0, t0 + 3000, t0 + 10_000]);
    expect(sims.durations).toMatchObject({ count: 3, minMs: 1000, maxMs: 7000 });
    expect(sims.slowest.map((s) => `${s.id}.${s.attempt}`)).toEqual(['b.2', 'a.1', 'b.1']);
    expect(data.workers).toEqual([
      { worker: 'w1', attempts: 2, succeeded: 2, failed: 0, busyMs: 5000 },
      { worker: 'w2', attempts: 2, succeeded: 1, failed: 1, busyMs: 8000 },
    ]);
    expect(data.failures).toMatchObject({ failed: 0, succeededAfterRetry: 1, failedAttempts: 1 });
    const w2 = data.timeline.rows.find((row) => row.worker === 'w2')!;
    expect(w2.samples.map(([column, sample]) => [column, sample.id, sample.attempt])).toEqual([[0, 'b', 1], [1, 'b', 2]]);
  });

  it('draws attempts still running as busy up to the end, and the last bin over its part before the end', () => {
    // 2.5 s in bins of 1 s: the last bin is half a bin; one attempt finished, two still running.
    const aggregator = createReportAggregator({ fromMs: t0, toMs: t0 + 2500, bins: 3, running: { worker: 'w1', sinceMs: [t0 + 500, t0 + 2000] } });
    aggregator.add(record('a', 1, 'succeeded', 0, 1));
    const data = aggregator.finish();
    expect(data.bins).toEqual({ fromMs: t0, binMs: 1000, count: 3, toMs: t0 + 2500 });
    expect(data.running).toEqual([1.5, 1, 2]);
    expect(data.liveWorkers).toEqual([1, 1, 1]);
    expect(data.workers).toEqual([{ worker: 'w1', attempts: 1, succeeded: 1, failed: 0, busyMs: 1000 }]);
  });

  it('keeps memory bounded: past maxWorkers, workers share a row', () => {
    const aggregator = createReportAggregator({ fromMs: t0, toMs: t0 + 1000, maxWorkers: 2, timelineRows: 10 });
    for (let i = 0; i < 5; i++) aggregator.add(record(`c${i}`, 1, 'succeeded', 0, 1, { worker: `w${i}` }));
    const data = aggregator.finish();
    expect(data.workers.map((w) => [w.worker, w.attempts])).toEqual([['(other workers)', 3], ['w0', 1], ['w1', 1]]);
  });
});

describe('report model and page', () => {
  const links = { reportDir: '.tasker/runs/r', toWorkdir: '../../..' };
  it('takes counts from the results and the state and exit code from the summary', () => {
    const aggregator = createReportAggregator({ fromMs: t0, toMs: t0 + 2000 });
    aggregator.add(record('a', 1, 'succeeded', 0, 1));
    aggregator.add(record('b', 1, 'failed', 0, 2));
    const data = aggregator.finish();
    const runFile = { runId: 'r', createdAt: new Date(t0).toISOString(), files: [{ path: 'jobs.sh' }], phases: [{ index: 2, name: 'sims', runsOn: 'workers', commandCount: 3 }] };
    const summary = { status: 'failed', exitCode: 1, mode: 'local', startedAt: '', finishedAt: '', durationMs: 2000, totals: { skipped: 1, alreadyDone: 0 }, phases: [{ index: 2, status: 'failed', total: 3, skipped: 1, alreadyDone: 0, durationMs: 2000 }] };
    const model = reportModel({ runId: 'r', workdir: '/w', record: runFile, summary: summary as never, data, live: undefined, resumeCommand: 'tasker run --resume r', nowMs: t0 + 5000, links });
    expect(model.run).toMatchObject({ state: 'failed', exitCode: 1, commands: 3, done: 1, failed: 1, skipped: 1, notRun: 1, wallMs: 2000, resumeCommand: 'tasker run --resume r' });
    // A local run's workers phase ran on local slots.
    expect(model.phases).toEqual([{ index: 2, name: 'sims', runsOn: 'local slots', commands: 3, status: 'failed', skipped: 1, alreadyDone: 0, durationMs: 2000 }]);
    const live = reportModel({ runId: 'r', workdir: '/w', record: runFile, summary: undefined, data, live: { runningNow: 1, runningLabel: 'running' }, resumeCommand: 'x', nowMs: t0 + 5000, links });
    expect(live.run).toMatchObject({ state: 'running', runningNow: 1, wallMs: 5000, resumeCommand: undefined });
  });

  it('says a phase as the summary does: workers in a distributed run, "not run" and "already done" for phases of the last session', () => {
    const data = createReportAggregator({ fromMs: t0, toMs: t0 + 2000 }).finish();
    const planned = (index: number): { index: number; name: string; runsOn: string; commandCount: number } => ({ index, name: `p${index}`, runsOn: 'workers', commandCount: 2 });
    const runFile = { runId: 'r', createdAt: new Date(t0).toISOString(), files: [], phases: [planned(1), planned(2), planned(3)], mode: 'rabbitmq' };
    const ended = (index: number, status: string, alreadyDone: number, skipped: number): object => ({ index, status, total: 2, succeeded: 0, alreadyDone, failed: 0, interrupted: 0, skipped, durationMs: 0 });
    const summary = { status: 'failed', exitCode: 1, mode: 'rabbitmq', totals: { skipped: 2, alreadyDone: 2 }, phases: [ended(1, 'failed', 0, 0), ended(2, 'succeeded', 2, 0), ended(3, 'skipped', 0, 2)] };
    const model = reportModel({ runId: 'r', workdir: '/w', record: runFile, summary: summary as never, data, live: undefined, resumeCommand: undefined, nowMs: t0, links });
    expect(model.phases.map((phase) => [phase.runsOn, phase.status])).toEqual([['workers', 'failed'], ['workers', 'already done'], ['workers', 'not run']]);
  });

  it('inlines everything; no command text can close the data script', () => {
    const html = renderReportPage('run <x>', { command: 'echo "</script><script>alert(1)</script>"' }, { chartScript: 'var a = "</script>";', chartStyles: '', script: '', styles: '' });
    expect(html).toContain('<title>run &#60;x&#62;</title>');
    expect(html).not.toContain('alert(1)</script>');
    expect(html.match(/<\/script>/g)).toHaveLength(3); // data, uPlot, the report's script
    expect(html).not.toMatch(/\b(src|href)=/);
  });
});
