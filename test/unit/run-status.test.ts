import { describe, expect, it } from 'vitest';
import type { RunMeta, WorkerInfo } from '../../shared/state/run-store.js';
import { formatStatus, type StatusReport } from '../../tasker/report/run-status.js';

/** What `tasker status` prints, from a report collected in Redis and RabbitMQ. */

const now = Date.parse('2026-11-29T20:00:00.000Z');

function meta(fields: Partial<RunMeta>): RunMeta {
  return {
    runId: 'r1',
    state: 'running',
    startedAt: '2026-11-29T19:50:00.000Z',
    heartbeatAt: '2026-11-29T19:59:59.000Z',
    host: 'laptop-42',
    workdir: '/data/w',
    phase: 'sims',
    phaseIndex: 1,
    phaseCount: 2,
    total: 10,
    done: 4,
    failed: 0,
    ...fields,
  };
}

function worker(id: string, running: WorkerInfo['running']): WorkerInfo {
  return { id, host: 'h', pid: 1, concurrency: 2, startedAt: '2026-11-29T19:00:00.000Z', running };
}

function report(run: RunMeta, workers: WorkerInfo[] = [], namespace = 'tasker'): StatusReport {
  return { namespace, run, runId: run.runId, queue: undefined, runQueue: undefined, deadLetters: undefined, running: [], workers, pools: [], runs: [] };
}

describe('tasker status', () => {
  it('shows a run whose tasker was interrupted as interrupted, with when it ended and how to resume it', () => {
    const text = formatStatus(report(meta({ state: 'interrupted', status: 'interrupted', heartbeatAt: '2026-11-29T19:59:50.000Z' })), now);
    expect(text).toContain('Run r1: interrupted; started 2026-11-29T19:50:00.000Z; tasker laptop-42, ended 10.0s ago\n');
    expect(text).toContain('tasker run --resume r1 --workdir /data/w');
    expect(text).not.toMatch(/\bRun r1: running/);
  });

  it('names the namespace in the resume hint when it is not the default one', () => {
    const interrupted = meta({ state: 'interrupted', status: 'interrupted' });
    expect(formatStatus(report(interrupted, [], 'sims-ns'), now)).toContain('tasker run --resume r1 --workdir /data/w --namespace sims-ns\n');
    expect(formatStatus(report(interrupted), now)).not.toContain('--namespace');
  });

  it('counts commands beside commands; queue depths, in messages, go to their own lines', () => {
    const text = formatStatus({ ...report(meta({ total: 304, done: 107 })), queue: { name: 'tasker.commands', ready: 19, consumers: 2 }, runQueue: { name: 'tasker.run.r1.done', ready: 1 }, deadLetters: 3 }, now);
    const counts = text.split('\n').find((line) => line.includes('107/304 done'))!;
    expect(counts).toBe('  commands: 107/304 done, 0 failed, 0 running, 197 waiting; now in phase 1/2 sims');
    expect(text).not.toMatch(/\b19 (waiting|messages)\b/);
    expect(text).toContain('\nQueues (in messages: a bundle message carries several commands):\n  work queue tasker.commands: 19 ready (of every run of the pool), 2 consumers\n');
    expect(text).toContain('  result queue tasker.run.r1.done: 1 not yet read\n');
    expect(text).toContain('  dead letters: 3 (of every run;');
  });

  it('never shows a heartbeat of 1970 as hours ago', () => {
    const text = formatStatus(report(meta({ heartbeatAt: new Date(0).toISOString() })), now);
    expect(text).not.toMatch(/\d{4,}h\d\dm/);
    expect(text).toContain('no heartbeat recorded');
  });

  it('lists as running exactly what the workers say they run, the same in both sections', () => {
    const since = '2026-11-29T19:59:30.000Z';
    const workers = [
      worker('w-a', [{ runId: 'r1', id: 'f1-L3', attempt: 1, since, command: 'sim 3' }]),
      worker('w-b', [
        { runId: 'other', id: 'f1-L1', attempt: 1, since, command: 'x' },
        { runId: 'r1', id: 'f1-L4', attempt: 2, since, command: 'sim 4' },
      ]),
    ];
    // Whatever else may claim to run (report.running is empty here), the printout reads the workers.
    const text = formatStatus(report(meta({}), workers), now);
    expect(text).toContain('4/10 done, 0 failed, 2 running');
    expect(text).toContain('Running (2):');
    expect(text).toMatch(/f1-L3 +on w-a, attempt 1, for 30.0s: sim 3/);
    expect(text).toMatch(/f1-L4 +on w-b, attempt 2, for 30.0s: sim 4/);
    expect(text).not.toMatch(/f1-L1 +on/);
    expect(text).toContain('busy with r1/f1-L3');
  });

  it('shows nothing running for a finished run, though the heartbeat of a killed worker still lists its command', () => {
    const workers = [worker('w-dead', [{ runId: 'r1', id: 'f1-L3', attempt: 1, since: '2026-11-29T19:59:30.000Z', command: 'sim 3' }])];
    const text = formatStatus(report(meta({ state: 'finished', status: 'succeeded' }), workers), now);
    expect(text).toContain('0 running');
    expect(text).not.toContain('Running (');
  });
});
