import { describe, expect, it } from 'vitest';
import type { ResultRecord } from '../../shared/state/results.js';
import { createResultTallier, formatLocalStatus, formatRunsTable, runState, type RunOverview } from '../../tasker/report/run-overview.js';

function record(id: string, attempt: number, outcome: ResultRecord['outcome'], finishedAt = '2026-11-21T10:00:00.000Z'): ResultRecord {
  return { id, phase: 'sims', phaseIndex: 1, command: `run ${id}`, file: 'jobs.sh', line: 1, attempt, outcome, exitCode: null, signal: null, startedAt: finishedAt, finishedAt, durationMs: 0, worker: 'w1', log: `logs/${id}.${attempt}.log`, reason: outcome === 'dead-lettered' ? 'started 10 time(s) without a result' : undefined };
}

describe('createResultTallier', () => {
  it('counts each command once, by its latest attempt; a success is never undone', () => {
    const tallier = createResultTallier();
    for (const r of [record('a', 1, 'failed'), record('a', 2, 'succeeded'), record('b', 1, 'failed'), record('c', 1, 'interrupted'), record('d', 2, 'dead-lettered'), record('e', 1, 'succeeded'), record('e', 2, 'failed', '2026-11-21T11:00:00.000Z')]) tallier.add(r);
    const tally = tallier.tally();
    expect({ ...tally, deadLettered: tally.deadLettered.map((r) => r.id) }).toEqual({
      succeeded: 2,
      failed: 1,
      interrupted: 1,
      deadLettered: ['d'],
      attempts: 7,
      lastFinishedAt: '2026-11-21T11:00:00.000Z',
    });
  });

  it('a later successful attempt clears a dead letter', () => {
    const tallier = createResultTallier();
    tallier.add(record('d', 1, 'dead-lettered'));
    tallier.add(record('d', 2, 'succeeded'));
    expect(tallier.tally()).toMatchObject({ succeeded: 1, deadLettered: [] });
  });
});

describe('runState', () => {
  it('takes the summary, unless a result came after it (a later session that was killed)', () => {
    expect(runState(undefined, undefined)).toBe('unfinished');
    expect(runState({ status: 'failed', finishedAt: '2026-11-21T10:00:05Z' }, '2026-11-21T10:00:04Z')).toBe('failed');
    expect(runState({ status: 'failed', finishedAt: '2026-11-21T10:00:05Z' }, '2026-11-21T10:00:06Z')).toBe('unfinished');
    expect(runState({ status: 'cancelled', finishedAt: '2026-11-21T10:00:05Z' }, '2026-11-21T10:00:04Z')).toBe('cancelled');
  });
});

describe('formatting', () => {
  const tally = createResultTallier();
  tally.add(record('f1-L2', 1, 'succeeded'));
  tally.add(record('f1-L3', 10, 'dead-lettered'));
  const run: RunOverview = { runId: 'sims', createdAt: '2026-11-21T09:00:00.000Z', files: ['jobs.sh'], commands: 4, state: 'failed', finishedAt: '2026-11-21T10:00:00.000Z', exitCode: 1, results: tally.tally() };

  it('lists runs with their counts; not run is what has no result', () => {
    const text = formatRunsTable('/w', [run]);
    expect(text).toContain('Runs in /w, newest first:');
    expect(text).toMatch(/ {2}sims +failed +4 +1 +1 +0 +2 +2026-11-21T09:00:00\.000Z/);
    expect(formatRunsTable('/w', [])).toBe('No runs in /w (nothing under .tasker/runs/).\n');
  });

  it('counts interrupted commands apart: not failed, and not among those never started (not run)', () => {
    const stopped = createResultTallier();
    for (const r of [record('a', 1, 'succeeded'), record('b', 1, 'interrupted'), record('c', 1, 'failed')]) stopped.add(r);
    const text = formatRunsTable('/w', [{ ...run, runId: 'stop', state: 'cancelled', commands: 10, results: stopped.tally() }]);
    expect(text).toMatch(/done +failed +interrupted +not run/);
    expect(text).toMatch(/ {2}stop +cancelled +10 +1 +1 +1 +7 +2026/);
  });

  it('lists the dead-lettered commands of a run with their reason and log', () => {
    const text = formatLocalStatus(run, Date.parse('2026-11-21T10:01:00.000Z'));
    expect(text).toContain('Run sims: failed (exit 1); created 2026-11-21T09:00:00.000Z; last result 1m00s ago');
    expect(text).toContain('4 commands: 1 done, 0 failed, 0 interrupted, 1 dead-lettered, 2 not run (2 attempts)');
    expect(text).toContain('Dead-lettered (1):');
    expect(text).toContain('  f1-L3  phase sims, jobs.sh:1: started 10 time(s) without a result');
    expect(text).toContain('    log:     logs/f1-L3.10.log');
  });
});
