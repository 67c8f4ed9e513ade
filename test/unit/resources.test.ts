import { describe, expect, it } from 'vitest';
import { cgroupPaths, parseLimit, parseOomKills } from '../../shared/exec/cgroup-memory.js';
import { statFields } from '../../shared/exec/proc-memory.js';
import { cpuMsOf, parseReply } from '../../shared/exec/shell-runner-protocol.js';
import { placementOf } from '../../shared/state/placement.js';
import { poisonReason, toResultRecord, type ResultRecord } from '../../shared/state/results.js';
import { formatBytes, oomReason } from '../../shared/state/usage.js';
import { cpuQuantity, memoryQuantity, sizePool, sizingLines } from '../../tasker/report/pool-sizing.js';
import { createResourceTally, distributionOf, quantile } from '../../tasker/report/resource-stats.js';

const mib = 1024 ** 2;
const command = { id: 'f1-L1', phase: 'sims', phaseIndex: 1, command: 'sim', file: 'jobs.sh', line: 1 };

function record(overrides: Partial<ResultRecord>): ResultRecord {
  return { ...command, attempt: 1, outcome: 'succeeded', exitCode: 0, signal: null, startedAt: '', finishedAt: '', durationMs: 1000, worker: 'w', log: 'l', ...overrides };
}

describe('what the executor reads', () => {
  it('reads the CPU time on the runner\'s end line (the `time` keyword\'s user and system seconds)', () => {
    expect(cpuMsOf('1.234', '0.056')).toBe(1290);
    expect(cpuMsOf('120,500', '0,000')).toBe(120_500);
    expect(cpuMsOf(undefined, undefined)).toBeNull();
    expect(cpuMsOf('', '0.001')).toBeNull();
    expect(parseReply('E 7 0 1700000000.250000 1700000001.500000 1 0.120 0.030')).toEqual({ kind: 'ended', key: 7, status: 0, startedAtMs: 1700000000250, finishedAtMs: 1700000001500, logged: true, cpuMs: 150 });
    // bash 4 has no EPOCHREALTIME: the times are empty, the fields keep their places.
    expect(parseReply('E 7 137   0 0.000 0.001')).toEqual({ kind: 'ended', key: 7, status: 137, startedAtMs: undefined, finishedAtMs: undefined, logged: false, cpuMs: 1 });
  });

  it('reads /proc/PID/stat past a command name with spaces and parentheses', () => {
    const fields = statFields('123 (a (b) c) S 1 123 123 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 100 1000000 250 18446744073709551615')!;
    expect([fields[0], fields[2], fields[21]]).toEqual(['S', '123', '250']);
  });

  it('reads cgroup limits and OOM counts, v1 and v2', () => {
    expect(parseLimit('max\n')).toBeUndefined();
    expect(parseLimit('9223372036854771712\n')).toBeUndefined();
    expect(parseLimit('2147483648\n')).toBe(2 * 1024 ** 3);
    expect(parseOomKills('low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n')).toBe(1);
    expect(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n')).toBe(2);
    expect(cgroupPaths('12:pids:/x\n4:memory:/pod/abc\n0::/\n')).toEqual({ version: 1, path: '/pod/abc' });
    expect(cgroupPaths('0::/kubepods/pod1/c1\n')).toEqual({ version: 2, path: '/kubepods/pod1/c1' });
  });
});

describe('result records', () => {
  it('carry cpuMs and peakRssBytes, null when not measured, and where the attempt ran', () => {
    const placement = placementOf({ POD_NAME: 'w-1', NODE_NAME: 'n-2', TASKER_IMAGE: 'worker:0.1.0' }, { hostname: 'w-1', version: '0.1.0', slots: 4, pools: ['big'] });
    const base = { outcome: 'succeeded' as const, exitCode: 0, signal: null, startedAt: '', finishedAt: '', durationMs: 5, tail: '' };
    const measured = toResultRecord(command, 1, { ...base, usage: { cpuMs: 12, peakRssBytes: 3 * mib, memoryLimitBytes: 2 * 1024 ** 3 } }, 'w', 'l', placement);
    expect(measured).toMatchObject({ cpuMs: 12, peakRssBytes: 3 * mib, memoryLimitBytes: 2 * 1024 ** 3, host: 'w-1', pod: 'w-1', node: 'n-2', image: 'worker:0.1.0', workerVersion: '0.1.0', pool: 'big', slots: 4 });
    expect(toResultRecord(command, 1, base, 'w', 'l')).toMatchObject({ cpuMs: null, peakRssBytes: null });
    expect(placementOf({}, { hostname: 'laptop', version: '1', slots: 2 })).toEqual({ host: 'laptop', workerVersion: '1', slots: 2 });
  });

  it('name an OOM kill and a poison command with its last sample', () => {
    expect(formatBytes(1.9 * 1024 ** 3)).toBe('1.9 GiB');
    expect(formatBytes(200 * mib)).toBe('200 MiB');
    expect(oomReason('cgroup', 190 * mib, 200 * mib)).toBe("killed by the kernel's OOM killer (its cgroup counted an oom_kill): last seen using 190 MiB; the memory limit is 200 MiB");
    const usage = { attempt: 1, rssBytes: 1.9 * 1024 ** 3, limitBytes: 2 * 1024 ** 3, worker: 'w', pod: true, at: '' };
    expect(poisonReason({ n: 3, workers: ['a', 'b', 'a'] }, usage)).toBe(
      "started 3 time(s) without a result on workers a, b; the command may be killing its worker (out of memory: last seen using 1.9 GiB; the pod's memory limit is 2 GiB): dead-lettered, not run again",
    );
    expect(poisonReason({ n: 3, workers: [] })).toContain('(out of memory?)');
  });
});

describe('distributions and the pool size', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([quantile(values, 0.5), quantile(values, 0.9), quantile(values, 0.99)]).toEqual([50, 90, 99]);
    expect(distributionOf([3, 1, 2])).toEqual({ p50: 2, p90: 3, p99: 3, max: 3, n: 3 });
    expect(distributionOf([])).toBeUndefined();
  });

  it('suggests requests and limits for a phase of known commands', () => {
    const tally = createResourceTally();
    // 200 commands on workers running 4 at once: 1 s of wall, half a core each, 100 to 299 MiB.
    for (let i = 0; i < 200; i++) tally.add(record({ id: `f1-L${i}`, cpuMs: 500, durationMs: 1000, peakRssBytes: (100 + i) * mib, slots: 4 }));
    tally.add(record({ id: 'short', cpuMs: 1, durationMs: 2, peakRssBytes: null, slots: 4 }));
    tally.add(record({ id: 'oom', outcome: 'failed', signal: 'SIGKILL', exitCode: null, oomKilled: true, peakRssBytes: 900 * mib, cpuMs: 100, durationMs: 800, slots: 4 }));
    const [phase] = tally.phases();
    expect(phase).toMatchObject({ attempts: 202, oomKilled: 1, slots: 4 });
    expect(phase!.peakRssBytes).toMatchObject({ n: 201, max: 900 * mib });
    expect(phase!.topMemory[0]).toMatchObject({ id: 'oom', value: 900 * mib });
    const sizing = sizePool(phase!, 'big')!;
    // p90 of memory: 280 MiB (×1.25 ×4 + 256 MiB = 1656 → 1664Mi); p99: 298 MiB (→ 1746 → 1792Mi).
    expect(sizing.requests).toEqual({ memory: '1664Mi', cpu: '"2"' });
    expect(sizing.limits.memory).toBe('1792Mi');
    expect(sizing.basedOn).toEqual({ memory: 201, cpu: 201 });
    expect(sizing.yaml).toContain('resources:\n  requests:\n    cpu: "2"\n    memory: 1664Mi\n  limits:');
    expect(sizingLines([sizing])[1]).toContain('Pool sizes to request');
  });

  it('rounds quantities the way a manifest reads them', () => {
    expect(memoryQuantity(1.5 * 1024 ** 3)).toBe('1536Mi');
    expect(memoryQuantity(2 * 1024 ** 3)).toBe('2Gi');
    expect(cpuQuantity(0.01)).toBe('100m');
    expect(cpuQuantity(3.85)).toBe('3900m');
  });
});
