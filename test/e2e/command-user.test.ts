import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { createCommandExecutor as CreateCommandExecutor } from '../../shared/exec/command-executor.js';
import { readResults, taskerBin, tempDir, workerBin } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, readyWorker, spawnTasker, stopAll, testSigningKey, type Proc } from '../helpers/distributed.js';
import { attackScript, filesUnder, leaksIn } from '../helpers/secret-attack.js';

/**
 * A command cannot obtain a secret: the tasker and a worker, started as root with the signing key,
 * a password in REDIS_URL (given as a flag, so it is on their command line too), RABBITMQ_PASSWORD
 * and a secret file only root may read, run commands as `nobody` (TASKER_COMMAND_USER,
 * WORKER_COMMAND_USER). Each command tries every way to read them (helpers/secret-attack.ts:
 * environments, /proc/*\/environ and cmdline, the parent's memory, the file) and writes what it
 * found to its log and an output file. None of the secrets appears anywhere, the commands run as
 * nobody, and they succeed. The same run without a command user does find them: the attack works,
 * so the test can fail. Needs root (CI runs as root); a start-up that cannot switch exits 2.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const isRoot = process.getuid?.() === 0;
const nobody = 65534;

let ns: string;
let temp: { path: string; cleanup: () => void };
let procs: Proc[];
let runIds: string[];
let secrets: Record<string, string>;
let workdir: string;

beforeEach(() => {
  ns = newNamespace();
  temp = tempDir('tasker-command-user-');
  procs = [];
  runIds = [];
  const tag = randomBytes(4).toString('hex');
  secrets = {
    signingKey: `signingKey${tag}${randomBytes(16).toString('hex')}`,
    redisPassword: `redisPw${tag}${randomBytes(8).toString('hex')}`,
    rabbitmqPassword: `rabbitPw${tag}${randomBytes(8).toString('hex')}`,
    fileSecret: `fileSecret${tag}${randomBytes(8).toString('hex')}`,
  };
  // The workdir as the docs ask for it: the tasker's, writable by the commands' user, sticky.
  chmodSync(temp.path, 0o755);
  workdir = join(temp.path, 'work');
  mkdirSync(join(workdir, 'loot'), { recursive: true });
  chmodSync(workdir, 0o1777);
  chmodSync(join(workdir, 'loot'), 0o1777);
  // A secret file only root may read (a Secret volume with defaultMode 0400).
  writeFileSync(join(temp.path, 'secret-file'), secrets['fileSecret']!, { mode: 0o400 });
  writeFileSync(join(workdir, 'attack.sh'), attackScript([join(temp.path, 'secret-file')]), { mode: 0o755 });
  writeFileSync(
    join(temp.path, 'jobs.sh'),
    ['# phase: setup (tasker)', 'bash attack.sh 2>&1 | tee loot/tasker-phase.txt', '# phase: attack', 'bash attack.sh 2>&1 | tee loot/worker-1.txt', 'bash attack.sh 2>&1 | tee loot/worker-2.txt', ''].join('\n'),
  );
});

afterEach(async () => {
  await stopAll(procs);
  await cleanupNamespace(services, ns, runIds);
  temp.cleanup();
});

/** The environment of the tasker and the worker: every secret, the Redis password in the URL flag. */
function secretEnv(): Record<string, string> {
  return { AMQP_URL: services.amqpUrl, TASKER_NAMESPACE: ns, TASKER_SIGNING_KEY: secrets['signingKey']!, RABBITMQ_PASSWORD: secrets['rabbitmqPassword']!, TASKER_LEASE_TTL: '2s', LOG_LEVEL: 'debug' };
}

function redisFlag(): string[] {
  const url = new URL(services.redisUrl);
  url.password = secrets['redisPassword']!;
  return ['--redis-url', url.toString()];
}

/** A distributed run of the attack: its tasker's output, the worker's, the loot. */
async function attack(commandUser: string | undefined, runId: string): Promise<{ tasker: string; worker: string; loot: string[] }> {
  const users: Record<string, string> = commandUser === undefined ? {} : { WORKER_COMMAND_USER: commandUser, TASKER_COMMAND_USER: commandUser };
  const worker = await readyWorker({ ...secretEnv(), ...users }, ['--workdir', workdir, '--concurrency', '2', ...redisFlag()]);
  procs.push(worker.proc);
  runIds.push(runId);
  const tasker = spawnTasker({ ...secretEnv(), ...users }, ['run', '--run-id', runId, '--workdir', workdir, ...redisFlag(), join(temp.path, 'jobs.sh')]);
  procs.push(tasker);
  const result = await tasker;
  expect(result.exitCode, result.all).toBe(0);
  const records = readResults(workdir, runId);
  expect(records.map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  expect(records.filter((r) => !r.worker.startsWith('tasker@')).length, 'two commands ran on the worker').toBe(2);
  const loot = ['tasker-phase', 'worker-1', 'worker-2'].map((name) => readFileSync(join(workdir, 'loot', `${name}.txt`), 'latin1'));
  await stopAll([worker.proc]);
  return { tasker: result.all ?? '', worker: worker.output(), loot };
}

describe.runIf(isRoot)('commands under another user cannot obtain a secret', () => {
  it('as nobody: no secret in any log, output, result or printed line; the commands ran as nobody and succeeded', async () => {
    const found = await attack('nobody', `cu-${ns}`);
    for (const loot of found.loot) {
      expect(loot).toContain(`uid=${nobody} gid=${nobody} groups=${nobody}`);
      // The attack got as far as it could: the tries are in its output, refused.
      expect(loot).toMatch(/\/proc\/1\/environ: Permission denied/);
      expect(loot).toMatch(/\/proc\/\d+\/environ: Permission denied/);
      expect(loot).toMatch(/\/proc\/\d+\/maps: Permission denied/);
      expect(loot).toMatch(/secret-file: Permission denied/);
    }
    expect(found.worker).toContain('commands run as another user');
    expect(found.tasker).toContain('commands run as another user');
    for (const file of filesUnder(workdir)) expect(leaksIn(file.text, secrets), file.path).toEqual([]);
    expect(leaksIn(found.tasker, secrets), 'tasker output').toEqual([]);
    expect(leaksIn(found.worker, secrets), 'worker output').toEqual([]);
  });

  it('without a command user, the same commands do read the secrets (so the test above can fail), and the processes warn', async () => {
    const found = await attack(undefined, `cu-own-${ns}`);
    const [taskerPhase = '', ...onWorker] = found.loot;
    expect(leaksIn(taskerPhase, secrets)).toEqual(expect.arrayContaining(['signingKey', 'rabbitmqPassword', 'fileSecret']));
    for (const loot of onWorker) {
      expect(loot).toContain('uid=0 ');
      expect(leaksIn(loot, secrets)).toEqual(expect.arrayContaining(['signingKey', 'rabbitmqPassword', 'fileSecret']));
    }
    // The flag's password is not on the command line (the process title hides it), but it is in memory.
    expect(onWorker.join('\n')).toMatch(/--redis-url redis:\/\/:\*\*\*@/);
    expect(leaksIn(onWorker.join('\n'), secrets)).toContain('redisPassword');
    expect(found.worker).toMatch(/commands run as this process's own user and can read TASKER_SIGNING_KEY, the RabbitMQ password, the Redis password through \/proc; set WORKER_COMMAND_USER/);
    expect(found.tasker).toMatch(/set TASKER_COMMAND_USER/);
  });

  it('a local run as nobody: the tasker\'s secrets stay out of reach too', async () => {
    writeFileSync(join(temp.path, 'local.sh'), 'bash attack.sh 2>&1 | tee loot/local.txt\nid -u\n');
    const result = await execa(process.execPath, [taskerBin, 'run', '--run-id', 'local', '--workdir', workdir, join(temp.path, 'local.sh')], {
      env: { AMQP_URL: '', TASKER_SIGNING_KEY: secrets['signingKey']!, RABBITMQ_PASSWORD: secrets['rabbitmqPassword']!, TASKER_COMMAND_USER: `${nobody}:${nobody}` },
      reject: false,
      all: true,
    });
    expect(result.exitCode, result.all).toBe(0);
    const logs = filesUnder(join(workdir, '.tasker', 'runs', 'local', 'logs')).map((f) => f.text).join('\n');
    expect(logs).toContain(`uid=${nobody}`);
    expect(logs).toMatch(/Permission denied/);
    expect(leaksIn(logs, secrets)).toEqual([]);
    expect(leaksIn(String(result.all), secrets)).toEqual([]);
  });
});

describe.runIf(isRoot)('the workdir under a command user', () => {
  it('one the tasker creates is given to the commands\' group, sticky; one that belongs to the command user is refused (exit 2)', async () => {
    const fresh = join(temp.path, 'new', 'work');
    writeFileSync(join(temp.path, 'out.sh'), 'mkdir -p out && id -u > out/uid\n');
    const env = { AMQP_URL: '', TASKER_COMMAND_USER: 'nobody' };
    const first = await execa(process.execPath, [taskerBin, 'run', '--workdir', fresh, join(temp.path, 'out.sh')], { env, reject: false, all: true });
    expect(first.exitCode, first.all).toBe(0);
    expect(readFileSync(join(fresh, 'out', 'uid'), 'utf8').trim()).toBe(String(nobody));
    const stat = statSync(fresh);
    expect([stat.uid, stat.gid, (stat.mode & 0o7777).toString(8)]).toEqual([0, nobody, '3775']);
    // A workdir of the command user's: commands could replace .tasker/ there.
    const theirs = join(temp.path, 'theirs');
    mkdirSync(theirs);
    chownSync(theirs, nobody, nobody);
    const refused = await execa(process.execPath, [taskerBin, 'run', '--workdir', theirs, join(temp.path, 'out.sh')], { env, reject: false, all: true });
    expect(refused.exitCode, refused.all).toBe(2);
    expect(String(refused.all)).toMatch(/belongs to the user commands run as \(TASKER_COMMAND_USER, uid 65534\)/);
    const worker = await execa(process.execPath, [workerBin, '--workdir', theirs], { env: { AMQP_URL: 'amqp://127.0.0.1:1', TASKER_SIGNING_KEY: testSigningKey, WORKER_COMMAND_USER: 'nobody' }, reject: false, all: true });
    expect(worker.exitCode, worker.all).toBe(2);
    expect(String(worker.all)).toMatch(/belongs to the user commands run as \(WORKER_COMMAND_USER/);
  });
});

describe.runIf(isRoot)('both executors run commands as the user, and stop them when they time out', () => {
  // The built executor (the spawn() helper is a separate program); SHELLOPTS in the commands'
  // environment makes it use the helper instead of bash runners.
  it.each([['bash runners', {}], ['the spawn() helper', { SHELLOPTS: 'errexit' }]])('%s', async (_, extraEnv) => {
    const built = (await import(new URL('../../dist/shared/exec/command-executor.js', import.meta.url).href)) as { createCommandExecutor: typeof CreateCommandExecutor };
    const executor = built.createCommandExecutor({ slots: 1, env: { ...process.env, ...extraEnv }, user: { uid: nobody, gid: nobody } });
    const logPath = join(workdir, 'logs', 'p1', 'c.1.log');
    const running = executor.start({ command: 'id -u; id -g; echo started; sleep 30', cwd: workdir, logPath, env: {}, timeoutMs: 1500, killGraceMs: 500 });
    const result = await running.result;
    expect(result.outcome, result.tail).toBe('timed-out');
    expect(result.tail).toContain(`${nobody}\n${nobody}\nstarted`);
    const dir = statSync(join(workdir, 'logs', 'p1'));
    expect([dir.gid, (dir.mode & 0o7777).toString(8)]).toEqual([nobody, '2775']);
  });
});

describe.runIf(isRoot)('a process that cannot switch users refuses to start (exit 2)', () => {
  const start = (prefix: string[], env: Record<string, string>) =>
    execa(prefix[0]!, [...prefix.slice(1), process.execPath, workerBin, '--workdir', workdir], { env: { AMQP_URL: 'amqp://127.0.0.1:1', TASKER_SIGNING_KEY: testSigningKey, ...env }, reject: false, all: true, timeout: 30_000 });

  it.each([
    ['an ordinary user', ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'], 'daemon', /this process \(uid 65534\) cannot start commands as daemon \(1:1\)/],
    ['root without CAP_KILL', ['capsh', '--drop=cap_kill', '--'], 'nobody', /cannot stop \(signal\) the commands of nobody/],
    ['root without CAP_SETUID', ['capsh', '--drop=cap_setuid', '--'], 'nobody', /cannot start commands as nobody/],
    ['its own user', ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'], 'nobody', /is this process's own user/],
  ])('%s', async (_, prefix, user, message) => {
    const args = prefix[0] === 'capsh' ? ['capsh', prefix[1]!, '--', '-c', `exec "$0" "$@"`] : prefix;
    const result = await start(args, { WORKER_COMMAND_USER: user });
    expect(result.exitCode, result.all).toBe(2);
    expect(String(result.all)).toMatch(message);
    expect(String(result.all)).toMatch(/WORKER_COMMAND_USER/);
  });
});

describe.skipIf(isRoot)('commands under another user (needs root)', () => {
  it('is tested only when the tests run as root, as CI does', () => undefined);
});
