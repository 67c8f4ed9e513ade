import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readResults, runTasker, useWorkspaces } from '../helpers/cli.js';
import { spawnTasker, useTestNamespace } from '../helpers/distributed.js';

/**
 * The run directory is on the shared volume, where every command can write. A resumed tasker
 * must not run what a command wrote there (issue 25, point 4): the copies of the jobs files are
 * checked against the sha256 recorded when the run was prepared, run.json's paths cannot leave
 * the run directory, its phases must be those of the copies, and a distributed run checks
 * run.json itself against the sha256 its first tasker kept in Redis. A mismatch is an input error
 * (exit 2) naming the file, and nothing runs. During a run, the tasker reads its own copies.
 */

const workspace = useWorkspaces();

interface Run {
  dir: string;
  jobs: string;
  runDir: string;
  copy: string;
  runJson: string;
  pwned: string;
}

/** A local run of two phases whose second command fails (so it can be resumed), and a line an attacker would add. */
async function failedRun(runId: string): Promise<Run> {
  const ws = workspace();
  const jobs = ws.jobs('jobs.sh', '# phase: first\ntouch first.txt\n# phase: second\nfalse\n');
  const result = await runTasker(['run', '--run-id', runId, '--workdir', ws.dir, jobs]);
  expect(result.exitCode, result.stderr).toBe(1);
  const runDir = join(ws.dir, '.tasker', 'runs', runId);
  const copy = join(runDir, 'jobs', readdirSync(join(runDir, 'jobs'))[0]!);
  return { dir: ws.dir, jobs, runDir, copy, runJson: join(runDir, 'run.json'), pwned: join(ws.dir, 'PWNED') };
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
/** The same lines and phases as the original, the failed command replaced. */
const rewritten = (pwned: string): string => `# phase: first\ntouch first.txt\n# phase: second\ntouch ${pwned}\n`;

function expectRefused(result: { exitCode: number | undefined; stderr: string }, named: RegExp, run: Run): void {
  expect(result.exitCode, result.stderr).toBe(2);
  expect(result.stderr).toMatch(named);
  expect(result.stderr).toMatch(/start a new run \(another --run-id\)/);
  expect(existsSync(run.pwned), 'the rewritten command ran').toBe(false);
}

describe('resume re-checks the run directory', () => {
  it('a rewritten jobs copy: resume is refused, naming the copy (with the jobs file given, and without)', async () => {
    const run = await failedRun('rewritten');
    writeFileSync(run.copy, rewritten(run.pwned));
    const resumed = await runTasker(['run', '--resume', 'rewritten', '--workdir', run.dir]);
    expectRefused(resumed, new RegExp(`^tasker: ${run.copy.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the run's copy of .*jobs\\.sh changed since run rewritten was prepared`), run);
    const given = await runTasker(['run', '--run-id', 'rewritten', '--workdir', run.dir, run.jobs]);
    expectRefused(given, /the run's copy of .*jobs\.sh changed since run rewritten was prepared/, run);
  });

  it('run.json naming a copy outside the run directory, or a copy replaced by a link: refused, naming the file', async () => {
    const run = await failedRun('escape');
    const outside = join(run.dir, 'outside.sh');
    writeFileSync(outside, rewritten(run.pwned));
    const record = JSON.parse(readFileSync(run.runJson, 'utf8')) as { files: { copy: string; sha256: string }[] };
    const original = structuredClone(record);
    record.files[0]!.copy = '../../../outside.sh';
    record.files[0]!.sha256 = sha256(rewritten(run.pwned));
    writeFileSync(run.runJson, JSON.stringify(record));
    const escaped = await runTasker(['run', '--resume', 'escape', '--workdir', run.dir]);
    expectRefused(escaped, /run\.json names "\.\.\/\.\.\/\.\.\/outside\.sh" as the copy of .*jobs\.sh, which is not a file of the run's jobs directory/, run);

    writeFileSync(run.runJson, JSON.stringify({ ...original, files: [{ ...original.files[0]!, copy: outside }] }));
    expectRefused(await runTasker(['run', '--resume', 'escape', '--workdir', run.dir]), /is not a file of the run's jobs directory/, run);

    writeFileSync(run.runJson, JSON.stringify(original));
    unlinkSync(run.copy);
    symlinkSync(outside, run.copy);
    expectRefused(await runTasker(['run', '--resume', 'escape', '--workdir', run.dir]), /the run's copy of .*jobs\.sh is not a regular file \(a symbolic link\)/, run);
  });

  it('run.json whose phases are not those of its copies (a workers phase made a tasker phase): refused', async () => {
    const run = await failedRun('phases');
    const record = JSON.parse(readFileSync(run.runJson, 'utf8')) as { phases: { runsOn: string }[] };
    record.phases[1]!.runsOn = 'tasker';
    writeFileSync(run.runJson, JSON.stringify(record));
    const resumed = await runTasker(['run', '--resume', 'phases', '--workdir', run.dir]);
    expectRefused(resumed, /run\.json: its phases are not those of the run's jobs files/, run);
  });

  it('untouched, it resumes as before: only the failed command runs again', async () => {
    const run = await failedRun('untouched');
    writeFileSync(run.jobs.replace('jobs.sh', 'unused'), '');
    const resumed = await runTasker(['run', '--resume', 'untouched', '--workdir', run.dir]);
    expect(resumed.exitCode, resumed.stderr).toBe(1);
    expect(readResults(run.dir, 'untouched').map((record) => `${record.id}#${record.attempt}`)).toEqual(['f1-L2#1', 'f1-L4#1', 'f1-L4#2']);
  });

  it('during a run, a command that rewrites the run directory’s copy changes nothing: the tasker reads its own', async () => {
    const ws = workspace();
    const pwned = join(ws.dir, 'PWNED');
    const jobs = ws.jobs('jobs.sh', `# phase: first\ncp ${ws.dir}/evil.sh "$(ls -d ${ws.dir}/.tasker/runs/live/jobs/*)"\n# phase: second\ntouch ${ws.dir}/second.txt\n`);
    writeFileSync(join(ws.dir, 'evil.sh'), `# phase: first\ntrue\n# phase: second\ntouch ${pwned}\n`);
    const result = await runTasker(['run', '--run-id', 'live', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(existsSync(join(ws.dir, 'second.txt'))).toBe(true);
    expect(existsSync(pwned), 'a command rewrote what the tasker ran').toBe(false);
  });
});

describe('resume of a distributed run checks run.json against Redis', () => {
  const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
  const ctx = useTestNamespace(services, 'tasker-resume-check-');

  it('a run.json rewritten with its copy (hashes and phases consistent) is refused: Redis kept the first one’s sha256', async () => {
    ctx.runIds.push('anchored');
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, '# phase: setup (tasker)\ntrue\nfalse\n');
    const first = await spawnTasker(ctx.env, ['run', '--run-id', 'anchored', '--workdir', ctx.dir, jobs]);
    expect(first.exitCode, first.all).toBe(1);
    const runDir = join(ctx.dir, '.tasker', 'runs', 'anchored');
    const copy = join(runDir, 'jobs', readdirSync(join(runDir, 'jobs'))[0]!);
    const pwned = join(ctx.dir, 'PWNED');
    const evil = `# phase: setup (tasker)\ntrue\ntouch ${pwned}\n`;
    writeFileSync(copy, evil);
    const record = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as { files: { sha256: string }[] };
    record.files[0]!.sha256 = sha256(evil);
    writeFileSync(join(runDir, 'run.json'), JSON.stringify(record, null, 2));

    const resumed = await spawnTasker(ctx.env, ['run', '--resume', 'anchored', '--workdir', ctx.dir]);
    expect(resumed.exitCode, resumed.all).toBe(2);
    expect(resumed.all).toMatch(/run\.json of run anchored is not the one its first tasker wrote \(its sha256 differs from the one kept in Redis\)/);
    expect(existsSync(pwned)).toBe(false);
  });
});
