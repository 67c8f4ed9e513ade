import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents, readResults, readSummary, runTasker, startTasker, useWorkspaces } from '../helpers/cli.js';

/**
 * End-to-end: the built `tasker` runs as a process on real jobs files in a temp workdir.
 * Commands record "start/end ID NANOS" lines, so ordering is checked from what really ran.
 */

const workspace = useWorkspaces();

describe('tasker run (local)', () => {
  it('runs phases as barriers: no command of phase k+1 starts before every command of phase k ended', async () => {
    const ws = workspace();
    const lines = ['# phase: setup (tasker)', 'bash ev.sh 0.05', 'bash ev.sh 0.05', '# phase: sims'];
    for (let i = 0; i < 8; i++) lines.push(`bash ev.sh 0.${(i % 3) + 1}`);
    lines.push('# phase: report', 'bash ev.sh 0.05', 'bash ev.sh 0.05');
    const jobs = ws.jobs('jobs.sh', `${lines.join('\n')}\n`);

    const result = await runTasker(['run', '-j', '4', '--run-id', 'order', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stderr).toBe(0);

    const events = readEvents(ws.events);
    const phaseOf = (id: string): number => {
      const line = Number(id.split('-L')[1]);
      return line <= 3 ? 1 : line <= 12 ? 2 : 3;
    };
    expect(events.filter((e) => e.event === 'end')).toHaveLength(12);
    for (const phase of [1, 2]) {
      const lastEnd = events.filter((e) => e.event === 'end' && phaseOf(e.id) === phase).reduce((max, e) => (e.at > max ? e.at : max), 0n);
      const firstStart = events.filter((e) => e.event === 'start' && phaseOf(e.id) === phase + 1).reduce((min, e) => (e.at < min ? e.at : min), BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n);
      expect(firstStart > lastEnd, `phase ${phase + 1} started before phase ${phase} ended`).toBe(true);
    }
    // The tasker phase runs one command at a time, in file order.
    const setup = events.filter((e) => phaseOf(e.id) === 1).map((e) => `${e.event} ${e.id}`);
    expect(setup).toEqual(['start f1-L2', 'end f1-L2', 'start f1-L3', 'end f1-L3']);
    // The parallel phase really ran in parallel (more than one command at once).
    const sims = events.filter((e) => phaseOf(e.id) === 2).sort((a, b) => (a.at < b.at ? -1 : 1));
    let running = 0;
    let peak = 0;
    for (const e of sims) {
      running += e.event === 'start' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);

    const summary = readSummary(ws.dir, 'order');
    expect(summary.status).toBe('succeeded');
    expect(summary.phases.map((p) => [p.name, p.status, p.succeeded])).toEqual([
      ['setup', 'succeeded', 2],
      ['sims', 'succeeded', 8],
      ['report', 'succeeded', 2],
    ]);
  });

  it('gives commands the workdir as cwd, the run variables, and one log per attempt', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'echo "$TASKER_RUN_ID $TASKER_PHASE $TASKER_COMMAND_ID $(pwd)"; echo to-stderr >&2\n');
    const result = await runTasker(['run', '--run-id', 'envcheck', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stderr).toBe(0);
    const [record] = readResults(ws.dir, 'envcheck');
    expect(record).toMatchObject({ id: 'f1-L1', phase: 'jobs.sh', attempt: 1, outcome: 'succeeded', exitCode: 0, signal: null });
    expect(record!.worker).toMatch(/^tasker@/);
    expect(readFileSync(join(ws.dir, record!.log), 'utf8')).toBe(`envcheck jobs.sh f1-L1 ${ws.dir}\nto-stderr\n`);
    for (const file of ['plan.json', 'run.json', 'summary.json', 'results.jsonl']) {
      expect(existsSync(join(ws.dir, '.tasker', 'runs', 'envcheck', file)), file).toBe(true);
    }
  });

  it('exits 1 and reports each failed command with exit code, log path and output tail; later phases do not start', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', ['# phase: work', 'bash ev.sh 0 0', 'bash ev.sh 0 7', '# phase: after', 'bash ev.sh 0 0', ''].join('\n'));
    const result = await runTasker(['run', '--run-id', 'fails', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('f1-L3');
    expect(result.stdout).toContain('exit 7');
    expect(result.stdout).toContain(join(ws.dir, '.tasker/runs/fails/logs/01-work/f1-L3.1.log'));
    expect(result.stdout).toContain('| output of f1-L3');
    const summary = readSummary(ws.dir, 'fails');
    expect(summary.phases.map((p) => p.status)).toEqual(['failed', 'skipped']);
    expect(summary.failed).toEqual([expect.objectContaining({ id: 'f1-L3', exitCode: 7 })]);
    // The "after" phase never ran.
    expect(readEvents(ws.events).some((e) => e.id === 'f1-L5')).toBe(false);
  });

  it('--keep-going starts later phases after failures, and still exits 1', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', ['# phase: work', 'bash ev.sh 0 3', '# phase: after', 'bash ev.sh 0 0', ''].join('\n'));
    const result = await runTasker(['run', '--keep-going', '--run-id', 'kg', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(1);
    expect(readEvents(ws.events).some((e) => e.event === 'end' && e.id === 'f1-L4')).toBe(true);
    expect(readSummary(ws.dir, 'kg').phases.map((p) => p.status)).toEqual(['failed', 'succeeded']);
  });

  it('--retries runs a failed command again, with new attempt numbers and logs', async () => {
    const ws = workspace();
    // Fails twice, then succeeds: the counter lives in the workdir.
    const jobs = ws.jobs('jobs.sh', 'n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 2 ]\n');
    const result = await runTasker(['run', '--retries', '2', '--retry-delay', '10ms', '--run-id', 'retry', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stdout).toBe(0);
    const records = readResults(ws.dir, 'retry');
    expect(records.map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'succeeded'],
    ]);
    expect(new Set(records.map((r) => r.log)).size).toBe(3);
  });

  it('gives up after the retries and exits 1', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'exit 4\n');
    const result = await runTasker(['run', '--retries', '1', '--retry-delay', '10ms', '--run-id', 'noretry', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(1);
    expect(readResults(ws.dir, 'noretry').map((r) => r.outcome)).toEqual(['failed', 'failed']);
    expect(result.stdout).toContain('2 attempts');
  });

  it('--timeout kills the whole process group and records the command as timed out', async () => {
    const ws = workspace();
    const marker = `tasker-timeout-${process.pid}-${Date.now()}`;
    const jobs = ws.jobs('jobs.sh', `bash -c 'sleep 30 & sleep 31; : ${marker}'; echo never\n`);
    const started = Date.now();
    const result = await runTasker(['run', '--timeout', '500ms', '--kill-grace', '300ms', '--run-id', 'to', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    const [record] = readResults(ws.dir, 'to');
    expect(record).toMatchObject({ outcome: 'timed-out', exitCode: null });
    expect(record!.signal).toMatch(/SIGTERM|SIGKILL/);
    // Nothing of the command's group survives: the background sleep is gone too.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const survivors = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
        } catch {
          return false; // the process ended while we looked
        }
      });
    expect(survivors).toEqual([]);
    expect(result.stdout).toContain('timed out');
  });

  it('on SIGINT kills running commands, records them, and exits 130; --resume then finishes without repeating work', async () => {
    const ws = workspace();
    const lines = ['# phase: quick', 'bash ev.sh 0', 'bash ev.sh 0', '# phase: slow', 'bash ev.sh 30', 'bash ev.sh 30', ''];
    const jobs = ws.jobs('jobs.sh', lines.join('\n'));
    const child = startTasker(['run', '-j', '2', '--run-id', 'intr', '--workdir', ws.dir, '--kill-grace', '1s', jobs]);
    // Wait until both slow commands started.
    for (let i = 0; i < 200; i++) {
      if (existsSync(ws.events) && readEvents(ws.events).filter((e) => e.event === 'start').length >= 4) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(130);
    const records = readResults(ws.dir, 'intr');
    expect(records.filter((r) => r.outcome === 'interrupted').map((r) => r.id).sort()).toEqual(['f1-L5', 'f1-L6']);
    expect(readSummary(ws.dir, 'intr').status).toBe('interrupted');

    // Resume: the quick phase is not run again; the slow commands are (made quick by editing nothing:
    // the copy of the jobs file is used, so we just wait for them).
    writeFileSync(ws.events, '');
    const resumed = await runTasker(['run', '--resume', 'intr', '--workdir', ws.dir, '--timeout', '100ms', '--kill-grace', '100ms']);
    expect(resumed.exitCode).toBe(1); // the 30 s commands now time out: failures, not a hang
    const ran = readEvents(ws.events).filter((e) => e.event === 'start').map((e) => e.id);
    expect(ran.sort()).toEqual(['f1-L5', 'f1-L6']);
    const attempts = readResults(ws.dir, 'intr').filter((r) => r.id === 'f1-L5').map((r) => r.attempt);
    expect(attempts).toEqual([1, 2]);
  });

  it('on SIGINT, commands that had not started are neither started nor recorded', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', ['bash ev.sh 30', 'bash ev.sh 30', 'bash ev.sh 30', 'bash ev.sh 30', ''].join('\n'));
    const child = startTasker(['run', '-j', '1', '--run-id', 'intr1', '--workdir', ws.dir, '--kill-grace', '1s', jobs]);
    for (let i = 0; i < 200 && !(existsSync(ws.events) && readEvents(ws.events).some((e) => e.event === 'start')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(130);
    expect(readEvents(ws.events).filter((e) => e.event === 'start').map((e) => e.id)).toEqual(['f1-L1']);
    expect(readResults(ws.dir, 'intr1').map((r) => [r.id, r.outcome])).toEqual([['f1-L1', 'interrupted']]);
  });

  it('--resume continues a failed run: succeeded commands are not run again', async () => {
    const ws = workspace();
    const lines = ['# phase: one', 'bash ev.sh 0', 'bash ev.sh 0', 'test -e go', '# phase: two', 'bash ev.sh 0', ''];
    const jobs = ws.jobs('jobs.sh', lines.join('\n'));
    const first = await runTasker(['run', '--run-id', 'res', '--workdir', ws.dir, jobs]);
    expect(first.exitCode).toBe(1);
    writeFileSync(join(ws.dir, 'go'), '');
    const second = await runTasker(['run', '--resume', 'res', '--workdir', ws.dir]);
    expect(second.exitCode, second.stdout).toBe(0);
    const starts = readEvents(ws.events).filter((e) => e.event === 'start').map((e) => e.id);
    expect(starts.sort()).toEqual(['f1-L2', 'f1-L3', 'f1-L6']); // each once
    const summary = readSummary(ws.dir, 'res');
    expect(summary.phases.map((p) => [p.name, p.alreadyDone, p.succeeded])).toEqual([
      ['one', 2, 1],
      ['two', 0, 1],
    ]);
    // --run-id of an existing run resumes it as well (a restarted Kubernetes Job pod does this).
    const third = await runTasker(['run', '--run-id', 'res', '--workdir', ws.dir, jobs]);
    expect(third.exitCode).toBe(0);
    expect(readEvents(ws.events).filter((e) => e.event === 'start')).toHaveLength(3);
  });

  it('a tasker killed with SIGKILL resumes with the same --run-id without re-running finished commands', async () => {
    const ws = workspace();
    const lines = ['# phase: many'];
    for (let i = 0; i < 40; i++) lines.push('bash ev.sh 0.05');
    const jobs = ws.jobs('jobs.sh', `${lines.join('\n')}\n`);
    const child = startTasker(['run', '-j', '2', '--run-id', 'crash', '--workdir', ws.dir, jobs]);
    for (let i = 0; i < 200; i++) {
      if (existsSync(ws.events) && readEvents(ws.events).filter((e) => e.event === 'end').length >= 10) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill('SIGKILL');
    await child;
    await new Promise((resolve) => setTimeout(resolve, 200)); // orphaned commands finish
    const finishedBefore = new Set(readResults(ws.dir, 'crash').filter((r) => r.outcome === 'succeeded').map((r) => r.id));
    expect(finishedBefore.size).toBeGreaterThan(0);
    expect(finishedBefore.size).toBeLessThan(40);
    writeFileSync(ws.events, '');
    const resumed = await runTasker(['run', '--run-id', 'crash', '--workdir', ws.dir, jobs]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    const rerun = readEvents(ws.events).filter((e) => e.event === 'start').map((e) => e.id);
    expect(rerun.filter((id) => finishedBefore.has(id))).toEqual([]);
    expect(rerun.length + finishedBefore.size).toBe(40);
  });

  it('--resume of an unknown run exits 2 and runs nothing', async () => {
    const ws = workspace();
    const result = await runTasker(['run', '--resume', 'nope', '--workdir', ws.dir]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('no run "nope"');
  });

  it('a resumed run whose jobs file changed runs the changed command (issue 27; test/e2e/rerun.test.ts)', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'false\n');
    expect((await runTasker(['run', '--run-id', 'chg', '--workdir', ws.dir, jobs])).exitCode).toBe(1);
    writeFileSync(jobs, 'true\n');
    const result = await runTasker(['run', '--run-id', 'chg', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stderr).toBe(0);
  });
});

describe('--clean and --stage', () => {
  it('refuses to clean a non-empty directory that never held a run, touching nothing', async () => {
    const ws = workspace();
    const target = join(ws.dir, 'data');
    mkdirSync(target);
    writeFileSync(join(target, 'precious.txt'), 'keep me');
    const jobs = ws.jobs('jobs.sh', 'touch ran.txt\n');
    const result = await runTasker(['run', '--clean', '--workdir', target, jobs]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--force-clean');
    expect(readFileSync(join(target, 'precious.txt'), 'utf8')).toBe('keep me');
    expect(existsSync(join(target, 'ran.txt'))).toBe(false);
    expect(existsSync(join(target, '.tasker'))).toBe(false);
  });

  it('refuses / and the home directory even with --force-clean', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'true\n');
    const root = await runTasker(['run', '--clean', '--force-clean', '--workdir', '/', jobs]);
    expect(root.exitCode).toBe(2);
    expect(root.stderr).toContain('refuses to empty /');
    const home = join(ws.dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.bashrc'), '# mine');
    const homeRun = await runTasker(['run', '--clean', '--force-clean', '--workdir', home, jobs], { env: { HOME: home } });
    expect(homeRun.exitCode).toBe(2);
    expect(homeRun.stderr).toContain('home directory');
    expect(existsSync(join(home, '.bashrc'))).toBe(true);
  });

  it('cleans a workdir of an earlier run, or an unmarked one with --force-clean, then stages inputs', async () => {
    const ws = workspace();
    const work = join(ws.dir, 'work');
    const inputs = join(ws.dir, 'inputs');
    mkdirSync(join(inputs, 'data'), { recursive: true });
    writeFileSync(join(inputs, 'data', 'x.csv'), 'a,b\n');
    const jobs = ws.jobs('jobs.sh', 'cat data/x.csv > out.txt\n');
    expect((await runTasker(['run', '--run-id', 'r1', '--workdir', work, jobs])).exitCode).toBe(1); // no data yet
    writeFileSync(join(work, 'leftover.txt'), 'old');
    const second = await runTasker(['run', '--clean', '--stage', join(inputs, 'data'), '--run-id', 'r2', '--workdir', work, jobs]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(existsSync(join(work, 'leftover.txt'))).toBe(false);
    expect(existsSync(join(work, '.tasker', 'runs', 'r1'))).toBe(false);
    expect(readFileSync(join(work, 'out.txt'), 'utf8')).toBe('a,b\n');

    const unmarked = join(ws.dir, 'unmarked');
    mkdirSync(unmarked);
    writeFileSync(join(unmarked, 'junk'), '');
    const forced = await runTasker(['run', '--clean', '--force-clean', '--stage', join(inputs, 'data'), '--workdir', unmarked, jobs]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(existsSync(join(unmarked, 'junk'))).toBe(false);
  });
});

describe('exit code 2 for bad input, with nothing run', () => {
  const cases: [string, (ws: ReturnType<typeof workspace>) => string[], RegExp][] = [
    ['missing file', (ws) => ['run', '--workdir', ws.dir, join(ws.dir, 'missing.sh')], /jobs file not found/],
    ['a directory', (ws) => ['run', '--workdir', ws.dir, ws.dir], /is a directory/],
    ['empty file', (ws) => ['run', '--workdir', ws.dir, ws.jobs('empty.sh', '')], /nothing to run/],
    ['only comments', (ws) => ['run', '--workdir', ws.dir, ws.jobs('c.sh', '# a\n\n# b\n')], /nothing to run/],
    ['NUL byte', (ws) => ['run', '--workdir', ws.dir, ws.jobs('nul.sh', 'touch ran.txt\necho a\0b\n')], /nul\.sh:2: NUL byte/],
    ['continuation at end of file', (ws) => ['run', '--workdir', ws.dir, ws.jobs('cont.sh', 'touch ran.txt\necho a \\\n')], /cont\.sh:2: .*backslash/],
    ['unknown flag', (ws) => ['run', '--frobnicate', ws.jobs('j.sh', 'touch ran.txt\n')], /unknown option/],
    ['bad duration', (ws) => ['run', '--timeout', 'soon', '--workdir', ws.dir, ws.jobs('j.sh', 'touch ran.txt\n')], /--timeout must be a duration/],
    ['zero concurrency', (ws) => ['run', '-j', '0', '--workdir', ws.dir, ws.jobs('j.sh', 'touch ran.txt\n')], /--concurrency must be at least 1/],
    ['makita without simulate', (ws) => ['run', '--split', 'makita', '--workdir', ws.dir, ws.jobs('j.sh', 'touch ran.txt\n')], /no line containing "simulate"/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const ws = workspace();
      const result = await runTasker(args(ws), { cwd: ws.dir });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(existsSync(join(ws.dir, 'ran.txt'))).toBe(false);
      expect(existsSync(join(ws.dir, '.tasker'))).toBe(false);
    });
  }

  it('reports every configuration problem at once', async () => {
    const ws = workspace();
    const result = await runTasker(['run', '-j', 'x', '--retries', '-1', '--timeout', '0', '--workdir', ws.dir, ws.jobs('j.sh', 'true\n')]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--concurrency');
    expect(result.stderr).toContain('--retries');
    expect(result.stderr).toContain('--timeout');
  });
});

describe('tasker plan', () => {
  it('--json prints phases with ids, files, 1-based start lines and commands', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', ['mkdir out', '# phase: sims', 'echo a \\', '  b', '', 'echo c', '# phase: end (tasker)', 'echo d', ''].join('\n'));
    const result = await runTasker(['plan', '--json', jobs], { env: { AMQP_URL: '' } });
    expect(result.exitCode).toBe(0);
    const plan = JSON.parse(result.stdout) as { phases: { name: string; runsOn: string; commands: { id: string; file: string; line: number; command: string }[] }[] };
    expect(plan.phases).toEqual([
      expect.objectContaining({ name: 'jobs.sh', runsOn: 'local slots', commands: [{ id: 'f1-L1', file: jobs, line: 1, command: 'mkdir out' }] }),
      expect.objectContaining({
        name: 'sims',
        runsOn: 'local slots',
        commands: [
          { id: 'f1-L3', file: jobs, line: 3, command: 'echo a   b' },
          { id: 'f1-L6', file: jobs, line: 6, command: 'echo c' },
        ],
      }),
      expect.objectContaining({ name: 'end', runsOn: 'tasker', commands: [{ id: 'f1-L8', file: jobs, line: 8, command: 'echo d' }] }),
    ]);
  });

  it('gives one phase per file when several files are given', async () => {
    const ws = workspace();
    const a = ws.jobs('part1', 'echo 1\n');
    const b = ws.jobs('part2', 'echo 2\necho 3\n');
    const result = await runTasker(['plan', '--json', a, b]);
    const plan = JSON.parse(result.stdout) as { phases: { name: string; commands: { id: string }[] }[] };
    expect(plan.phases.map((p) => [p.name, p.commands.map((c) => c.id)])).toEqual([
      ['part1', ['f1-L1']],
      ['part2', ['f2-L1', 'f2-L2']],
    ]);
  });

  it('prints a readable plan', async () => {
    const ws = workspace();
    const result = await runTasker(['plan', ws.jobs('jobs.sh', '# phase: a (tasker)\necho 1\n')]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Phase 1 "a": 1 command, run by the tasker');
  });
});

describe('progress', () => {
  it('logs a progress line every interval when stderr is not a terminal', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'sleep 0.4\nsleep 0.4\nsleep 0.4\n');
    const result = await runTasker(['run', '-j', '1', '--progress-interval', '150ms', '--workdir', ws.dir, jobs]);
    expect(result.exitCode).toBe(0);
    const progress = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; done?: number; total?: number; running?: number })
      .filter((line) => line.msg.startsWith('progress'));
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toMatchObject({ total: 3 });
    expect(progress.some((line) => line.running === 1)).toBe(true);
  });
});

describe('progress on a terminal', () => {
  it('draws a live bar with done, failed, running counts and an ETA', async () => {
    const { execa } = await import('execa');
    const { taskerBin } = await import('../helpers/cli.js');
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'sleep 0.3\nsleep 0.3\nsleep 0.3\nfalse\n');
    // util-linux `script` gives the tasker a pseudo-terminal as stderr, as a user's shell would.
    const command = `${process.execPath} ${taskerBin} run -j 2 --workdir ${ws.dir} ${jobs}`;
    const result = await execa('script', ['-qfec', command, '/dev/null'], { reject: false, env: { TERM: 'xterm' } });
    const screen = String(result.stdout).replaceAll('\r', '\n');
    expect(screen).toMatch(/phase 1\/1 jobs\.sh \[.*\] 3\/4 done \| 1 failed \| 0 running \| ETA/);
    expect(screen).toMatch(/\d\/4 done \| 0 failed \| 2 running/);
  });
});

describe('worker', () => {
  it('says it needs AMQP_URL', async () => {
    const { execa } = await import('execa');
    const { workerBin } = await import('../helpers/cli.js');
    const result = await execa(process.execPath, [workerBin], { reject: false, env: { AMQP_URL: '', TASKER_SIGNING_KEY: 'k'.repeat(32) } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('needs AMQP_URL');
  });
});
