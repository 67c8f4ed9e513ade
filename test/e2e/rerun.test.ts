import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readResults, runTasker, useWorkspaces } from '../helpers/cli.js';
import { spawnTasker, useTestNamespace, workerFor } from '../helpers/distributed.js';

/**
 * Issue 27, points 1 and 2: a resume with edited jobs files runs again exactly what changed (and
 * what failed or did not finish), matched by content, not by line; a run remembers its mode, and
 * a resume in the other one is refused with what to set.
 */

const workspace = useWorkspaces();

const first = '# phase: setup\necho a >> ran.txt\necho b >> ran.txt\n# phase: work\nfalse\necho c >> ran.txt\n# phase: end\necho d >> ran.txt\n';
// A line inserted at the top, the failing one fixed, the last one deleted.
const edited = '# phase: setup\necho new >> ran.txt\necho a >> ran.txt\necho b >> ran.txt\n# phase: work\necho fixed >> ran.txt\necho c >> ran.txt\n# phase: end\n';

describe('resume with an edited jobs file (local)', () => {
  it('runs the inserted and the fixed lines, and the phases after a change; tasker plan --resume says so first', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', first);
    const started = await runTasker(['run', '--run-id', 'fix', '--workdir', ws.dir, jobs]);
    expect(started.exitCode, started.stderr).toBe(1);
    writeFileSync(join(ws.dir, 'ran.txt'), '');
    writeFileSync(jobs, edited);

    const plan = await runTasker(['plan', '--resume', 'fix', '--workdir', ws.dir, jobs]);
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('3 commands run again (1 changed, 1 new, 1 after-change); 2 kept (succeeded, unchanged)');
    expect(plan.stdout).toContain('1 command no longer in the files');
    expect(plan.stdout).toMatch(/new +f1-L2 +setup +echo new >> ran\.txt/);
    expect(plan.stdout).toMatch(/changed +f1-L6 +work +echo fixed >> ran\.txt\n +was: false/);
    // echo c succeeded and is unchanged, but its phase comes after setup's new line: it may read what that wrote.
    expect(plan.stdout).toMatch(/after-change +f1-L7 +work +echo c >> ran\.txt/);

    const resumed = await runTasker(['run', '--resume', 'fix', '--workdir', ws.dir, jobs]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(readFileSync(join(ws.dir, 'ran.txt'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['c', 'fixed', 'new']);
    expect(resumed.stdout).toContain('all 5 commands succeeded');
    const results = readResults(ws.dir, 'fix');
    expect(results.filter((record) => record.outcome === 'succeeded').map((record) => record.id).sort()).toEqual(['f1-L2', 'f1-L3', 'f1-L4', 'f1-L6', 'f1-L7']);
    const record = JSON.parse(readFileSync(join(ws.dir, '.tasker', 'runs', 'fix', 'run.json'), 'utf8')) as { revision: number; files: { copy: string }[] };
    expect(record.revision).toBe(2);
    expect(record.files[0]!.copy).toBe('jobs/r2-1-jobs.sh');

    // The edit is recorded: resumed again with the same file, nothing runs, nothing is refused.
    const again = await runTasker(['plan', '--resume', 'fix', '--workdir', ws.dir, jobs]);
    expect(again.stdout).toContain('as it is (its jobs files unchanged)');
    expect(again.stdout).toContain('nothing runs again');
  });

  it('--rerun-failed ID runs the failed command again, unedited', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'echo ok\ntest -e flag\n');
    expect((await runTasker(['run', '--run-id', 'flaky', '--workdir', ws.dir, jobs])).exitCode).toBe(1);
    writeFileSync(join(ws.dir, 'flag'), '');
    const resumed = await runTasker(['run', '--rerun-failed', 'flaky', '--workdir', ws.dir]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    // The two lines run side by side: their records in either order.
    expect(readResults(ws.dir, 'flaky').map((record) => `${record.id}#${record.attempt}:${record.outcome}`).sort()).toEqual(['f1-L1#1:succeeded', 'f1-L2#1:failed', 'f1-L2#2:succeeded']);
  });

  it('a local run resumed with AMQP_URL is refused, saying what to unset', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', 'false\n');
    expect((await runTasker(['run', '--run-id', 'here', '--workdir', ws.dir, jobs])).exitCode).toBe(1);
    const resumed = await runTasker(['run', '--resume', 'here', '--workdir', ws.dir], { env: { AMQP_URL: 'amqp://user:secret@127.0.0.1:1', TASKER_SIGNING: 'off' } });
    expect(resumed.exitCode).toBe(2);
    expect(resumed.stderr).toContain('run here is a local run: resume it without a broker (unset AMQP_URL, no --amqp-url)');
    expect(readResults(ws.dir, 'here')).toHaveLength(1);
  });
});

describe('a distributed run remembers its mode', () => {
  const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
  const ctx = useTestNamespace(services, 'tasker-rerun-');

  it('resumed without AMQP_URL: refused, naming AMQP_URL and the namespace; the Resume with line carries them, redacted', async () => {
    ctx.runIds.push('remote');
    await workerFor(ctx);
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, 'true\nfalse\n');
    const started = await spawnTasker(ctx.env, ['run', '--run-id', 'remote', '--workdir', ctx.dir, jobs]);
    expect(started.exitCode, started.all).toBe(1);
    expect(started.stdout).toContain(`run --resume remote --workdir ${ctx.dir} --namespace ${ctx.ns}`);
    const url = new URL(services.amqpUrl);
    if (url.password !== '') url.password = '***';
    expect(started.stdout).toContain(`(a distributed run: resume it with AMQP_URL=${url.toString()} set`);
    expect(started.stdout).not.toContain(`:${new URL(services.amqpUrl).password}@`);

    const withoutBroker = Object.fromEntries(Object.entries(ctx.env).filter(([name]) => name !== 'AMQP_URL'));
    const local = await runTasker(['run', '--resume', 'remote', '--workdir', ctx.dir], { env: withoutBroker });
    expect(local.exitCode).toBe(2);
    expect(local.stderr).toContain(`run remote is a distributed run (RabbitMQ, namespace ${ctx.ns}): resume it with AMQP_URL set`);

    const elsewhere = await runTasker(['run', '--resume', 'remote', '--workdir', ctx.dir], { env: { ...ctx.env, TASKER_NAMESPACE: `${ctx.ns}x` } });
    expect(elsewhere.exitCode).toBe(2);
    expect(elsewhere.stderr).toContain(`resume it with --namespace ${ctx.ns}`);
  });

  it('an edited distributed run reruns the fixed command on the workers', async () => {
    ctx.runIds.push('remote-fix');
    await workerFor(ctx);
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, 'echo a >> ran.txt\nfalse\n');
    expect((await spawnTasker(ctx.env, ['run', '--run-id', 'remote-fix', '--workdir', ctx.dir, jobs])).exitCode).toBe(1);
    // A line inserted on top takes the id of the succeeded "echo a" (f1-L1): its mark must not make a worker skip it.
    writeFileSync(jobs, 'echo top >> ran.txt\necho a >> ran.txt\necho fixed >> ran.txt\n');
    const resumed = await spawnTasker(ctx.env, ['run', '--resume', 'remote-fix', '--workdir', ctx.dir, jobs]);
    expect(resumed.exitCode, resumed.all).toBe(0);
    expect(readFileSync(join(ctx.dir, 'ran.txt'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['a', 'fixed', 'top']);
  });
});
