import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { signatureHeader, signBody } from '../../shared/broker/signing.js';
import { readResults, tempDir } from '../helpers/cli.js';
import { cleanupNamespace, newNamespace, queueCounts, readyWorker, serviceEnv, spawnTasker, stopAll, waitFor, watchOutput, withChannel, type Proc } from '../helpers/distributed.js';

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

    const signedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L1', 'echo harmless')));
    const tamperedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L1', 'touch tampered.txt')));
    const forgedBody = Buffer.from(JSON.stringify(commandMessage('victim', 'f1-L2', 'touch forged.txt')));
    await withChannel(services.amqpUrl, async (channel) => {
      channel.sendToQueue(`${ns}.commands`, forgedBody, { persistent: true });
      channel.sendToQueue(`${ns}.commands`, tamperedBody, { persistent: true, headers: { [signatureHeader]: signBody(key, signedBody) } });
      // Signed, but with a key the workers do not have.
      channel.sendToQueue(`${ns}.commands`, forgedBody, { persistent: true, headers: { [signatureHeader]: signBody('another-key-another-key-another-key', forgedBody) } });
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    await waitFor('three messages dead-lettered', async () => (await queueCounts(services.amqpUrl, `${ns}.commands.dead`))?.messageCount === 3);
    expect(output.text().match(/message not authentic/g)).toHaveLength(3);
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
