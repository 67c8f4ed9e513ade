import { describe, expect, it } from 'vitest';
import { summarizeRun, totalsOf, type FailedCommand, type PhaseSummary, type RunSummary } from '../../tasker/report/summary.js';
import { formatSummary } from '../../tasker/report/summary-text.js';

function phase(overrides: Partial<PhaseSummary>): PhaseSummary {
  return { index: 1, name: 'p', runsOn: 'workers', status: 'succeeded', total: 0, succeeded: 0, alreadyDone: 0, failed: 0, interrupted: 0, skipped: 0, durationMs: 0, ...overrides };
}

function failure(overrides: Partial<FailedCommand>): FailedCommand {
  return { id: 'f1-L1', phase: 'p', command: 'false', file: 'jobs.sh', line: 1, outcome: 'failed', exitCode: 1, signal: null, attempts: 1, log: 'logs/x.log', ...overrides };
}

function summary(phases: PhaseSummary[], failed: FailedCommand[], overrides: Partial<RunSummary> = {}): RunSummary {
  return {
    runId: '20261121-103955-k3x9',
    status: failed.length > 0 ? 'failed' : 'succeeded',
    exitCode: failed.length > 0 ? 1 : 0,
    workdir: '/w',
    mode: 'rabbitmq',
    startedAt: '2026-11-21T10:39:55.000Z',
    finishedAt: '2026-11-21T10:44:00.000Z',
    durationMs: 245_000,
    totals: totalsOf(phases),
    phases,
    failed,
    ...overrides,
  };
}

describe('totalsOf', () => {
  it('adds up the phases', () => {
    const totals = totalsOf([
      phase({ total: 5, succeeded: 3, alreadyDone: 1, failed: 1, skipped: 0 }),
      phase({ total: 4, succeeded: 0, alreadyDone: 0, failed: 0, interrupted: 1, skipped: 3 }),
    ]);
    expect(totals).toEqual({ commands: 9, succeeded: 3, alreadyDone: 1, failed: 1, interrupted: 1, skipped: 3 });
  });
});

describe('formatSummary', () => {
  it('names the commands that started more than once, and counts the rest', () => {
    const ranAgain = { count: 12, commands: Array.from({ length: 12 }, (_, i) => ({ id: `f1-L${i + 1}`, phase: 'sims', starts: 2 })) };
    const text = formatSummary(summary([phase({ status: 'succeeded', total: 20, succeeded: 20 })], [], { ranAgain }));
    expect(text).toContain('Started more than once (a worker was lost, frozen or drained mid-run; each counted once): 12 commands: f1-L1 (2x), f1-L2 (2x)');
    expect(text).toContain('f1-L10 (2x), … 2 more in summary.json');
    expect(formatSummary(summary([phase({ status: 'succeeded', total: 1, succeeded: 1 })], []))).not.toContain('more than once');
  });

  it('reports a successful run with one row per phase', () => {
    const text = formatSummary(
      summary([
        phase({ index: 1, name: 'setup', runsOn: 'tasker', total: 3, succeeded: 3, durationMs: 850 }),
        phase({ index: 2, name: 'simulate', total: 10, succeeded: 8, alreadyDone: 2, durationMs: 12_300 }),
      ], []),
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe('Run 20261121-103955-k3x9 finished in 4m05s: all 13 commands succeeded; tasker exit code 0');
    expect(lines[1]).toMatch(/^\s+phase\s+runs on\s+status\s+done\s+already done\s+failed\s+not run\s+duration$/);
    expect(lines[2]).toMatch(/^\s+setup\s+tasker\s+succeeded\s+3\s+0\s+0\s+0\s+850ms$/);
    expect(lines[3]).toMatch(/^\s+simulate\s+workers\s+succeeded\s+8\s+2\s+0\s+0\s+12\.3s$/);
    expect(text).toContain('(already done: 2 commands succeeded in an earlier session of this run, kept)');
    expect(text).not.toContain('Failed commands');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('lists every failed command with exit code, log path and tail lines', () => {
    const failed = [
      failure({ id: 'f1-L4', phase: 'simulate', file: 'jobs.sh', line: 4, command: 'python sim.py --seed 1', exitCode: 2, reason: 'exit code 2', attempts: 3, log: '.tasker/runs/r/logs/02-simulate/f1-L4.3.log', tail: 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n\n' }),
      failure({ id: 'f1-L9', phase: 'simulate', line: 9, command: 'sleep 100', outcome: 'timed-out', exitCode: null, signal: 'SIGTERM', reason: 'timed out after 1m00s', log: 'l9' }),
      failure({ id: 'f1-L12', phase: 'aggregate', line: 12, command: 'nosuch', outcome: 'spawn-error', exitCode: null, signal: null, reason: 'spawn ENOENT', log: 'l12' }),
    ];
    const text = formatSummary(
      summary([phase({ name: 'simulate', status: 'failed', total: 5, succeeded: 3, failed: 2 }), phase({ index: 2, name: 'aggregate', status: 'failed', total: 1, failed: 1 })], failed),
      { logPath: (relative) => `/w/${relative}` },
    );
    expect(text.split('\n')[0]).toBe('Run 20261121-103955-k3x9 finished in 4m05s: 3 of 6 commands failed; tasker exit code 1');
    expect(text).toContain('Failed commands (3):');
    expect(text).toContain('  f1-L4  phase simulate, jobs.sh:4: exit 2, 3 attempts\n');
    expect(text).toContain('    command: python sim.py --seed 1\n');
    expect(text).toContain('    log:     /w/.tasker/runs/r/logs/02-simulate/f1-L4.3.log\n');
    expect(text).toContain('    | three\n    | four\n    | five\n    | six\n    | seven\n');
    expect(text).not.toContain('| two');
    expect(text).toContain('  f1-L9  phase simulate, jobs.sh:9: killed by SIGTERM (timed out after 1m00s), 1 attempt\n');
    expect(text).toContain('    log:     /w/l9\n');
    expect(text).toContain('  f1-L12  phase aggregate, jobs.sh:12: spawn-error (spawn ENOENT), 1 attempt\n');
  });

  it('shows as many tail lines as asked', () => {
    const text = formatSummary(summary([phase({ status: 'failed', total: 1, failed: 1 })], [failure({ tail: 'a\nb\nc\n' })]), { tailLines: 2 });
    expect(text).toContain('    | b\n    | c\n');
    expect(text).not.toContain('| a');
  });

  it('lists every failed command: the first maxFailures in full, the rest one line each', () => {
    const failed = Array.from({ length: 5 }, (_, i) => failure({ id: `f1-L${i + 1}`, line: i + 1 }));
    const text = formatSummary(summary([phase({ status: 'failed', total: 5, failed: 5 })], failed), { maxFailures: 2 });
    expect(text.match(/ {4}command: /g)).toHaveLength(2);
    expect(text).toContain('… 3 more, one line each:');
    for (const id of ['f1-L3', 'f1-L4', 'f1-L5']) expect(text).toMatch(new RegExp(`^  ${id}  exit \\d+  \\S+\\.log$`, 'm'));
  });

  it('shortens very long commands', () => {
    const text = formatSummary(summary([phase({ status: 'failed', total: 1, failed: 1 })], [failure({ command: `echo ${'x'.repeat(500)}` })]));
    const commandLine = text.split('\n').find((line) => line.startsWith('    command: '))!;
    expect(commandLine.endsWith('…')).toBe(true);
    expect(commandLine.length).toBeLessThan(230);
  });

  it('says when a run was interrupted', () => {
    const text = formatSummary(summary([phase({ status: 'interrupted', total: 4, succeeded: 1, skipped: 3 })], [], { status: 'interrupted', exitCode: 130 }));
    expect(text.split('\n')[0]).toBe('Run 20261121-103955-k3x9 interrupted after 4m05s: 3 not run; tasker exit code 130');
    expect(text).toMatch(/interrupted\s+1\s+0\s+3\s+0ms/);
  });

  it('says who cancelled a run, with the exit code of a cancel', () => {
    const phases = [phase({ name: 'sims', status: 'interrupted', total: 10, succeeded: 2, failed: 1, interrupted: 1, skipped: 6 })];
    const cancelled = { by: 'ops@host', reason: 'wrong input', at: '2026-11-21T10:00:00.000Z' };
    const built = summarizeRun({ runId: 'r', workdir: '/w', mode: 'rabbitmq', startedAtMs: 0, finishedAtMs: 5000, outcome: { phases, failed: [], interrupted: true, cancelled } });
    expect([built.status, built.exitCode, built.cancelled]).toEqual(['cancelled', 4, cancelled]);
    expect(formatSummary(built).split('\n')[0]).toBe('Run r cancelled by ops@host (wrong input) after 5.0s: 1 failed, 1 interrupted while running, 6 not run; tasker exit code 4');
  });

  it('counts commands stopped while running apart from those never started', () => {
    const text = formatSummary(
      summary([phase({ name: 'sims', status: 'interrupted', total: 36, succeeded: 2, interrupted: 2, skipped: 32 })], [], { status: 'interrupted', exitCode: 130 }),
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe('Run 20261121-103955-k3x9 interrupted after 4m05s: 2 interrupted while running, 32 not run; tasker exit code 130');
    expect(lines[1]).toMatch(/^\s+phase\s+runs on\s+status\s+done\s+failed\s+interrupted\s+not run\s+duration$/);
    expect(lines[2]).toMatch(/^\s+sims\s+workers\s+interrupted\s+2\s+0\s+2\s+32\s+0ms$/);
  });

  it('puts the exit code of a failed run apart as the tasker\'s, not after "1 command failed"', () => {
    const text = formatSummary(summary([phase({ status: 'failed', total: 2, succeeded: 1, failed: 1 })], [failure({})]));
    expect(text.split('\n')[0]).toBe('Run 20261121-103955-k3x9 finished in 4m05s: 1 of 2 commands failed; tasker exit code 1');
    expect(text).not.toMatch(/failed \(exit 1\)/);
  });

  it('says a local run\'s workers phases ran on local slots', () => {
    const phases = [phase({ name: 'setup', runsOn: 'tasker', total: 1, succeeded: 1 }), phase({ index: 2, name: 'sims', total: 4, succeeded: 4 })];
    const lines = formatSummary(summary(phases, [], { mode: 'local' })).split('\n');
    expect(lines[2]).toMatch(/^\s+setup\s+tasker\s+succeeded\s/);
    expect(lines[3]).toMatch(/^\s+sims\s+local slots\s+succeeded\s/);
    expect(formatSummary(summary(phases, [])).split('\n')[3]).toMatch(/^\s+sims\s+workers\s+succeeded\s/);
  });

  it('says "not run" for phases never started and "already done" for one done in an earlier session', () => {
    const phases = [
      phase({ name: 'one', status: 'failed', total: 2, succeeded: 1, failed: 1 }),
      phase({ index: 2, name: 'two', status: 'succeeded', total: 60, alreadyDone: 60 }),
      phase({ index: 3, name: 'three', status: 'skipped', total: 5, alreadyDone: 2, skipped: 3 }),
    ];
    const lines = formatSummary(summary(phases, [failure({})])).split('\n');
    expect(lines[1]).toMatch(/^\s+phase\s+runs on\s+status\s+done\s+already done\s+failed\s+not run\s+duration$/);
    expect(lines[3]).toMatch(/^\s+two\s+workers\s+already done\s+0\s+60\s+0\s+0\s/);
    expect(lines[4]).toMatch(/^\s+three\s+workers\s+not run\s+0\s+2\s+0\s+3\s/);
    expect(lines.join('\n')).not.toContain('skipped');
  });

  it('names the commands a retry rescued, in summary.json and the printed summary', () => {
    const succeededAfterRetry = { count: 12, commands: Array.from({ length: 12 }, (_, i) => ({ id: `f1-L${i + 1}`, phase: 'sims', attempts: 2 })) };
    const phases = [phase({ status: 'succeeded', total: 20, succeeded: 20 })];
    const built = summarizeRun({ runId: 'r', workdir: '/w', mode: 'local', startedAtMs: 0, finishedAtMs: 1, outcome: { phases, failed: [], interrupted: false, succeededAfterRetry } });
    expect(built.succeededAfterRetry).toEqual(succeededAfterRetry);
    const text = formatSummary(built);
    expect(text).toContain('Succeeded after a retry (--retries): 12 commands: f1-L1 (2 attempts), f1-L2 (2 attempts)');
    expect(text).toContain('f1-L10 (2 attempts), … 2 more in summary.json');
    const none = summarizeRun({ ...built, startedAtMs: 0, finishedAtMs: 1, outcome: { phases, failed: [], interrupted: false, succeededAfterRetry: { count: 0, commands: [] } } });
    expect(none.succeededAfterRetry).toBeUndefined();
    expect(formatSummary(none)).not.toContain('retry');
  });

  it('ends with where the results and logs are, for a successful run too', () => {
    const records = { results: '/w/.tasker/runs/r/results.jsonl', logs: '/w/.tasker/runs/r/logs' };
    const ok = formatSummary(summary([phase({ total: 1, succeeded: 1 })], []), { records });
    expect(ok.endsWith('Results: /w/.tasker/runs/r/results.jsonl\nLogs:    /w/.tasker/runs/r/logs\n')).toBe(true);
    const failed = formatSummary(summary([phase({ status: 'failed', total: 1, failed: 1 })], [failure({})]), { records });
    expect(failed).toContain('Results: /w/.tasker/runs/r/results.jsonl\n');
  });
});
