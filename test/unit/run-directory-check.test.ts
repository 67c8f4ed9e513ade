import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseWorkMessage, type RunOrigin } from '../../shared/broker/messages.js';
import { runLayout } from '../../shared/run-dir/run-layout.js';
import type { WorkerInfo } from '../../shared/state/run-store.js';
import { ensureRunToken, readRunToken } from '../../shared/run-dir/run-token.js';
import { blindWorkers, createUnseenRunWarnings, unseenRunText } from '../../tasker/distributed/unseen-run-warnings.js';
import { handleMessage } from '../../worker/message/handle-message.js';
import { createRunDirectoryCheck, sightProblem, unseenRunHint, type RunDirLook } from '../../worker/message/run-directory-check.js';
import { lookInWorkdir } from '../../worker/service/look-in-workdir.js';
import { tempDir } from '../helpers/cli.js';
import { fakeWorker } from '../helpers/worker-ports.js';

/** The check that a worker sees the tasker's run directory before it runs a command of the run. */

const token = '0123456789abcdef-0123';
const origin: RunOrigin = { workdir: '/data/run', token };
const shared = { v: 1, runId: 'r1', phase: 'sims', phaseIndex: 2, timeoutMs: null, killGraceMs: 1000, replyTo: 'tasker.run.r1.done' };
const attempt = (line: number) => ({ id: `f1-L${line}`, attempt: 1, command: `echo ${line}`, file: 'jobs.sh', line });
const parse = (message: Record<string, unknown>) => parseWorkMessage(Buffer.from(JSON.stringify(message)));

/** A logger whose lines are kept, as [level, msg, fields]. */
function recordingLogger() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const logger = pino({ level: 'debug' }, { write: (text: string) => {
    const { level, msg, ...fields } = JSON.parse(text) as { level: number; msg: string };
    lines.push({ level: pino.levels.labels[level]!, msg, fields });
  } });
  return { logger, lines };
}

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
});
function workdir(): string {
  const dir = tempDir('tasker-run-sight-');
  cleanups.push(dir.cleanup);
  return dir.path;
}

describe('the origin in work messages', () => {
  it('is carried by a command and by each attempt of a bundle', () => {
    const single = parse({ ...shared, origin, kind: 'command', ...attempt(1) });
    expect(single.ok && single.value.attempts[0]!.origin).toEqual(origin);
    const bundle = parse({ ...shared, origin, kind: 'bundle', commands: [attempt(1), attempt(2)] });
    expect(bundle.ok && bundle.value.attempts.map((one) => one.origin)).toEqual([origin, origin]);
  });

  it('may be absent (a tasker older than the check), but not malformed', () => {
    const old = parse({ ...shared, kind: 'command', ...attempt(1) });
    expect(old.ok && old.value.attempts[0]!.origin).toBeUndefined();
    const bad = parse({ ...shared, origin: { workdir: '', token: 'short' }, kind: 'command', ...attempt(1) });
    expect(!bad.ok && bad.problem).toBe('origin.workdir missing; origin.token missing or malformed');
    const notObject = parse({ ...shared, origin: 'x', kind: 'bundle', commands: [attempt(1)] });
    expect(!notObject.ok && notObject.problem).toBe('origin must be an object');
  });
});

describe('sightProblem', () => {
  it('none when the run directory here has the message\'s token', () => {
    expect(sightProblem(origin, { dirExists: true, token })).toBeUndefined();
  });

  it('names what is wrong: no directory, no token, another token', () => {
    expect(sightProblem(origin, { dirExists: false, token: undefined })).toBe("the run has no directory in this worker's workdir");
    expect(sightProblem(origin, { dirExists: true, token: undefined })).toContain('has no token');
    expect(sightProblem(origin, { dirExists: true, token: 'another-token-1234567' })).toContain('has another token');
  });

  it('without an origin (older tasker): the directory existing is enough', () => {
    expect(sightProblem(undefined, { dirExists: true, token: undefined })).toBeUndefined();
    expect(sightProblem(undefined, { dirExists: false, token: undefined })).toBe("the run has no directory in this worker's workdir");
  });
});

describe('unseenRunHint', () => {
  it("names the tasker's workdir as the --workdir to use, and the volume", () => {
    const hint = unseenRunHint('/tmp/mine', origin);
    expect(hint).toContain('--workdir /data/run (or WORKDIR=/data/run)');
    expect(hint).toContain('mount the same volume');
  });

  it('same path, different directories: the mount is the fix', () => {
    const hint = unseenRunHint('/data/run', origin);
    expect(hint).toContain('though the paths are the same');
    expect(hint).not.toContain('--workdir /data/run');
  });

  it('without an origin: the tasker\'s workdir is not known', () => {
    expect(unseenRunHint('/tmp/mine', undefined)).toContain("set to the tasker's workdir");
  });
});

describe('createRunDirectoryCheck', () => {
  function sight(looks: Record<string, RunDirLook | Error>) {
    const { logger, lines } = recordingLogger();
    const reads: string[] = [];
    let clock = 0;
    const runSight = createRunDirectoryCheck({
      workdir: '/tmp/mine',
      logger,
      now: () => clock,
      look: async (runId) => {
        reads.push(runId);
        const look = looks[runId] ?? { dirExists: false, token: undefined };
        if (look instanceof Error) throw look;
        return look;
      },
    });
    return { runSight, lines, reads, advance: (ms: number) => (clock += ms), looks };
  }

  it('reads a seen run once, then answers from memory', async () => {
    const s = sight({ r1: { dirExists: true, token } });
    for (let i = 0; i < 5; i++) expect(await s.runSight.sees({ runId: 'r1', origin })).toBe(true);
    expect(s.reads).toEqual(['r1']);
    expect(s.lines).toEqual([]);
  });

  it('a run it cannot see: said once, loudly, naming both directories; looked at again each time; reported for the heartbeat', async () => {
    const s = sight({});
    for (let i = 0; i < 3; i++) expect(await s.runSight.sees({ runId: 'r2', origin })).toBe(false);
    expect(s.reads).toEqual(['r2', 'r2', 'r2']);
    const errors = s.lines.filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain("this worker cannot see run r2's directory: its workdir /tmp/mine is not the tasker's /data/run");
    expect(errors[0]!.fields).toMatchObject({ runId: 'r2', workdir: '/tmp/mine', taskerWorkdir: '/data/run' });
    expect(String(errors[0]!.fields['hint'])).toContain('--workdir /data/run');
    expect(s.runSight.unseenRuns()).toEqual(['r2']);
    s.advance(61_000);
    expect(s.runSight.unseenRuns()).toEqual([]);
  });

  it('holds its messages 5 s at first, 30 s once the run has gone unseen for a minute', async () => {
    const s = sight({});
    expect(s.runSight.holdMs('r2')).toBe(5000);
    await s.runSight.sees({ runId: 'r2', origin });
    s.advance(30_000);
    await s.runSight.sees({ runId: 'r2', origin });
    expect(s.runSight.holdMs('r2')).toBe(5000);
    s.advance(30_000);
    await s.runSight.sees({ runId: 'r2', origin });
    expect(s.runSight.holdMs('r2')).toBe(30_000);
    expect(s.runSight.holdMs('other')).toBe(5000);
  });

  it('a directory that shows up later (a slow volume) is seen, and said so', async () => {
    const s = sight({});
    expect(await s.runSight.sees({ runId: 'r3', origin })).toBe(false);
    s.looks['r3'] = { dirExists: true, token };
    expect(await s.runSight.sees({ runId: 'r3', origin })).toBe(true);
    expect(s.runSight.unseenRuns()).toEqual([]);
    expect(s.lines.at(-1)!.msg).toContain("now sees run r3's directory");
  });

  it('an unreadable directory is not seen (never an exception: that would requeue at once, in a loop)', async () => {
    const s = sight({ r4: new Error('EACCES: permission denied') });
    expect(await s.runSight.sees({ runId: 'r4', origin })).toBe(false);
    expect(s.lines[0]!.fields['problem']).toContain('EACCES');
  });

  it('a new token for a known run id (another run of that id) is looked at again', async () => {
    const s = sight({ r5: { dirExists: true, token } });
    expect(await s.runSight.sees({ runId: 'r5', origin })).toBe(true);
    expect(await s.runSight.sees({ runId: 'r5', origin: { ...origin, token: 'fedcba9876543210-999' } })).toBe(false);
  });
});

describe('run token and lookInWorkdir', () => {
  it('the tasker writes the token once; a worker in the same workdir reads it, one in another finds no run', async () => {
    const dir = workdir();
    const layout = runLayout(dir, 'r1');
    mkdirSync(layout.runDir, { recursive: true });
    const written = await ensureRunToken(layout);
    expect(await ensureRunToken(layout)).toBe(written);
    expect(await readRunToken(layout.tokenPath)).toBe(written);
    expect(await lookInWorkdir(dir)('r1')).toEqual({ dirExists: true, token: written });
    expect(await lookInWorkdir(workdir())('r1')).toEqual({ dirExists: false, token: undefined });
  });

  it('a run directory without a token (an older tasker, or another run of the same id)', async () => {
    const dir = workdir();
    mkdirSync(runLayout(dir, 'r1').runDir, { recursive: true });
    expect(await lookInWorkdir(dir)('r1')).toEqual({ dirExists: true, token: undefined });
    writeFileSync(join(runLayout(dir, 'r1').runDir, 'token'), 'not a token\n');
    expect(await lookInWorkdir(dir)('r1')).toEqual({ dirExists: true, token: undefined });
  });
});

describe('a worker handed a command of a run it cannot see', () => {
  const fakes = (sees: boolean, options: { draining?: boolean } = {}) => fakeWorker({ sees, draining: options.draining === true });
  /** What it asked of Redis and the executor: the hold's sleeps aside. */
  const asked = (calls: string[]) => calls.filter((call) => call !== 'sleep');

  it('does not take the lease nor run it: holds it a while, then gives it back to the queue', async () => {
    const f = fakes(false);
    const handled = await handleMessage(Buffer.from(JSON.stringify({ ...shared, origin, kind: 'command', ...attempt(1) })), f.ports, f.control);
    expect(handled).toEqual({ decision: 'requeue' });
    expect(asked(f.calls)).toEqual([]);
    expect(f.slept()).toBe(1000);
  });

  it('the same for a bundle, with one look for all its attempts', async () => {
    const f = fakes(false);
    const handled = await handleMessage(Buffer.from(JSON.stringify({ ...shared, origin, kind: 'bundle', commands: [attempt(1), attempt(2)] })), f.ports, f.control);
    expect(handled).toEqual({ decision: 'requeue' });
    expect(asked(f.calls)).toEqual([]);
  });

  it('dead-letters it instead when the run is purged, unknown or over: no worker is to run it, and it would come back for ever', async () => {
    for (const standing of ['cancelled', 'unknown', 'over'] as const) {
      const f = fakeWorker({ sees: false, standing });
      expect(await handleMessage(Buffer.from(JSON.stringify({ ...shared, origin, kind: 'command', ...attempt(1) })), f.ports, f.control)).toEqual({ decision: 'reject' });
      expect(asked(f.calls)).toEqual([]);
      expect(f.slept()).toBe(0);
    }
  });

  it('gives it back at once while draining', async () => {
    const f = fakes(false, { draining: true });
    expect(await handleMessage(Buffer.from(JSON.stringify({ ...shared, origin, kind: 'command', ...attempt(1) })), f.ports, f.control)).toEqual({ decision: 'requeue' });
    expect(f.slept()).toBe(0);
  });
});

describe('the tasker on workers that cannot see its run', () => {
  const worker = (id: string, unseenRuns?: string[], dir = '/tmp/mine'): WorkerInfo => ({ id, host: 'h', pid: 1, concurrency: 1, startedAt: 'x', running: [], workdir: dir, ...(unseenRuns === undefined ? {} : { unseenRuns }) });

  it('names the workers, their workdir, and the fix', () => {
    expect(blindWorkers([worker('a'), worker('b', ['r1']), worker('c', ['r2'])], 'r1').map((w) => w.id)).toEqual(['b']);
    const text = unseenRunText([worker('b', ['r1'])], '/data/run');
    expect(text).toBe(
      "worker b (workdir /tmp/mine) cannot see this run's directory: its workdir is not the tasker's /data/run, so it hands the commands back unrun. Restart it with --workdir /data/run (or WORKDIR), or mount the shared volume there (Kubernetes: the same volume in tasker and worker pods)",
    );
    const many = unseenRunText(['a', 'b', 'c', 'd', 'e'].map((id) => worker(id, ['r1'])), '/data/run');
    expect(many).toContain('workers a (workdir /tmp/mine), b (workdir /tmp/mine), c (workdir /tmp/mine) and 2 more cannot see');
    expect(unseenRunText([], '/data/run')).toBeUndefined();
  });

  it('warns when the set of such workers changes, keeps the text for the progress line, and says when it clears', () => {
    const { logger, lines } = recordingLogger();
    const warnings = createUnseenRunWarnings('r1', '/data/run', logger);
    warnings.update([worker('a')]);
    expect(warnings.current()).toBeUndefined();
    warnings.update([worker('a', ['r1'])]);
    warnings.update([worker('a', ['r1'])]);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    expect(warnings.current()).toContain('worker a (workdir /tmp/mine) cannot see');
    warnings.update([worker('a')]);
    expect(warnings.current()).toBeUndefined();
    expect(lines.at(-1)!.msg).toContain('no worker reports');
  });
});
