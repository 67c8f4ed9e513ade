import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rabbitmqctl, restartBroker, withConsumerTimeout } from '../helpers/broker.js';
import { breakableBroker } from '../helpers/private-rabbitmq.js';
import { readEvents, readResults, readSummary, repoRoot, type Event } from '../helpers/cli.js';
import {
  publishWork,
  queueCounts,
  readyWorker,
  registerTestRun,
  spawnTasker,
  spawnWorker,
  useTestNamespace,
  waitFor,
  watchOutput,
  withChannel,
  type Proc,
} from '../helpers/distributed.js';

/**
 * End-to-end distributed runs: the built tasker and several worker processes, against the real
 * RabbitMQ and Redis, each test in its own namespace (queue names and Redis keys). Run against the
 * machine's RabbitMQ by `npm test`, and against RabbitMQ 4 in a container by `npm run test:rabbitmq4`.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
/** The broker at amqpUrl; the tests that reconfigure or restart a broker take one of their own (breakableBroker). */
const broker = inject('broker');

const ctx = useTestNamespace(services, 'tasker-dist-');

function events(): Event[] {
  return readEvents(join(ctx.dir, 'events.txt'));
}

function jobs(name: string, lines: string[]): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function workers(count: number, args: string[] = [], env: Record<string, string> = {}): Promise<Proc[]> {
  const started = await Promise.all(Array.from({ length: count }, () => readyWorker({ ...ctx.env, ...env }, ['--workdir', ctx.dir, ...args])));
  const procs = started.map((w) => w.proc);
  ctx.procs.push(...procs);
  return procs;
}

async function addWorkers(count: number, args: string[] = []): Promise<void> {
  const started = await workers(count, args);
  expect(started).toHaveLength(count);
}

function tasker(runId: string, args: string[], env: Record<string, string> = {}): Proc {
  ctx.runIds.push(runId);
  const proc = spawnTasker({ ...ctx.env, ...env }, ['run', '--run-id', runId, '--workdir', ctx.dir, '--progress-interval', '1s', ...args]);
  ctx.procs.push(proc);
  return proc;
}

describe('distributed runs', () => {
  it('runs phases in order across several workers, tasker phases in the tasker, and cleans up its queue', async () => {
    await addWorkers(3);
    const lines = ['# phase: setup (tasker)', 'bash ev.sh 0', 'bash ev.sh 0', '# phase: sims'];
    for (let i = 0; i < 12; i++) lines.push(`bash ev.sh 0.${(i % 3) + 1}`);
    lines.push('# phase: report', 'bash ev.sh 0', 'bash ev.sh 0');
    const result = await tasker('order', [jobs('jobs.sh', lines)]);
    expect(result.exitCode, result.all).toBe(0);

    const all = events();
    expect(all.filter((e) => e.event === 'end')).toHaveLength(16);
    const phaseOf = (id: string): number => {
      const line = Number(id.split('-L')[1]);
      return line <= 3 ? 1 : line <= 16 ? 2 : 3;
    };
    for (const phase of [1, 2]) {
      const lastEnd = all.filter((e) => e.event === 'end' && phaseOf(e.id) === phase).reduce((max, e) => (e.at > max ? e.at : max), 0n);
      const firstStart = all.filter((e) => e.event === 'start' && phaseOf(e.id) === phase + 1).reduce((min, e) => (e.at < min ? e.at : min), 2n ** 62n);
      expect(firstStart > lastEnd, `phase ${phase + 1} started before phase ${phase} finished`).toBe(true);
    }
    // The sims ran on more than one worker process (each spawns through its own helper); setup ran in the tasker.
    const simWorkers = new Set(all.filter((e) => e.event === 'start' && phaseOf(e.id) === 2).map((e) => e.parent));
    expect(simWorkers.size).toBeGreaterThan(1);
    const records = readResults(ctx.dir, 'order');
    expect(records.filter((r) => r.phase === 'setup').every((r) => r.worker.startsWith('tasker@'))).toBe(true);
    expect(records.filter((r) => r.phase === 'sims').every((r) => !r.worker.startsWith('tasker@'))).toBe(true);
    // Each attempt's log was written by its worker into the shared workdir.
    for (const record of records) expect(readFileSync(join(ctx.dir, record.log), 'utf8')).toContain(`output of ${record.id}`);
    // The run's own queue is gone; the work queue is empty.
    expect(await queueCounts(services.amqpUrl, `${ctx.ns}.run.order.done`)).toBeUndefined();
    expect((await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount).toBe(0);
  });

  it('reports failures: exit 1, failed command with exit code, log and output tail; later phases skipped', async () => {
    await addWorkers(2);
    const result = await tasker('fails', [jobs('jobs.sh', ['# phase: work', 'bash ev.sh 0 0', 'bash ev.sh 0 5', '# phase: after', 'bash ev.sh 0'])]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('exit 5');
    expect(result.stdout).toContain('| output of f1-L3');
    const summary = readSummary(ctx.dir, 'fails');
    expect(summary.phases.map((p) => p.status)).toEqual(['failed', 'skipped']);
    expect(summary.failed.map((f) => [f.id, f.exitCode])).toEqual([['f1-L3', 5]]);
  });

  it('retries a failed command through the queue', async () => {
    await addWorkers(2);
    const result = await tasker('retry', ['--retries', '2', '--retry-delay', '10ms', jobs('jobs.sh', ['n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 1 ]'])]);
    expect(result.exitCode, result.all).toBe(0);
    expect(readResults(ctx.dir, 'retry').map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'failed'],
      [2, 'succeeded'],
    ]);
  });

  it('never runs a finished command again when its message is delivered twice', async () => {
    const runId = 'dup';
    ctx.runIds.push(runId);
    const message = {
      v: 1,
      kind: 'command',
      runId,
      phase: 'p',
      phaseIndex: 1,
      id: 'f1-L1',
      attempt: 1,
      command: 'bash ev.sh 0.3',
      file: 'jobs.sh',
      line: 1,
      timeoutMs: null,
      killGraceMs: 1000,
      replyTo: `${ctx.ns}.run.${runId}.done`,
    };
    await addWorkers(2); // declares the topology
    // The run's directory, as a tasker makes it before publishing: workers run only commands of runs they see.
    mkdirSync(join(ctx.dir, '.tasker', 'runs', runId), { recursive: true });
    // ... and registers the run in Redis: workers run commands of runs that exist only.
    await registerTestRun(services, ctx.ns, runId);
    await withChannel(services.amqpUrl, async (channel) => {
      await channel.assertQueue(`${ctx.ns}.run.${runId}.done`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    });
    // Signed as the tasker signs it (the tests' key), and published twice.
    const body = Buffer.from(JSON.stringify(message));
    await publishWork(services.amqpUrl, ctx.ns, `run.${runId}`, body);
    await publishWork(services.amqpUrl, ctx.ns, `run.${runId}`, body);
    await waitFor('two results', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.run.${runId}.done`))?.messageCount === 2);
    expect(events().filter((e) => e.event === 'start')).toHaveLength(1);
  });

  it('runs again, on another worker, a command whose worker was SIGKILLed mid-run; nothing is lost', async () => {
    const [first] = await workers(1);
    const lines = ['# phase: work'];
    for (let i = 0; i < 6; i++) lines.push('bash ev.sh 1');
    const run = tasker('wkill', [jobs('jobs.sh', lines)]);
    await waitFor('a command to start', () => events().some((e) => e.event === 'start'));
    await addWorkers(1);
    // Kill the first worker and the command it runs, as a pod's death would.
    const victim = events().find((e) => e.event === 'start')!;
    // The command's parent is the worker's executor helper, a child of the worker.
    const helperParent = Number(readFileSync(`/proc/${victim.parent}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    expect(helperParent).toBe(first!.pid);
    first!.kill('SIGKILL');
    try {
      process.kill(-victim.pid, 'SIGKILL');
    } catch {
      // the command's group is already gone
    }
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    const ends = events().filter((e) => e.event === 'end');
    expect(new Set(ends.map((e) => e.id)).size).toBe(6);
    expect(ends.filter((e) => e.id === victim.id)).toHaveLength(1);
    expect(readSummary(ctx.dir, 'wkill').phases[0]).toMatchObject({ succeeded: 6, failed: 0 });
  });

  it('a worker SIGKILLed alone takes its running command with it: the rerun elsewhere is the only one', async () => {
    const [first] = await workers(1);
    // Long enough to outlast the second worker's start on a loaded machine: the kill must find it running.
    const run = tasker('wkill-alone', [jobs('jobs.sh', ['# phase: work', 'bash ev.sh 4', 'bash ev.sh 4'])]);
    await waitFor('a command to start', () => events().some((e) => e.event === 'start'));
    await addWorkers(1);
    const victim = events().find((e) => e.event === 'start')!;
    first!.kill('SIGKILL'); // only the worker: its helper must not leave the command running
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // an orphan would have ended by now
    expect(events().filter((e) => e.event === 'end' && e.id === victim.id)).toHaveLength(1);
    expect(events().filter((e) => e.event === 'start' && e.id === victim.id)).toHaveLength(2);
  });

  it('refuses a new run whose id Redis already knows from another workdir, running nothing', async () => {
    await addWorkers(1);
    expect((await tasker('reused', [jobs('a.sh', ['bash ev.sh 0'])])).exitCode).toBe(0);
    const elsewhere = join(ctx.dir, 'elsewhere');
    const result = await spawnTasker(ctx.env, ['run', '--run-id', 'reused', '--workdir', elsewhere, jobs('b.sh', ['touch ran.txt'])]);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toContain('already known to Redis');
    expect(existsSync(join(elsewhere, 'ran.txt'))).toBe(false);
    expect(existsSync(join(elsewhere, '.tasker'))).toBe(false);
  });

  it('a SIGKILLed tasker, started again with the same run id, finishes without re-running or double-counting', async () => {
    await addWorkers(2);
    const lines = ['# phase: many'];
    for (let i = 0; i < 24; i++) lines.push('bash ev.sh 0.2');
    lines.push('# phase: last', 'bash ev.sh 0');
    const file = jobs('jobs.sh', lines);
    const first = tasker('tkill', [file]);
    await waitFor('8 commands to finish', () => events().filter((e) => e.event === 'end').length >= 8);
    first.kill('SIGKILL');
    await first;
    const second = await tasker('tkill', [file]);
    expect(second.exitCode, second.all).toBe(0);
    const ends = events().filter((e) => e.event === 'end');
    const perId = new Map<string, number>();
    for (const e of ends) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
    expect(perId.size).toBe(25);
    expect([...perId.values()].every((count) => count === 1)).toBe(true);
    const succeeded = readResults(ctx.dir, 'tkill').filter((r) => r.outcome === 'succeeded');
    expect(succeeded).toHaveLength(25);
    expect(new Set(succeeded.map((r) => r.id)).size).toBe(25);
    const summary = readSummary(ctx.dir, 'tkill');
    expect(summary.phases.reduce((sum, p) => sum + p.succeeded + p.alreadyDone, 0)).toBe(25);
  });

  /**
   * The tests that lower the consumer timeout and restart the broker: on a RabbitMQ node of their
   * own, never the machine's shared one (in the RabbitMQ 4 run, on the container started for them).
   */
  describe('on a broker the tests may break', () => {
    let own: Awaited<ReturnType<typeof breakableBroker>> & { env: Record<string, string> };
    beforeAll(async () => {
      const node = await breakableBroker({ amqpUrl: services.amqpUrl, broker });
      own = { ...node, env: { AMQP_URL: node.amqpUrl } };
    }, 60_000);
    afterAll(() => own?.stop());

    it('a command longer than the broker consumer timeout runs once and is counted', async () => {
      // The broker under test's own consumer timeout, lowered through its rabbitmqctl.
      await withConsumerTimeout(own.broker, 1500, async () => {
        const [worker] = await workers(1, [], own.env);
        const output = watchOutput(worker!);
        const result = await tasker('longcmd', [jobs('jobs.sh', ['bash ev.sh 5'])], own.env);
        expect(result.exitCode, result.all).toBe(0);
        expect(events().filter((e) => e.event === 'start')).toHaveLength(1);
        expect(readResults(ctx.dir, 'longcmd').map((r) => r.outcome)).toEqual(['succeeded']);
        expect(output.text()).toMatch(/PRECONDITION_FAILED|consumer channel closed/);
      });
    });

    it('survives a RabbitMQ restart in the middle of a run: every command runs once, nothing is lost', async () => {
      rabbitmqctl(own.broker, ['status']); // fails at once, saying which broker, when it cannot be restarted
      expect(await workers(2, [], own.env)).toHaveLength(2);
      const lines = ['# phase: many'];
      for (let i = 0; i < 30; i++) lines.push('bash ev.sh 0.2');
      lines.push('# phase: last', 'bash ev.sh 0');
      const run = tasker('restart', [jobs('jobs.sh', lines)], own.env);
      await waitFor('10 commands to finish', () => events().filter((e) => e.event === 'end').length >= 10);
      await restartBroker(own.broker);
      const result = await run;
      expect(result.exitCode, result.all).toBe(0);
      const perId = new Map<string, number>();
      for (const e of events().filter((ev) => ev.event === 'start')) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
      expect(perId.size).toBe(31);
      expect([...perId.entries()].filter(([, count]) => count !== 1)).toEqual([]);
      expect(readResults(ctx.dir, 'restart').filter((r) => r.outcome === 'succeeded')).toHaveLength(31);
      for (const worker of ctx.procs.slice(0, 2)) expect(worker.exitCode).toBeNull();
    }, 180_000);
  });

  it('dead-letters a malformed message instead of running it or crash-looping, and keeps working', async () => {
    const [worker] = await workers(1);
    const output = watchOutput(worker!);
    // Signed with the key (an unsigned one is refused before it is read: signing.test.ts), malformed all the same.
    await publishWork(services.amqpUrl, ctx.ns, 'run.x', Buffer.from('rm -rf / # not JSON'));
    await publishWork(services.amqpUrl, ctx.ns, 'run.x', Buffer.from(JSON.stringify({ v: 1, kind: 'command', runId: 'x' })));
    await waitFor('both messages dead-lettered', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands.dead`))?.messageCount === 2);
    expect(output.text()).toContain('invalid message');
    expect(worker!.exitCode).toBeNull();
    const result = await tasker('after-poison', [jobs('jobs.sh', ['bash ev.sh 0'])]);
    expect(result.exitCode, result.all).toBe(0);
  });

  it('two runs at once share the workers without mixing their results', async () => {
    await addWorkers(3);
    const a = jobs('a.sh', Array.from({ length: 15 }, () => 'bash ev.sh 0.05'));
    const b = jobs('b.sh', Array.from({ length: 25 }, () => 'bash ev.sh 0.05'));
    const [ra, rb] = await Promise.all([tasker('run-a', [a]), tasker('run-b', [b])]);
    expect(ra.exitCode, ra.all).toBe(0);
    expect(rb.exitCode, rb.all).toBe(0);
    const resultsA = readResults(ctx.dir, 'run-a');
    const resultsB = readResults(ctx.dir, 'run-b');
    expect(resultsA).toHaveLength(15);
    expect(resultsB).toHaveLength(25);
    expect(resultsA.every((r) => r.phase === 'a.sh')).toBe(true);
    expect(resultsB.every((r) => r.phase === 'b.sh')).toBe(true);
    const byRun = (runId: string): number => events().filter((e) => e.event === 'end' && e.runId === runId).length;
    expect([byRun('run-a'), byRun('run-b')]).toEqual([15, 25]);
  });

  it('says when no worker consumes, and carries on when one arrives', async () => {
    const run = tasker('noworker', ['--stall-warning', '500ms', jobs('jobs.sh', ['bash ev.sh 0'])]);
    const out = watchOutput(run);
    await waitFor('a warning that no worker consumes', () => out.text().includes('no worker of pool default is consuming'), 20_000);
    await addWorkers(1);
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
  });

  it('5 long commands start at once on 5 idle workers, though one of them ran short ones before: none is held ahead', async () => {
    // 40 short commands turn worker A's lookahead on (a second consumer). A tasker phase then
    // waits while 4 more workers start. Before, idle A took two of the long phase's commands and
    // held one for a second before handing it back: it started a second late or more. Now an idle
    // worker holds nothing ahead, and a message of a phase not known to be short is not held.
    const a = await readyWorker({ ...ctx.env, LOG_LEVEL: 'debug' }, ['--workdir', ctx.dir]);
    ctx.procs.push(a.proc);
    const gate = ['# phase: gate (tasker)', 'touch gate-reached', 'while [ ! -e go ]; do sleep 0.05; done'];
    const lines = ['# phase: short', ...Array.from({ length: 40 }, () => 'true'), ...gate, '# phase: long', ...Array.from({ length: 5 }, () => 'bash ev.sh 4')];
    const run = tasker('ahead', [jobs('jobs.sh', lines)]);
    await waitFor('the tasker phase between the short and the long one', () => existsSync(join(ctx.dir, 'gate-reached')));
    expect(a.output()).toContain('"prefetch":2,"msg":"lookahead changed"');
    const others = await workers(4);
    writeFileSync(join(ctx.dir, 'go'), '');
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    const long = readResults(ctx.dir, 'ahead').filter((record) => record.phase === 'long');
    expect(long.map((record) => [record.outcome, record.attempt])).toEqual(Array.from({ length: 5 }, () => ['succeeded', 1]));
    expect(new Set(long.map((record) => record.worker)).size).toBe(1 + others.length);
    const starts = long.map((record) => Date.parse(record.startedAt));
    expect(Math.max(...starts) - Math.min(...starts), 'spread of the long commands\' starts (ms)').toBeLessThan(1000);
    expect(a.output()).not.toContain('waited over a second behind long ones');
  });

  it('rabbitmqctl list_queues shows a worker as 1 consumer, 2 while it holds one ahead, as the README, docs/operators.md and the guide say', async () => {
    // What the docs promise an operator: `consumers` is 1 per worker, 2 for a busy worker whose
    // recent commands were short (its lookahead consumer, worker/lookahead.ts), 1 once idle.
    const worker = await readyWorker({ ...ctx.env, LOG_LEVEL: 'debug' }, ['--workdir', ctx.dir, '--concurrency', '2']);
    ctx.procs.push(worker.proc);
    const consumers = async (): Promise<number> => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))!.consumerCount;
    expect(await consumers()).toBe(1);
    const run = tasker('consumers', [jobs('jobs.sh', Array.from({ length: 200 }, (_, index) => `echo ${index}`))]);
    const seen = new Set<number>();
    while (run.exitCode === null) seen.add(await consumers());
    const result = await run;
    expect(result.exitCode, result.all).toBe(0);
    expect([...seen].every((count) => count === 1 || count === 2), [...seen].join(',')).toBe(true);
    // Idle now: the lookahead is off (if it was ever on), so 1.
    await waitFor('the lookahead consumer to be cancelled', async () => (await consumers()) === 1);
    expect(readResults(ctx.dir, 'consumers')).toHaveLength(200);

    const operators = readFileSync(join(repoRoot, 'docs', 'operators.md'), 'utf8');
    const row = /^\| `consumers` \|.*\|$/m.exec(operators)?.[0] ?? '';
    expect(row).toContain('1 per worker, 2 per busy worker whose recent commands were short');
    expect(operators).toContain('N workers show as N to 2N `consumers`');
    expect(readFileSync(join(repoRoot, 'README.md'), 'utf8')).toContain('N workers show as N to 2N `consumers`');
    const guide = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
    expect(guide).toMatch(/`consumers`: 1 per worker, 2 per busy worker whose recent commands all took under a second[^|]*N workers show as N to 2N/);
  });

  it('rabbitmqctl list_consumers and list_connections name each worker and tasker, as the README says', async () => {
    const [worker] = await workers(1);
    const run = tasker('named', [jobs('jobs.sh', ['bash ev.sh 3'])]);
    await waitFor('the command to start', () => events().some((e) => e.event === 'start'));
    const workerId = `${hostname()}-${worker!.pid}`;
    const consumers = rabbitmqctl(broker, ['list_consumers', '--quiet', '--no-table-headers', 'queue_name', 'consumer_tag'], 30_000).split('\n');
    expect(consumers).toContain(`${ctx.ns}.commands\t${ctx.ns}.worker-${workerId}.default.commands`);
    expect(consumers).toContain(`${ctx.ns}.run.named.done\t${ctx.ns}.tasker-named.results`);
    const connections = rabbitmqctl(broker, ['list_connections', '--quiet', '--no-table-headers', 'client_properties'], 30_000);
    expect(connections).toContain(`{"connection_name","ns=${ctx.ns} role=worker worker=${workerId} host=${hostname()} pools=default"}`);
    expect(connections).toMatch(new RegExp(`\\{"connection_name","ns=${ctx.ns} role=tasker run=named host=${hostname()} pid=\\d+"\\}`));
    expect((await run).exitCode).toBe(0);
  });

  it('a worker on SIGTERM finishes its command and exits 0; past the drain deadline it requeues it', async () => {
    const [worker] = await workers(1, ['--drain-timeout', '5s']);
    const run = tasker('drain', [jobs('jobs.sh', ['bash ev.sh 1', 'bash ev.sh 30'])]);
    await waitFor('a command to start', () => events().some((e) => e.event === 'start'));
    worker!.kill('SIGTERM');
    const stopped = await worker!;
    expect(stopped.exitCode, stopped.all).toBe(0);
    const firstId = events().find((e) => e.event === 'start')!.id;
    expect(events().some((e) => e.event === 'end' && e.id === firstId)).toBe(true);

    // A worker whose drain deadline passes kills its command and gives it back to the queue.
    const [impatient] = await workers(1, ['--drain-timeout', '300ms']);
    await waitFor('the second command to start', () => events().filter((e) => e.event === 'start').length >= 2);
    impatient!.kill('SIGTERM');
    expect((await impatient!).exitCode).toBe(0);
    await waitFor('the command back in the queue', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands`))?.messageCount === 1);
    run.kill('SIGKILL');
  });

  it('tasker status shows what runs where; tasker purge refuses a live run and cleans a finished one', async () => {
    await addWorkers(1);
    // f1-L1 runs until the test creates "go": the run is live for as long as the test needs.
    const run = tasker('ops', ['--progress-interval', '500ms', jobs('jobs.sh', ['bash ev.sh 0; while [ ! -e go ]; do sleep 0.05; done', 'bash ev.sh 0'])]);
    await waitFor('a command to start', () => events().some((e) => e.event === 'start'));
    // What runs is what the workers' heartbeats say: the worker's next beat (within a second or so) shows it.
    const statusNow = (): Proc => spawnTasker(ctx.env, ['status', 'ops']);
    let status = await statusNow();
    await waitFor('status to show the running command', async () => /f1-L1 +on /.test(status.stdout) || /f1-L1 +on /.test((status = await statusNow()).stdout));
    expect(status.exitCode, status.all).toBe(0);
    expect(status.stdout).toContain('Run ops: running');
    expect(status.stdout).toMatch(/f1-L1 +on /);
    expect(status.stdout).toContain(`work queue ${ctx.ns}.commands`);
    expect(status.stdout).toContain('Workers (1)');
    const json = JSON.parse((await spawnTasker(ctx.env, ['status', '--json'])).stdout) as { runId: string; running: { id: string }[] };
    expect(json.runId).toBe('ops');
    expect(json.running.map((r) => r.id)).toEqual(['f1-L1']);

    const refused = await spawnTasker(ctx.env, ['purge', 'ops']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('in progress');
    writeFileSync(join(ctx.dir, 'go'), '');
    expect((await run).exitCode).toBe(0);
    // A finished run shows its final counts, not those of its last heartbeat.
    const finished = await spawnTasker(ctx.env, ['status', 'ops']);
    expect(finished.stdout).toMatch(/finished/);
    expect(finished.stdout).toContain('commands: 2/2 done, 0 failed');
    expect(finished.stdout).toContain('now in phase 1/1 jobs.sh');

    const purged = await spawnTasker(ctx.env, ['purge', 'ops']);
    expect(purged.exitCode, purged.all).toBe(0);
    expect(purged.stdout).toContain('Purged run ops');
    const gone = await spawnTasker(ctx.env, ['status', 'ops']);
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr).toContain('no run "ops"');
  });

  it('exits 2 with one clear message, running nothing, when RabbitMQ or Redis cannot be used', async () => {
    const file = jobs('jobs.sh', ['touch ran.txt']);
    const cases: [Record<string, string>, RegExp][] = [
      [{ AMQP_URL: services.amqpUrl.replace(/\/\/([^:]+):[^@]*@/, '//$1:wrong-password@') }, /refused the user name or password/],
      [{ AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }, /cannot reach RabbitMQ/],
      [{ AMQP_URL: 'http://example' }, /AMQP_URL must start with amqp/],
      [{ REDIS_URL: 'redis://127.0.0.1:1' }, /cannot reach Redis/],
    ];
    for (const [env, message] of cases) {
      const result = await spawnTasker({ ...ctx.env, ...env }, ['run', '--workdir', ctx.dir, file]);
      expect(result.exitCode, result.all).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain('wrong-password');
      expect(existsSync(join(ctx.dir, 'ran.txt'))).toBe(false);
      expect(existsSync(join(ctx.dir, '.tasker'))).toBe(false);
    }
  });

  it('--exit-when-idle makes a worker exit 0 once there is no work', async () => {
    const worker = spawnWorker(ctx.env, ['--workdir', ctx.dir, '--exit-when-idle', '1s']);
    ctx.procs.push(worker);
    const result = await worker;
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toContain('idle');
  });
});
