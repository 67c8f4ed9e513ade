import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser, screenshot, type Browser } from '../helpers/browser.js';
import { readResults, readSummary, runTasker, taskerBin, tempDir } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace } from '../helpers/distributed.js';

/**
 * What each attempt used, measured by the built programs: commands of known CPU time and memory,
 * run by the tasker's own slots and by a worker, within 20% in results.jsonl; an OOM kill under a
 * memory cgroup named as one; the pool sizes in the summary. Perl holds the memory: a string made
 * from an argument (not a constant, which perl would copy) is one allocation of that size.
 */

const mib = 1024 ** 2;
/** A busy loop until the process's own CPU time (user + system) reaches `seconds`. */
const busy = (seconds: number): string => `perl -e 'my $i; while (1) { for (1..100000) { $i++ } my ($u, $s) = times; last if $u + $s >= ${seconds} }'`;
/** Holds `bytes` resident for `seconds`. */
const hold = (bytes: number, seconds: number): string => `perl -e 'my $x = "x" x $ARGV[0]; sleep ${seconds}' ${bytes}`;

/** line → [what, expected cpuMs or undefined, expected peakRssBytes or undefined] */
const known: [string, number | undefined, number | undefined][] = [
  [busy(1), 1000, undefined],
  [hold(200 * mib, 2), undefined, 200 * mib],
  // Two children of a shell, 100 MiB each, at the same time: the group's sum.
  [`bash -c 'for i in 1 2; do perl -e "my \\$x = q(x) x \\$ARGV[0]; sleep 2" ${100 * mib} & done; wait'`, undefined, 200 * mib],
  // Two children of 0.5 s of CPU each: the shell waited for both.
  [`bash -c 'for i in 1 2; do perl -e "my \\$i; while (1) { for (1..100000) { \\$i++ } my (\\$u, \\$s) = times; last if \\$u + \\$s >= 0.5 }" & done; wait'`, 1000, undefined],
];

function expectWithin(actual: number | null | undefined, expected: number, what: string): void {
  expect(actual, what).not.toBeNull();
  expect(Math.abs(actual! - expected) / expected, `${what}: ${actual} against ${expected}`).toBeLessThanOrEqual(0.2);
}

function checkKnown(records: ReturnType<typeof readResults>): void {
  expect(records).toHaveLength(known.length);
  for (const [index, [command, cpuMs, rss]] of known.entries()) {
    const record = records.find((entry) => entry.id === `f1-L${index + 1}`)! as unknown as Record<string, number | null | string>;
    expect(record['outcome'], command).toBe('succeeded');
    if (cpuMs !== undefined) expectWithin(record['cpuMs'] as number | null, cpuMs, `cpuMs of line ${index + 1}`);
    if (rss !== undefined) expectWithin(record['peakRssBytes'] as number | null, rss, `peakRssBytes of line ${index + 1}`);
  }
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** The report's CPU and memory section, in Chromium, for the run of the known commands. */
async function expectResourceSections(reportPath: string): Promise<void> {
  const opened = await browser.open(reportPath);
  expect(opened.problems).toEqual([]);
  const quantiles = await opened.page.locator('[data-testid="resource-quantiles"] tbody tr').allTextContents();
  expect(quantiles).toHaveLength(3);
  // The two commands that held 200 MiB, and any other that ran past its first sample (the busy loops, on a loaded machine).
  expect(quantiles[1]).toMatch(/^peak memory.*MiB/);
  expect(await opened.page.locator('[data-testid="top-memory"] tbody tr').count()).toBeGreaterThanOrEqual(2);
  expect(await opened.page.textContent('[data-testid="top-memory"] tbody tr:first-child')).toMatch(/^f1-L[23]\.1/);
  // Each attempt's log, as a link relative to the report (in the run directory).
  expect(await opened.page.locator('[data-testid="top-cpu"] a.log').first().getAttribute('href')).toMatch(/^logs\/\d{2}-[^/]+\/f1-L\d+\.1\.log$/);
  expect(await opened.page.textContent('[data-testid="sizing"]')).toMatch(/resources:\n {2}requests:\n {4}cpu: .*\n {4}memory: \d+(Mi|Gi)/);
  console.log(`resources section: screenshot ${await screenshot(opened.page, 'resources')}`);
  await opened.page.close();
}

describe('resources measured locally', () => {
  const dirs: (() => void)[] = [];
  afterEach(() => dirs.splice(0).forEach((cleanup) => cleanup()));

  it('measures CPU and peak memory within 20%, and prints the pool sizes', async () => {
    const dir = tempDir('tasker-res-');
    dirs.push(dir.cleanup);
    writeFileSync(join(dir.path, 'jobs.sh'), `${[...known.map(([command]) => command), 'true'].join('\n')}\n`);
    const result = await runTasker(['run', '--run-id', 'known', '-j', '2', 'jobs.sh'], { cwd: dir.path });
    expect(result.exitCode, result.stderr).toBe(0);
    const records = readResults(dir.path, 'known');
    checkKnown(records.filter((record) => record.command !== 'true'));
    const short = records.find((record) => record.command === 'true') as unknown as Record<string, unknown>;
    expect(short['peakRssBytes']).toBeNull(); // ended before the first sample: nothing read from /proc
    expect(typeof short['cpuMs']).toBe('number');
    expect(short['slots']).toBe(2);
    expect(typeof short['host']).toBe('string');
    expect(result.stdout).toContain('Pool sizes to request');
    expect(result.stdout).toMatch(/resources:\n\s+requests:\n\s+cpu: \d+m?\n\s+memory: \d+(Mi|Gi)/);
    await expectResourceSections(join(dir.path, '.tasker', 'runs', 'known', 'report.html'));
    const summary = readSummary(dir.path, 'known') as unknown as { phases: { resources: { peakRssBytes: { max: number; n: number } } }[]; sizing: { basedOn: { memory: number } }[] };
    expect(summary.phases[0]!.resources.peakRssBytes.n).toBeGreaterThanOrEqual(2);
    expect(summary.phases[0]!.resources.peakRssBytes.max).toBeGreaterThan(180 * mib);
    expect(summary.sizing[0]!.basedOn.memory).toBe(summary.phases[0]!.resources.peakRssBytes.n);
  });

  /** A memory cgroup this test may make (root, cgroup v1 memory or v2 with the memory controller); undefined: none. */
  function makeMemoryCgroup(limitBytes: number): string | undefined {
    for (const [parent, limitFile] of [['/sys/fs/cgroup/memory', 'memory.limit_in_bytes'], ['/sys/fs/cgroup', 'memory.max']] as const) {
      if (!existsSync(join(parent, limitFile === 'memory.max' ? 'cgroup.subtree_control' : limitFile))) continue;
      const path = join(parent, `tasker-test-oom-${process.pid}`);
      try {
        mkdirSync(path);
        writeFileSync(join(path, limitFile), String(limitBytes));
        if (existsSync(join(path, 'memory.swappiness'))) writeFileSync(join(path, 'memory.swappiness'), '0');
        return path;
      } catch {
        if (existsSync(path)) rmdirSync(path);
      }
    }
    return undefined;
  }

  it('names a command the OOM killer ended, with its last memory and the limit', async (context) => {
    const cgroup = makeMemoryCgroup(200 * mib);
    if (cgroup === undefined) return context.skip(); // no writable memory cgroup here: the images suite covers it in a container
    const dir = tempDir('tasker-res-oom-');
    dirs.push(dir.cleanup);
    try {
      // Grows by 16 MiB every 0.1 s: sampled before it reaches the 200 MiB limit.
      const grow = `perl -e 'my @a; while (1) { push @a, "x" x $ARGV[0]; select undef, undef, undef, 0.1 }' ${16 * mib}`;
      writeFileSync(join(dir.path, 'jobs.sh'), `${grow}\n`);
      const run = `echo $$ > ${join(cgroup, 'cgroup.procs')} && exec ${process.execPath} ${taskerBin} run --run-id oom jobs.sh`;
      const result = await import('execa').then(({ execa }) => execa('bash', ['-c', run], { cwd: dir.path, reject: false, env: { LOG_LEVEL: 'warn' } }));
      expect(result.exitCode, String(result.stderr)).toBe(1);
      const record = readResults(dir.path, 'oom')[0] as unknown as Record<string, unknown>;
      expect(record['oomKilled']).toBe(true);
      expect(record['memoryLimitBytes']).toBe(200 * mib);
      expect(record['peakRssBytes']).toBeGreaterThan(50 * mib);
      expect(String(record['reason'])).toMatch(/^killed by the kernel's OOM killer \(its cgroup counted an oom_kill\): last seen using \d+(\.\d+)? MiB; the memory limit is 200 MiB$/);
      expect(String(result.stdout)).toContain("killed by the kernel's OOM killer");
      const opened = await browser.open(join(dir.path, '.tasker', 'runs', 'oom', 'report.html'));
      expect(opened.problems).toEqual([]);
      expect(await opened.page.textContent('[data-testid="oom-kills"]')).toBe("1 attempt(s) killed by the kernel's OOM killer; memory limit 200 MiB");
      expect(await opened.page.textContent('[data-testid="oom-killed"]')).toContain('f1-L1.1');
      await opened.page.close();
    } finally {
      rmdirSync(cgroup);
    }
  });
});

describe('resources measured on a worker', () => {
  const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
  const ctx = useTestNamespace(services, 'tasker-res-dist-');

  it('records CPU, memory and where it ran within 20%', async () => {
    const started = await readyWorker({ ...ctx.env, POD_NAME: 'pod-1', NODE_NAME: 'node-a', TASKER_IMAGE: 'worker:test' }, ['--workdir', ctx.dir, '--concurrency', '2']);
    ctx.procs.push(started.proc);
    writeFileSync(join(ctx.dir, 'jobs.sh'), `${known.map(([command]) => command).join('\n')}\n`);
    ctx.runIds.push('dist');
    const tasker = spawnTasker(ctx.env, ['run', '--run-id', 'dist', '--workdir', ctx.dir, join(ctx.dir, 'jobs.sh')]);
    ctx.procs.push(tasker);
    const result = await tasker;
    expect(result.exitCode, result.all).toBe(0);
    const records = readResults(ctx.dir, 'dist');
    checkKnown(records);
    const first = records[0] as unknown as Record<string, unknown>;
    expect([first['pod'], first['node'], first['image'], first['pool'], first['slots']]).toEqual(['pod-1', 'node-a', 'worker:test', 'default', 2]);
    expect(readFileSync(join(ctx.dir, '.tasker', 'runs', 'dist', 'summary.json'), 'utf8')).toContain('"sizing"');
  });
});
