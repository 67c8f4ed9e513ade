import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { signatureHeader, signMessage } from '../../shared/broker/signing.js';
import { readResults, tempDir } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, queueCounts, readyWorker, serviceEnv, spawnTasker, spawnWorker, stopAll, waitFor, watchOutput, withChannel, type Proc } from '../helpers/distributed.js';

/**
 * Signed commands: with TASKER_SIGNING_KEY on tasker and workers, a message published straight into
 * the work queue (forged: unsigned; tampered: signed, then changed) is dead-lettered, never run; and
 * a forged result on the run's queue is not counted.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const key = 'test-signing-key-0123456789abcdef0123456789';

let ns: string;
let dir: string;
let cleanup: () => void;
let procs: Proc[];
let runIds: string[];

beforeEach(() => {
  ns = newNamespace();
  const temp = tempDir('tasker-sign-');
  dir = temp.path;
  cleanup = temp.cleanup;
  procs = [];
  runIds = [];
});

afterEach(async () => {
  await stopAll(procs);
  await cleanupNamespace(services, ns, runIds);
  cleanup();
});

function commandMessage(runId: string, id: string, command: string): Record<string, unknown> {
  return { v: 1, kind: 'command', runId, phase: 'all', phaseIndex: 1, id, attempt: 1, command, file: 'jobs.sh', line: 1, timeoutMs: null, killGraceMs: 1000, replyTo: `${ns}.run.${runId}.done` };
}

describe('signed commands', () => {
  it('workers with a key run signed commands and dead-letter forged and tampered ones', async () => {
    const env = serviceEnv(services, ns, { TASKER_SIGNING_KEY: key });
    const worker = await readyWorker(env, ['--workdir', dir]);
    procs.push(worker.proc);
    const output = watchOutput(worker.proc);

    const work = { purpose: 'work', destination: 'run.victim' } as const;
    const signedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L1', 'echo harmless')));
    const tamperedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L1', 'touch tampered.txt')));
    const forgedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L2', 'touch forged.txt')));
    const movedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L3', 'touch moved.txt')));
    await withChannel(services.amqpUrl, async (channel) => {
      channel.publish(ns, 'run.victim', forgedBody, { persistent: true });
      channel.publish(ns, 'run.victim', tamperedBody, { persistent: true, headers: { [signatureHeader]: signMessage(key, signedBody, work) } });
      // Signed, but with a key the workers do not have.
      channel.publish(ns, 'run.victim', forgedBody, { persistent: true, headers: { [signatureHeader]: signMessage('another-key-another-key-another-key', forgedBody, work) } });
      // Signed with the key for run.victim, published into the queue under another key (its name).
      channel.sendToQueue(`${ns}.commands`, movedBody, { persistent: true, headers: { [signatureHeader]: signMessage(key, movedBody, work) } });
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    await waitFor('four messages dead-lettered', async () => (await queueCounts(services.amqpUrl, `${ns}.commands.dead`))?.messageCount === 4);
    expect(output.text().match(/message not authentic/g)).toHaveLength(4);
    expect(output.text()).toContain(`does not verify as work for ${ns}.commands`);
    expect(existsSync(join(dir, 'forged.txt'))).toBe(false);
    expect(existsSync(join(dir, 'tampered.txt'))).toBe(false);

    // The real tasker with the same key gets its commands run.
    const jobs = join(dir, 'jobs.sh');
    writeFileSync(jobs, 'echo one > one.txt\necho two > two.txt\nenv > env.txt\n');
    runIds.push('signed');
    const tasker = await spawnTasker(env, ['run', '--run-id', 'signed', '--workdir', dir, jobs]);
    expect(tasker.exitCode, tasker.all).toBe(0);
    expect(existsSync(join(dir, 'one.txt')) && existsSync(join(dir, 'two.txt'))).toBe(true);
    expect(existsSync(join(dir, 'forged.txt'))).toBe(false);
    // Commands never see the key (they could forge commands) nor the broker's and Redis's URLs.
    const commandEnv = readFileSync(join(dir, 'env.txt'), 'utf8');
    expect(commandEnv).toContain('TASKER_RUN_ID=signed');
    expect(commandEnv).not.toContain(key);
    expect(commandEnv).not.toMatch(/^(AMQP_URL|REDIS_URL)=/m);
  });

  it('a worker without the key cannot fool the tasker: a forged result is not counted', async () => {
    const env = serviceEnv(services, ns, { TASKER_SIGNING_KEY: key });
    const worker = await readyWorker(env, ['--workdir', dir]);
    procs.push(worker.proc);
    const jobs = join(dir, 'jobs.sh');
    writeFileSync(jobs, 'sleep 2; exit 3\n');
    runIds.push('forge-result');
    const tasker = spawnTasker(env, ['run', '--run-id', 'forge-result', '--workdir', dir, jobs]);
    procs.push(tasker);
    const taskerOutput = watchOutput(tasker);
    await waitFor('the command to start', () => taskerOutput.text().includes('run started'));
    const now = new Date().toISOString();
    const forged = {
      v: 1,
      kind: 'result',
      runId: 'forge-result',
      record: { id: 'f1-L1', phase: 'all', phaseIndex: 1, command: 'sleep 2; exit 3', file: jobs, line: 1, attempt: 1, outcome: 'succeeded', exitCode: 0, signal: null, startedAt: now, finishedAt: now, durationMs: 1, worker: 'forger', log: 'x' },
    };
    await withChannel(services.amqpUrl, async (channel) => {
      channel.sendToQueue(`${ns}.run.forge-result.done`, Buffer.from(JSON.stringify(forged)));
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    const done = await tasker;
    expect(done.exitCode, done.all).toBe(1);
    expect(done.all).toContain('not signed with TASKER_SIGNING_KEY');
    const results = readResults(dir, 'forge-result');
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ outcome: 'failed', exitCode: 3 });
    expect(results[0]?.worker).not.toBe('forger');
  });

  it('refuses a key that is too short, at start', async () => {
    const worker = await spawnTasker(serviceEnv(services, ns, { TASKER_SIGNING_KEY: 'short' }), ['run', '--workdir', dir, join(dir, 'none.sh')]);
    expect(worker.exitCode).toBe(2);
    expect(worker.all).toContain('TASKER_SIGNING_KEY is too short');
    expect(worker.all).not.toContain('short"');
  });
});

/** One run of `touch ran.txt` by a tasker and a worker with the environments given; what came of it. */
async function runWith(runId: string, taskerExtra: Record<string, string>, workerExtra: Record<string, string>) {
  const worker = await readyWorker(serviceEnv(services, ns, workerExtra), ['--workdir', dir]);
  procs.push(worker.proc);
  const jobs = join(dir, `${runId}.sh`);
  writeFileSync(jobs, 'touch ran.txt\n');
  runIds.push(runId);
  const tasker = await spawnTasker(serviceEnv(services, ns, taskerExtra), ['run', '--run-id', runId, '--workdir', dir, jobs]);
  return { tasker, workerOutput: worker.output(), results: readResults(dir, runId), ran: existsSync(join(dir, 'ran.txt')) };
}

describe('signing fails closed: a key on one side only, or two keys, never runs nor drops a command silently', () => {
  const other = 'another-test-signing-key-0123456789abcdef';
  const off = { TASKER_SIGNING_KEY: '', TASKER_SIGNING: 'off' };

  it('a tasker and a worker with different keys: refused, reported failed, naming the key', async () => {
    const { tasker, workerOutput, results, ran } = await runWith('two-keys', { TASKER_SIGNING_KEY: key }, { TASKER_SIGNING_KEY: other });
    expect(tasker.exitCode, tasker.all).toBe(1);
    expect(ran).toBe(false);
    expect(workerOutput).toMatch(/"problem":"signature does not verify as work for run\.two-keys[^\n]*message not authentic: dead-lettered, not run/);
    expect(results.map((r) => r.outcome)).toEqual(['dead-lettered']);
    expect(results[0]?.reason).toMatch(/the signature did not verify there \(do all workers have this tasker's TASKER_SIGNING_KEY\?/);
  });

  it('a tasker with a key and a worker with TASKER_SIGNING=off: the worker refuses signed commands', async () => {
    const { tasker, workerOutput, results, ran } = await runWith('worker-off', { TASKER_SIGNING_KEY: key }, off);
    expect(workerOutput).toContain('TASKER_SIGNING=off: running unsigned commands');
    expect(tasker.exitCode, tasker.all).toBe(1);
    expect(ran).toBe(false);
    expect(workerOutput).toMatch(/signed message, and this worker runs unsigned \(TASKER_SIGNING=off\): its tasker has a TASKER_SIGNING_KEY[^\n]*message not authentic/);
    expect(results[0]).toMatchObject({ outcome: 'dead-lettered', reason: expect.stringMatching(/TASKER_SIGNING_KEY.*TASKER_SIGNING=off refuses signed commands/) });
  });

  it('a tasker with TASKER_SIGNING=off and a worker with a key: the worker refuses unsigned commands', async () => {
    const { tasker, workerOutput, results, ran } = await runWith('tasker-off', off, { TASKER_SIGNING_KEY: key });
    expect(tasker.all).toContain('TASKER_SIGNING=off: commands are published unsigned');
    expect(tasker.exitCode, tasker.all).toBe(1);
    expect(ran).toBe(false);
    expect(workerOutput).toMatch(/"problem":"unsigned message"[^\n]*TASKER_SIGNING_KEY[^\n]*message not authentic/);
    expect(results[0]).toMatchObject({ outcome: 'dead-lettered', reason: expect.stringMatching(/this tasker runs unsigned \(TASKER_SIGNING=off\) and the workers have a TASKER_SIGNING_KEY/) });
  });

  it('both with TASKER_SIGNING=off: unsigned by an explicit choice, said at start, and it runs', async () => {
    const { tasker, workerOutput, ran } = await runWith('both-off', off, off);
    expect(tasker.exitCode, tasker.all).toBe(0);
    expect(ran).toBe(true);
    expect(tasker.all).toMatch(/"level":40[^\n]*TASKER_SIGNING=off/);
    expect(workerOutput).toMatch(/"level":40[^\n]*TASKER_SIGNING=off/);
  });

  it('neither a key nor the opt-out: tasker and worker refuse to start (exit 2), naming TASKER_SIGNING_KEY and TASKER_SIGNING=off', async () => {
    const env = serviceEnv(services, ns, { TASKER_SIGNING_KEY: '' });
    const [tasker, worker] = await Promise.all([spawnTasker(env, ['run', '--workdir', dir, join(dir, 'none.sh')]), spawnWorker(env, ['--workdir', dir])]);
    for (const start of [tasker, worker]) {
      expect(start.exitCode, start.all).toBe(2);
      expect(start.all).toMatch(/TASKER_SIGNING_KEY is not set: with AMQP_URL, the tasker and every worker need the same signing key/);
      expect(start.all).toContain('TASKER_SIGNING=off');
    }
  });
});
