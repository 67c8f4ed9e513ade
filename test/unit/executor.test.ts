import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createExecutor, findShell, type ExecuteRequest, type Executor } from '../../shared/exec/executor.js';
import { withSlots } from '../../shared/exec/executor-slots.js';
import type { createCommandExecutor as CreateCommandExecutor } from '../../shared/exec/command-executor.js';
import { createRunnerExecutor } from '../../shared/exec/shell-runner.js';

/**
 * The executor contract, run against both implementations: bash runners (the default) and
 * spawn() (used when there is no bash). Real processes, real process groups, real logs.
 */

const dir = mkdtempSync(join(tmpdir(), 'tasker-executor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bash = findShell(process.env['PATH']);
let counter = 0;

function request(command: string, extra: Partial<ExecuteRequest> = {}): ExecuteRequest {
  counter++;
  return { command, cwd: dir, logPath: join(dir, 'logs', `c${counter}.log`), env: { TASKER_COMMAND_ID: `c${counter}` }, killGraceMs: 500, ...extra };
}

/** Processes whose whole command line is `command` (not, say, a script that mentions it). */
function processesMatching(command: string): string[] {
  const found = spawnSync('pgrep', ['-f', `^${command}$`], { encoding: 'utf8' });
  return found.stdout.split('\n').filter((line) => line !== '');
}

const implementations: [string, () => Executor][] = [
  ['bash runners', () => withSlots(createRunnerExecutor({ shell: bash }), 4)],
  ['spawn()', () => withSlots(createExecutor({ shell: bash }), 4)],
];

describe.each(implementations)('executor: %s', (_name, make) => {
  const executor = make();

  it('runs a command, logs stdout and stderr, and returns the tail', async () => {
    const req = request('echo out; echo err >&2; echo "id=$TASKER_COMMAND_ID"');
    const result = await executor.start(req).result;
    expect(result).toMatchObject({ outcome: 'succeeded', exitCode: 0, signal: null });
    expect(readFileSync(req.logPath, 'utf8')).toBe(`out\nerr\nid=${req.env['TASKER_COMMAND_ID']}\n`);
    expect(result.tail).toContain('id=c');
    expect(Date.parse(result.finishedAt)).toBeGreaterThanOrEqual(Date.parse(result.startedAt));
  });

  it('reports a non-zero exit as a failure with its code', async () => {
    const result = await executor.start(request('exit 7')).result;
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 7, signal: null, reason: 'exit code 7' });
  });

  it('runs plain commands directly, in the working directory, with the environment', async () => {
    const sub = mkdtempSync(join(dir, 'cwd-'));
    const result = await executor.start(request('pwd', { cwd: sub })).result;
    expect(result.tail.trim()).toBe(sub);
    const env = await executor.start(request('printenv TASKER_COMMAND_ID')).result;
    expect(env.tail).toMatch(/^c\d+\n$/);
  });

  it('says "command not found" (exit 127) for a plain command that does not exist', async () => {
    const result = await executor.start(request('no-such-command-tasker-test --flag')).result;
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127 });
    expect(result.tail).toContain('no-such-command-tasker-test: command not found');
  });

  it('reports a missing working directory as a start error', async () => {
    const result = await executor.start(request('true', { cwd: join(dir, 'missing') })).result;
    expect(result.outcome).toBe('spawn-error');
    expect(result.reason).toContain('does not exist');
  });

  it('reports a command ended by a signal', async () => {
    const result = await executor.start(request('kill -KILL $$')).result;
    expect(result).toMatchObject({ outcome: 'failed', exitCode: null, signal: 'SIGKILL' });
  });

  it('runs a command longer than one argument may hold (128 KiB) through a script file', async () => {
    const long = `echo ${'x'.repeat(200_000)} | wc -c`;
    const result = await executor.start(request(long)).result;
    expect(result).toMatchObject({ outcome: 'succeeded' });
    expect(result.tail.trim()).toBe('200001');
  });

  it('passes quotes, newlines and non-ASCII text through unchanged, in the caller\'s locale', async () => {
    const text = `it's "quoted" $HOME \\ ünï ✓`;
    const req = request(`printf '%s|%s|%s' "$NOTE" "\${LC_ALL-unset}" ${`'${text.replaceAll("'", `'\\''`)}'`}`, { env: { NOTE: `a'b\nc ✓` } });
    const result = await executor.start(req).result;
    expect(result).toMatchObject({ outcome: 'succeeded' });
    expect(readFileSync(req.logPath, 'utf8')).toBe(`a'b\nc ✓|${process.env['LC_ALL'] ?? 'unset'}|${text}`);
  });

  it('times out: the whole process group is killed, background children too', async () => {
    const marker = `${30 + Math.random()}`;
    const started = Date.now();
    const result = await executor.start(request(`sleep ${marker} & sleep ${marker}; wait`, { timeoutMs: 300 })).result;
    expect(result).toMatchObject({ outcome: 'timed-out', exitCode: null });
    expect(Date.now() - started).toBeLessThan(5000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
  });

  it('a command that ignores SIGTERM gets SIGKILL after the grace, and its reason says so', async () => {
    const result = await executor.start(request('trap "" TERM; sleep 30', { timeoutMs: 300, killGraceMs: 300 })).result;
    expect(result).toMatchObject({ outcome: 'timed-out', exitCode: null, signal: 'SIGKILL' });
    expect(result.reason).toBe('timed out after 300ms; did not stop within the 300ms kill grace after SIGTERM');
  });

  it('kills on request, and a second kill changes nothing', async () => {
    const handle = executor.start(request('sleep 20'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    handle.kill('stopped by the test');
    handle.kill('again');
    const result = await handle.result;
    expect(result).toMatchObject({ outcome: 'killed', reason: 'stopped by the test' });
  });

  it('runs at most `slots` commands at once; a waiting one killed ends unrun', async () => {
    const limited = withSlots(make(), 1);
    const first = limited.start(request('sleep 0.4'));
    const second = limited.start(request('echo ran'));
    const third = limited.start(request('echo ran'));
    expect(first.started()).toBe(true);
    expect(second.started()).toBe(false);
    third.kill('not wanted');
    expect(await third.result).toMatchObject({ outcome: 'killed', durationMs: 0, reason: 'not wanted (before it started)' });
    const [a, b] = await Promise.all([first.result, second.result]);
    expect(a.outcome).toBe('succeeded');
    expect(b).toMatchObject({ outcome: 'succeeded', tail: 'ran\n' });
    expect(Date.parse(b.startedAt)).toBeGreaterThanOrEqual(Date.parse(a.finishedAt) - 5);
  });

  it('asks beforeStart with a slot free: a refused command ends unrun and frees its slot; an accepted one runs', async () => {
    const limited = withSlots(make(), 1);
    const refused = limited.start(request('echo ran'), { beforeStart: async () => false });
    const accepted = limited.start(request('echo ran'), { beforeStart: () => true });
    expect(await refused.whenStarted).toBe(false);
    expect(await refused.result).toMatchObject({ outcome: 'killed', durationMs: 0 });
    expect(await accepted.whenStarted).toBe(true);
    expect(await accepted.result).toMatchObject({ outcome: 'succeeded', tail: 'ran\n' });
  });

  it('a command killed while beforeStart is being answered never starts', async () => {
    const limited = withSlots(make(), 1);
    let answer!: (ok: boolean) => void;
    const asked = limited.start(request('echo ran'), { beforeStart: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    asked.kill('not wanted');
    answer(true);
    expect(await asked.whenStarted).toBe(false);
    expect(await asked.result).toMatchObject({ outcome: 'killed', reason: 'not wanted (before it started)' });
  });

  it('killAllNow ends running and waiting commands at once', async () => {
    const limited = withSlots(make(), 1);
    const running = limited.start(request('sleep 20'));
    const waiting = limited.start(request('sleep 20'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    limited.killAllNow();
    const [a, b] = await Promise.all([running.result, waiting.result]);
    expect(a).toMatchObject({ outcome: 'failed', signal: 'SIGKILL' });
    expect(b).toMatchObject({ outcome: 'killed' });
  });
});

const withOptions: [string, (options: { directExec?: boolean; env?: NodeJS.ProcessEnv }) => Executor][] = [
  ['bash runners', (options) => createRunnerExecutor({ shell: bash, ...options })],
  ['spawn()', (options) => createExecutor({ shell: bash, ...options })],
];

// A plain command behaves the same with or without bash (that is the point); what differs is
// BASH_ENV, which only bash reads: with it set, every command goes through bash.
describe.each(withOptions)('plain commands: %s', (_name, make) => {
  it('goes through bash when BASH_ENV is set, so the file it names is read', async () => {
    const marker = join(dir, `bash-env-${Math.random()}`);
    const script = join(dir, 'bash-env.sh');
    writeFileSync(script, `touch '${marker}'\n`);
    const result = await make({ env: { ...process.env, BASH_ENV: script } }).start(request('true')).result;
    expect(result.outcome).toBe('succeeded');
    expect(existsSync(marker)).toBe(true);
  });
});

describe('createCommandExecutor', () => {
  it('honours shell options exported in SHELLOPTS, and keeps working after a command they stop', async () => {
    // The built module: the spawn() executor it falls back to runs its helper from dist/.
    const built = (await import(new URL('../../dist/shared/exec/command-executor.js', import.meta.url).href)) as { createCommandExecutor: typeof CreateCommandExecutor };
    const executor = built.createCommandExecutor({ slots: 2, env: { ...process.env, SHELLOPTS: 'errexit' } });
    const stopped = await executor.start(request('false; echo after')).result;
    expect(stopped).toMatchObject({ outcome: 'failed', exitCode: 1 });
    expect(stopped.tail).not.toContain('after');
    const next = await executor.start(request('echo ok; exit 0')).result;
    expect(next).toMatchObject({ outcome: 'succeeded', tail: 'ok\n' });
  });
});

describe('bash runners', () => {
  it('parse requests in the C locale but run commands in the caller\'s', async () => {
    for (const lcAll of ['C.UTF-8', undefined]) {
      const env = { ...process.env, LANG: 'C.UTF-8', LC_ALL: lcAll };
      if (lcAll === undefined) delete env['LC_ALL'];
      const runners = createRunnerExecutor({ shell: bash, env });
      // ${#v} counts characters in a UTF-8 locale: 1 for ✓, 3 (its bytes) in C.
      const result = await runners.start(request('v=✓; echo "${LC_ALL-unset} ${#v}"')).result;
      expect(result.tail).toBe(`${lcAll ?? 'unset'} 1\n`);
    }
  });

  it('a runner that dies mid-command fails that attempt (never a success) and is replaced', async () => {
    const executor = createRunnerExecutor({ shell: bash });
    const marker = `${50 + Math.random()}`;
    const handle = executor.start(request(`sleep ${marker}`));
    for (let i = 0; i < 100 && processesMatching(`sleep ${marker}`).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const [commandPid] = processesMatching(`sleep ${marker}`);
    const runnerPid = Number(readFileSync(`/proc/${commandPid}/stat`, 'utf8').split(' ')[3]);
    process.kill(runnerPid, 'SIGKILL');
    const result = await handle.result;
    expect(result).toMatchObject({ outcome: 'spawn-error', exitCode: null });
    expect(result.reason).toContain('runner (bash) ended');
    // The command cannot be reported any more, so it is stopped rather than left running.
    for (let i = 0; i < 40 && processesMatching(`sleep ${marker}`).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
    expect(await executor.start(request('echo again')).result).toMatchObject({ outcome: 'succeeded', tail: 'again\n' });
  });

  // bash reports a job a signal ended on its stderr, quoting the runner's own script: the result
  // says how the command ended, the runner must say nothing.
  it('say nothing of their own about a command a signal ended', async () => {
    const complaints: string[] = [];
    const executor = createRunnerExecutor({ shell: bash, onRunnerError: (line) => complaints.push(line) });
    const graceKilled = await executor.start(request('trap "" TERM; sleep 30', { timeoutMs: 200, killGraceMs: 200 })).result;
    expect(graceKilled).toMatchObject({ outcome: 'timed-out', signal: 'SIGKILL' });
    // Ended at once: bash may reap it before the runner reaches its `wait`.
    const selfKilled = await Promise.all(Array.from({ length: 4 }, () => executor.start(request('kill -KILL $$')).result));
    for (const result of selfKilled) expect(result).toMatchObject({ outcome: 'failed', signal: 'SIGKILL' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(complaints).toEqual([]);
  });

  it('still report a log they cannot create', async () => {
    const complaints: string[] = [];
    const executor = createRunnerExecutor({ shell: bash, onRunnerError: (line) => complaints.push(line) });
    // The log's directory disappears after the executor made it (someone cleaned up).
    const gone = mkdtempSync(join(dir, 'gone-'));
    expect(await executor.start(request('true', { logPath: join(gone, 'a.log') })).result).toMatchObject({ outcome: 'succeeded' });
    rmSync(gone, { recursive: true });
    const result = await executor.start(request('echo lost', { logPath: join(gone, 'b.log') })).result;
    expect(result.outcome).toBe('failed');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(complaints.join('\n')).toContain('No such file or directory');
  });

  // Uses the built runner (npm test builds first): a plain node process cannot import TypeScript.
  it('take their running commands down with them when their process dies', async () => {
    const marker = `${40 + Math.random()}`;
    const script = `
      import { createRunnerExecutor } from ${JSON.stringify(new URL('../../dist/shared/exec/shell-runner.js', import.meta.url).pathname)};
      const executor = createRunnerExecutor({ shell: ${JSON.stringify(bash)} });
      executor.start({ command: 'sleep ${marker}', cwd: ${JSON.stringify(dir)}, logPath: ${JSON.stringify(join(dir, 'orphan.log'))}, env: {} });
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    for (let i = 0; i < 100 && processesMatching(`sleep ${marker}`).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(processesMatching(`sleep ${marker}`)).toHaveLength(1);
    child.kill('SIGKILL');
    for (let i = 0; i < 100 && processesMatching(`sleep ${marker}`).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
  });
});
