import { existsSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { readResults, tempDir } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace, waitFor, watchOutput } from '../helpers/distributed.js';

/**
 * A worker whose workdir is not the tasker's (another --workdir, or the shared volume not
 * mounted) must not run the run's commands in its own directory and let them pass as succeeded:
 * it says so, once, naming both directories, and hands the commands back; the tasker warns on its
 * progress line and in `tasker status`; a worker started in the right workdir then runs them all.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const ctx = useTestNamespace(services, 'tasker-workdir-');
let removeWrongDir = (): void => undefined;
afterEach(() => removeWrongDir());

const commandCount = 7;

describe('a worker in another workdir than the tasker', () => {
  it('runs nothing there, says so once naming both directories, and a worker in the right workdir completes the run', async () => {
    const wrong = tempDir('tasker-wrong-workdir-');
    removeWrongDir = wrong.cleanup;
    const wrongDir = realpathSync(wrong.path);
    const taskerDir = realpathSync(ctx.dir);
    const blind = await readyWorker(ctx.env, ['--workdir', wrongDir, '--concurrency', '2']);
    ctx.procs.push(blind.proc);

    // Each command leaves a file in the directory it ran in. Bundles of 3 and a message of one:
    // both kinds of work message are checked.
    const lines = ['# phase: sims', ...Array.from({ length: commandCount }, (_, i) => `echo "$PWD" > out-${i + 1}.txt`)];
    const jobs = join(ctx.dir, 'jobs.sh');
    writeFileSync(jobs, `${lines.join('\n')}\n`);
    ctx.runIds.push('wrongdir');
    const run = spawnTasker(ctx.env, ['run', '--run-id', 'wrongdir', '--workdir', ctx.dir, '--progress-interval', '500ms', '--bundle-size', '3', jobs]);
    ctx.procs.push(run);
    const out = watchOutput(run);

    const said = `this worker cannot see run wrongdir's directory: its workdir ${wrongDir} is not the tasker's ${taskerDir}`;
    // Before the fix, the blind worker ran every command in its own directory and the run "succeeded".
    await waitFor('the blind worker to say it cannot see the run', () => blind.output().includes(said) || run.exitCode !== null, 20_000);
    expect(readdirSync(wrongDir), 'commands ran in the blind worker\'s workdir').toEqual([]);
    expect(run.exitCode, out.text()).toBeNull();
    expect(blind.output()).toContain(said);
    await waitFor('the tasker to warn about the blind worker', () => out.text().includes("cannot see this run's directory"), 20_000);
    expect(out.text()).toContain(`worker ${hostname()}-${blind.proc.pid} (workdir ${wrongDir}) cannot see this run's directory`);
    expect(out.text()).toContain(`--workdir ${taskerDir}`);
    await waitFor('the warning on the progress line', () => /progress [^\n]*cannot see this run's directory/.test(out.text()), 10_000);
    const status = await spawnTasker(ctx.env, ['status', 'wrongdir']);
    expect(status.stdout, status.all).toContain("warning: worker");
    expect(status.stdout).toContain("cannot see this run's directory");
    expect(status.stdout).toContain(`cannot see the directory of run wrongdir in its workdir ${wrongDir}`);
    // The hint names the fix: the tasker's workdir as --workdir, or the volume mount.
    expect(blind.output()).toContain(`start this worker with --workdir ${taskerDir}`);
    expect(run.exitCode).toBeNull();

    const good = await readyWorker(ctx.env, ['--workdir', ctx.dir, '--concurrency', '2']);
    ctx.procs.push(good.proc);
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);

    // Nothing ran in the wrong directory: no outputs, no logs, no run directory.
    expect(readdirSync(wrongDir)).toEqual([]);
    // Every command ran once, in the tasker's workdir, on the worker that sees it.
    const records = readResults(ctx.dir, 'wrongdir');
    expect(records).toHaveLength(commandCount);
    expect(records.every((record) => record.outcome === 'succeeded' && record.attempt === 1)).toBe(true);
    expect(new Set(records.map((record) => record.worker))).toEqual(new Set([`${hostname()}-${good.proc.pid}`]));
    expect(new Set(records.map((record) => record.id)).size).toBe(commandCount);
    for (let i = 1; i <= commandCount; i++) expect(existsSync(join(ctx.dir, `out-${i}.txt`))).toBe(true);
    // Said once, however often its commands came back to it.
    expect(blind.output().split(said).length - 1).toBe(1);
    expect(result.stdout).toMatch(/ sims +workers +succeeded +7 /);
  });
});
