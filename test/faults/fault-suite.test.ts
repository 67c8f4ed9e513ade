import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { restartBroker, withConsumerTimeout, type Broker } from '../helpers/broker.js';
import { readEvents, readResults, readSummary, writeEventScript, type Event, type ResultLine } from '../helpers/cli.js';
import { breakableBroker } from '../helpers/private-rabbitmq.js';
import { cleanupNamespace, freePort, newNamespace, queueCounts, serviceEnv, spawnTasker, spawnWorker, waitFor, watchOutput, withChannel, type Proc, type Services } from '../helpers/distributed.js';

/**
 * The fault suite: each scenario is a real distributed run of a few hundred commands on several
 * worker processes, and one fault injected a third of the way through. Every command records its
 * start and its end (ev.sh). After the run, the same checks for every scenario:
 *
 * - the run ends with the expected exit code;
 * - no command is lost: every command of the plan has a final result;
 * - exactly one recorded success per succeeded command, and the expected failures reported;
 * - no command that had finished ran again (no start after its end);
 * - the workdir was not cleaned (a file put there before the run is still there).
 *
 * One table row per scenario is printed at the end (`npm run test:faults` runs only this file).
 * `npm test` runs it against a RabbitMQ node of its own beside the machine's (the machine's broker
 * is never stopped or reconfigured), `npm run test:rabbitmq4` against RabbitMQ 4 in a container.
 */

/**
 * The broker the scenarios restart and reconfigure, through its own rabbitmqctl: a RabbitMQ node
 * of the suite's own, never the machine's shared one (or the container the RabbitMQ 4 run started
 * for this file). Redis is the shared one; the scenarios that kill Redis start their own.
 */
let services: Services;
let broker: Broker;
let ownBroker: Awaited<ReturnType<typeof breakableBroker>> | undefined;

beforeAll(async () => {
  ownBroker = await breakableBroker({ amqpUrl: inject('amqpUrl'), broker: inject('broker') });
  services = { amqpUrl: ownBroker.amqpUrl, redisUrl: inject('redisUrl') };
  broker = ownBroker.broker;
  process.stdout.write(`Fault suite against ${broker.name}\n`);
}, 60_000);
afterAll(() => ownBroker?.stop());
const commandCount = 240;
const defaultScenarioTimeoutMs = 150_000;
const workerCount = 3;

interface Row {
  scenario: string;
  commands: number;
  exit: string;
  lost: number;
  doubleSuccess: number;
  rerunAfterFinish: number;
  rerunUnrecorded: number;
  workdirKept: boolean;
  seconds: string;
  verdict: string;
}
const rows: Row[] = [];

afterAll(() => {
  const header = ['scenario', 'commands', 'exit (expected)', 'lost', 'double successes', 'reruns after recorded finish', 'reruns, end not yet recorded', 'workdir kept', 's', 'verdict'];
  const lines = rows.map((r) => [r.scenario, String(r.commands), r.exit, String(r.lost), String(r.doubleSuccess), String(r.rerunAfterFinish), String(r.rerunUnrecorded), r.workdirKept ? 'yes' : 'NO', r.seconds, r.verdict]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const table = [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join('\n');
  process.stdout.write(`\nFault suite\n${table}\n`);
  if (process.env['FAULT_TABLE'] !== undefined) writeFileSync(process.env['FAULT_TABLE'], `${table}\n`);
});

/** Every process below `pid` (children, grandchildren, ...), from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const visit = (parent: number): void => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** A pod dying: the process and everything it started, at once. */
function killTree(pid: number): void {
  for (const target of [pid, ...descendants(pid)]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Worker processes kept at `desired`, like a Deployment: one that dies is replaced. */
class WorkerPool {
  readonly all: Proc[] = [];
  readonly live = new Set<Proc>();
  desired: number;
  private stopped = false;
  readonly output: (() => string)[] = [];

  constructor(
    private readonly env: Record<string, string>,
    private readonly args: string[],
    count: number,
  ) {
    this.desired = count;
  }

  async fill(): Promise<void> {
    while (!this.stopped && this.live.size < this.desired) {
      const proc = spawnWorker(this.env, this.args);
      const out = watchOutput(proc);
      this.all.push(proc);
      this.output.push(out.text);
      this.live.add(proc);
      void proc.then(() => {
        this.live.delete(proc);
        // Restarted after a short back-off, as Kubernetes restarts a pod.
        if (!this.stopped) setTimeout(() => void this.fill(), 500);
      });
      await waitFor('a worker to be ready', () => out.text().includes('waiting for commands') || proc.exitCode !== null, 20_000);
    }
  }

  pick(): Proc {
    const proc = [...this.live][0];
    if (proc === undefined) throw new Error('no live worker');
    return proc;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const proc of this.all) if (proc.exitCode === null && proc.signalCode === null) killTree(proc.pid!);
    await Promise.all(this.all.map((proc) => proc.catch(() => undefined)));
  }
}

interface RunContext {
  dir: string;
  ns: string;
  env: Record<string, string>;
  pool: WorkerPool;
  tasker: Proc;
  taskerArgs: string[];
  /** Replaces the tasker (after a kill): the final exit code is the last tasker's. */
  restartTasker(): void;
  events(): Event[];
  ends(): number;
}

interface Scenario {
  name: string;
  /** Lines added to the simulate phase, a third of the way in. */
  specialLines?: string[];
  taskerArgs?: string[];
  env?: Record<string, string>;
  expectExit: number;
  /** Command ids (by their line's text) expected to be reported failed. */
  expectFailed?: (results: ResultLine[]) => string[];
  inject?: (ctx: RunContext) => Promise<void>;
  /** After the run: evidence that the fault really happened (so the row cannot pass vacuously). */
  verify?: (ctx: RunContext, results: ResultLine[]) => void;
  /**
   * A worker pool besides the default: the workers serve only it, and the simulate and aggregate
   * phases go to it (--pool). Default: the default pool.
   */
  pool?: string;
  /** Commands in the simulate phase (default 240) and workers (default 3). */
  commands?: number;
  workers?: number;
  /** Sleep of each simulate command, in seconds (default 0.05). */
  commandSeconds?: number;
  /** Around the whole scenario (e.g. lower the consumer timeout, start a private Redis). */
  around?: (run: (env: Record<string, string>) => Promise<void>) => Promise<void>;
  timeoutMs?: number;
  /**
   * A second run of `commands` simulate commands on the same workers (same namespace and workdir,
   * its own run id), started once the first has `after` commands finished; checked as the first
   * is, and expected to exit 0. `atFault` is how many of its commands had finished when the fault
   * came (set by the suite).
   */
  alongside?: { commands: number; after: number; atFault?: number; runId?: string; victim?: string; firstAtFault?: number };
}

function jobsLines(special: string[], count: number, seconds: number): string[] {
  const lines = ['# phase: setup (tasker)', 'mkdir -p out', 'bash ev.sh 0', '# phase: simulate'];
  for (let i = 0; i < count; i++) {
    if (i === Math.floor(count / 3)) lines.push(...special);
    lines.push(`bash ev.sh ${seconds}`);
  }
  lines.push('# phase: aggregate', 'bash ev.sh 0');
  return lines;
}

/** What the checks found for one run of a scenario. */
interface RunCheck {
  planned: number;
  exitCode: number | undefined;
  lost: number;
  doubleSuccess: number;
  rerunAfterFinish: number;
  rerunUnrecorded: number;
  failedIds: string[];
}

/** The checks of one run, from its results and its commands' events (the run's own, by run id). */
function checkRun(dir: string, runId: string, planned: number, exitCode: number | undefined, events: Event[]): RunCheck {
  const results = readResults(dir, runId);
  const final = new Map<string, ResultLine>();
  for (const r of results) if (final.get(r.id)?.outcome !== 'succeeded') final.set(r.id, r);
  const successes = new Map<string, number>();
  for (const r of results) if (r.outcome === 'succeeded') successes.set(r.id, (successes.get(r.id) ?? 0) + 1);
  // "Finished" is what the system recorded: a start after a recorded result's end would be a
  // rerun of finished work. A worker killed after its command's process ended but before the
  // result was recorded (a window of milliseconds) cannot know it finished: that attempt runs
  // again, and is counted apart.
  const recordedEnd = new Map<string, bigint>();
  for (const r of results) {
    if (r.outcome !== 'succeeded' && r.outcome !== 'failed') continue;
    const at = BigInt(Date.parse(r.finishedAt)) * 1_000_000n;
    if (!recordedEnd.has(r.id) || at < recordedEnd.get(r.id)!) recordedEnd.set(r.id, at);
  }
  const starts = events.filter((e) => e.event === 'start');
  const rerunAfterFinish = new Set(starts.filter((e) => recordedEnd.has(e.id) && e.at > recordedEnd.get(e.id)! + 1_000_000n).map((e) => e.id)).size;
  const firstEnd = new Map<string, bigint>();
  for (const e of events) if (e.event === 'end' && !firstEnd.has(e.id)) firstEnd.set(e.id, e.at);
  return {
    planned,
    exitCode,
    lost: planned - final.size,
    doubleSuccess: [...successes.values()].filter((count) => count > 1).length,
    rerunAfterFinish,
    rerunUnrecorded: new Set(starts.filter((e) => firstEnd.has(e.id) && e.at > firstEnd.get(e.id)!).map((e) => e.id)).size - rerunAfterFinish,
    failedIds: [...final.values()].filter((r) => r.outcome !== 'succeeded').map((r) => r.id).sort(),
  };
}

/** The scenario's row: the sums over its runs, and the exit codes in run order. */
function rowOf(scenario: Scenario, checks: RunCheck[], workdirKept: boolean, ok: boolean, started: number): Row {
  const sum = (key: 'planned' | 'lost' | 'doubleSuccess' | 'rerunAfterFinish' | 'rerunUnrecorded'): number => checks.reduce((total, check) => total + check[key], 0);
  return {
    scenario: scenario.name,
    commands: sum('planned'),
    exit: `${checks.map((check) => check.exitCode).join('+')} (${checks.map((_, i) => (i === 0 ? scenario.expectExit : 0)).join('+')})`,
    lost: sum('lost'),
    doubleSuccess: sum('doubleSuccess'),
    rerunAfterFinish: sum('rerunAfterFinish'),
    rerunUnrecorded: sum('rerunUnrecorded'),
    workdirKept,
    seconds: ((Date.now() - started) / 1000).toFixed(1),
    verdict: ok ? 'pass' : 'FAIL',
  };
}

/** The second run of a scenario with `alongside`: started on the same workers once the first has begun. */
interface SecondRun {
  runId: string;
  planned: number;
  tasker: Proc;
}

async function startSecondRun(scenario: Scenario, ctx: RunContext, firstRunId: string, timeoutMs: number): Promise<SecondRun | undefined> {
  if (scenario.alongside === undefined) return undefined;
  const count = scenario.alongside.commands;
  const runId = `${firstRunId}-b`;
  const jobs = join(ctx.dir, 'jobs-b.sh');
  writeFileSync(jobs, `${jobsLines([], count, scenario.commandSeconds ?? 0.05).join('\n')}\n`);
  await waitFor('the first run under way', () => ctx.ends() >= scenario.alongside!.after, 60_000);
  const tasker = spawnTasker(ctx.env, ['run', '--run-id', runId, '--workdir', ctx.dir, '--progress-interval', '2s', jobs], timeoutMs);
  return { runId, planned: count + 3, tasker };
}

async function runScenario(scenario: Scenario, extraEnv: Record<string, string>): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'tasker-fault-'));
  const ns = newNamespace();
  const env = serviceEnv(services, ns, { TASKER_LEASE_TTL: '2s', ...scenario.env, ...extraEnv });
  writeEventScript(dir);
  writeFileSync(join(dir, 'keep-me.txt'), 'put there before the run');
  const jobs = join(dir, 'jobs.sh');
  const count = scenario.commands ?? commandCount;
  writeFileSync(jobs, `${jobsLines(scenario.specialLines ?? [], count, scenario.commandSeconds ?? 0.05).join('\n')}\n`);
  const runId = `fault-${ns}`;
  const poolArgs = scenario.pool === undefined ? { tasker: [], worker: [] } : { tasker: ['--pool', `simulate=${scenario.pool}`, '--pool', `aggregate=${scenario.pool}`], worker: ['--pool', scenario.pool] };
  const taskerArgs = ['run', '--run-id', runId, '--workdir', dir, '--progress-interval', '2s', ...poolArgs.tasker, ...(scenario.taskerArgs ?? []), jobs];
  const pool = new WorkerPool(env, ['--workdir', dir, '--concurrency', '2', ...poolArgs.worker], scenario.workers ?? workerCount);
  // The tasker may take as long as its scenario (the combined one: minutes on a busy machine).
  const taskerTimeoutMs = scenario.timeoutMs ?? defaultScenarioTimeoutMs;
  let tasker: Proc | undefined;
  let second: SecondRun | undefined;
  try {
    await pool.fill();
    tasker = spawnTasker(env, taskerArgs, taskerTimeoutMs);
    const events = (): Event[] => readEvents(join(dir, 'events.txt')).filter((e) => e.runId === runId);
    const ctx: RunContext = {
      dir,
      ns,
      env,
      pool,
      tasker,
      taskerArgs,
      restartTasker: () => {
        ctx.tasker = spawnTasker(env, taskerArgs, taskerTimeoutMs);
      },
      events,
      ends: () => events().filter((e) => e.event === 'end').length,
    };
    second = await startSecondRun(scenario, ctx, runId, taskerTimeoutMs);
    await waitFor('a third of the commands to finish', () => ctx.ends() >= count / 3, 60_000);
    if (second !== undefined) {
      const secondEnds = (): number => readEvents(join(dir, 'events.txt')).filter((e) => e.runId === second!.runId && e.event === 'end').length;
      await waitFor('the second run under way', () => secondEnds() > 5, 60_000);
      scenario.alongside!.atFault = secondEnds();
      scenario.alongside!.runId = second.runId;
    }
    await scenario.inject?.(ctx);
    const done = await ctx.tasker;
    const secondDone = second === undefined ? undefined : await second.tasker;
    // Let replaced workers settle before looking at what happened to the pool.
    await sleep(100);

    // The checks, for each run.
    const checks = [checkRun(dir, runId, count + (scenario.specialLines?.length ?? 0) + 3, done.exitCode, events())];
    if (second !== undefined) checks.push(checkRun(dir, second.runId, second.planned, secondDone!.exitCode, readEvents(join(dir, 'events.txt')).filter((e) => e.runId === second!.runId)));
    const results = readResults(dir, runId);
    const workdirKept = existsSync(join(dir, 'keep-me.txt'));
    const expectedFailed = (scenario.expectFailed?.(results) ?? []).sort();
    const expectedExits = checks.map((_, i) => (i === 0 ? scenario.expectExit : 0));
    const clean = checks.every((check, i) => check.exitCode === expectedExits[i] && check.lost === 0 && check.doubleSuccess === 0 && check.rerunAfterFinish === 0 && JSON.stringify(check.failedIds) === JSON.stringify(i === 0 ? expectedFailed : []));
    rows.push(rowOf(scenario, checks, workdirKept, clean && workdirKept, started));
    const logs = [done.all, secondDone?.all ?? ''];
    for (const [i, check] of checks.entries()) {
      const which = i === 0 ? 'the run' : 'the second run';
      expect(check.exitCode, `${which}: ${logs[i]!.slice(-3000)}`).toBe(expectedExits[i]);
      expect(check.lost, `${which}: commands without a final result`).toBe(0);
      expect(check.doubleSuccess, `${which}: commands with more than one recorded success`).toBe(0);
      expect(check.rerunAfterFinish, `${which}: commands that ran again after their result was recorded`).toBe(0);
      expect(check.failedIds, which).toEqual(i === 0 ? expectedFailed : []);
      expect(readSummary(dir, i === 0 ? runId : second!.runId).totals).toMatchObject({ commands: check.planned });
    }
    expect(workdirKept).toBe(true);
    scenario.verify?.(ctx, results);
  } catch (error) {
    if (!rows.some((r) => r.scenario === scenario.name)) {
      rows.push({ scenario: scenario.name, commands: 0, exit: '-', lost: -1, doubleSuccess: -1, rerunAfterFinish: -1, rerunUnrecorded: -1, workdirKept: existsSync(join(dir, 'keep-me.txt')), seconds: ((Date.now() - started) / 1000).toFixed(1), verdict: 'FAIL' });
    }
    throw error;
  } finally {
    if (tasker !== undefined && tasker.exitCode === null) killTree(tasker.pid!);
    if (second !== undefined && second.tasker.exitCode === null) killTree(second.tasker.pid!);
    await second?.tasker;
    await pool.stop();
    await cleanupNamespace({ ...services, redisUrl: env['REDIS_URL']! }, ns, second === undefined ? [runId] : [runId, second.runId], scenario.pool === undefined ? [] : [scenario.pool]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Redis of its own, with persistence (append-only file, as in k8s/), that a scenario restarts. */
class PrivateRedis {
  private proc: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'tasker-fault-redis-'));

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
    this.proc = proc;
    const failed = new Promise<never>((_, reject) => proc.once('error', (error) => reject(new Error(`the Redis restart scenario needs redis-server on PATH: ${error.message}`))));
    await Promise.race([failed, waitFor('the private Redis', () => portAnswers(this.port), 10_000)]);
  }

  /** SIGKILL: no flush at exit; what is in the append-only file (fsync always) is all it keeps. */
  kill(): Promise<void> {
    return this.end('SIGKILL');
  }

  /** SIGTERM: Redis flushes its append-only file and exits, as on a pod's restart. */
  stop(): Promise<void> {
    return this.end('SIGTERM');
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill(signal);
    await exited;
  }

  async dispose(): Promise<void> {
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
let privateRedis: PrivateRedis | undefined;

/** Evidence that the combined scenario's faults happened. */
const combined = { frozen: 0, redisKilled: false, brokerRestarted: false };

/** Freezes a worker (SIGSTOP) for `ms`, then thaws it; churn leaves it alone meanwhile. */
async function freeze(ctx: RunContext, frozen: Set<Proc>, ms: number): Promise<void> {
  const victim = [...ctx.pool.live].find((proc) => !frozen.has(proc));
  if (victim === undefined) return;
  frozen.add(victim);
  victim.kill('SIGSTOP');
  await sleep(ms);
  victim.kill('SIGCONT');
  frozen.delete(victim);
  combined.frozen++;
}

/**
 * All the faults at once, as a busy cluster sees them: every 4 s a worker pod dies and a new one
 * starts, until the run ends; one worker frozen past its leases (5 s, lease TTL 2 s), another
 * past the broker's heartbeat timeout (30 s, heartbeat 10 s); Redis SIGKILLed and restarted from
 * its append-only file; RabbitMQ stopped and started.
 */
async function combinedFaults(ctx: RunContext): Promise<void> {
  Object.assign(combined, { frozen: 0, redisKilled: false, brokerRestarted: false });
  const frozen = new Set<Proc>();
  let running = true;
  void ctx.tasker.finally(() => (running = false));
  const churn = (async () => {
    while (running) {
      await sleep(4000);
      const victim = [...ctx.pool.live].find((proc) => !frozen.has(proc));
      if (running && victim !== undefined) killTree(victim.pid!);
    }
  })();
  const faults = [
    freeze(ctx, frozen, 5000),
    (async () => {
      await sleep(500);
      await freeze(ctx, frozen, 30_000);
    })(),
    (async () => {
      await sleep(3000);
      await privateRedis!.kill();
      combined.redisKilled = true;
      await sleep(1000);
      await privateRedis!.start();
    })(),
    (async () => {
      await sleep(8000);
      await restartBroker(broker);
      combined.brokerRestarted = true;
    })(),
  ];
  await Promise.all(faults);
  await churn;
}

/** What the bundle scenarios did, for their verify step. */
const bundleFault = { victim: '', ids: [] as string[], finished: [] as string[], duplicated: [] as string[] };

/** The bundles a worker received (its debug log) and the commands it finished. */
function bundlesOf(output: string): { bundles: string[][]; finished: Set<string> } {
  const bundles: string[][] = [];
  const finished = new Set<string>();
  for (const line of output.split('\n')) {
    let entry: { msg?: string; ids?: string[]; commandId?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue; // not a log line, or one still being written
    }
    if (entry.msg === 'bundle received' && entry.ids !== undefined) bundles.push(entry.ids);
    if (entry.msg === 'command finished' && entry.commandId !== undefined) finished.add(entry.commandId);
  }
  return { bundles, finished };
}

/** SIGKILLs a worker that has finished some of a bundle's commands and not the others. */
async function killMidBundle(ctx: RunContext): Promise<void> {
  await waitFor(
    'a worker in the middle of a bundle',
    () => {
      for (const [index, proc] of ctx.pool.all.entries()) {
        if (!ctx.pool.live.has(proc)) continue;
        const { bundles, finished } = bundlesOf(ctx.pool.output[index]!());
        const partial = bundles.find((ids) => ids.some((id) => finished.has(id)) && ids.some((id) => !finished.has(id)));
        if (partial === undefined) continue;
        killTree(proc.pid!);
        Object.assign(bundleFault, { victim: `${hostname()}-${proc.pid}`, ids: partial, finished: partial.filter((id) => finished.has(id)) });
        return true;
      }
      return false;
    },
    30_000,
  );
}

/** Copies a bundle waiting in the work queue (a real one, as the tasker published it): it is delivered twice. */
async function duplicateABundle(ctx: RunContext): Promise<void> {
  // A confirm channel: a plain publish just before the connection closes can be dropped by the broker.
  const connection = await amqp.connect(services.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    const held: amqp.GetMessage[] = [];
    try {
      for (let tries = 0; tries < 50 && bundleFault.duplicated.length === 0; tries++) {
        const message = await channel.get(`${ctx.ns}.commands`, { noAck: false });
        if (message === false) {
          await sleep(50);
          continue;
        }
        held.push(message);
        const body = JSON.parse(message.content.toString()) as { kind: string; commands?: { id: string }[] };
        if (body.kind !== 'bundle') continue;
        // Published again as the tasker published it (exchange, routing key, headers): its signature is for that key.
        channel.publish(message.fields.exchange, message.fields.routingKey, message.content, { persistent: true, headers: message.properties.headers as Record<string, unknown> });
        await channel.waitForConfirms();
        bundleFault.duplicated = body.commands!.map((command) => command.id);
      }
    } finally {
      for (const message of held) channel.nack(message, false, true);
    }
  } finally {
    await connection.close();
  }
  expect(bundleFault.duplicated.length, 'a bundle was found in the queue and copied').toBeGreaterThan(1);
  // Both copies were taken (the copy may come last, after the run's end): each of its commands was
  // found finished (or running) by one of them, and not run again.
  const handledTwice = (id: string): boolean => ctx.pool.output.some((text) => new RegExp(`"commandId":"${id}"[^\\n]*(duplicate delivery of a finished command|running elsewhere)`).test(text()));
  await waitFor('both copies of the bundle handled', () => bundleFault.duplicated.every(handledTwice), 90_000).catch((error: unknown) => {
    if (process.env['FAULT_DEBUG'] !== undefined) writeFileSync(process.env['FAULT_DEBUG'], `${bundleFault.duplicated.join(' ')}\n${ctx.pool.output.map((text) => text()).join('\n=====\n')}`);
    throw error;
  });
}

/** Run B of the two-run scenario; atFault is filled in by the suite. */
const secondRun: NonNullable<Scenario['alongside']> = { commands: 120, after: 20 };

const scenarios: Scenario[] = [
  {
    name: 'SIGKILL one worker (process tree)',
    expectExit: 0,
    inject: async (ctx) => killTree(ctx.pool.pick().pid!),
    verify: (ctx) => expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL')).toHaveLength(1),
  },
  {
    name: 'SIGKILL one worker while two runs share the workers',
    // Run B (120 commands) starts once run A has 20 done; the kill comes with a third of A done
    // and B under way (A's commands are long enough for both to share the workers a while).
    alongside: secondRun,
    commandSeconds: 0.2,
    expectExit: 0,
    // The victim: a worker that has run commands of run B (so the kill hits both runs' work).
    inject: async (ctx) => {
      const resultsOfB = join(ctx.dir, '.tasker', 'runs', secondRun.runId!, 'results.jsonl');
      const ranB = (): Set<string> => new Set(existsSync(resultsOfB) ? readResults(ctx.dir, secondRun.runId!).map((r) => r.worker) : []);
      let victim: Proc | undefined;
      await waitFor('a live worker that ran commands of run B', () => (victim = [...ctx.pool.live].find((proc) => ranB().has(`${hostname()}-${proc.pid}`))) !== undefined, 30_000);
      const endsOfB = readEvents(join(ctx.dir, 'events.txt')).filter((e) => e.runId === secondRun.runId && e.event === 'end').length;
      Object.assign(secondRun, { victim: `${hostname()}-${victim!.pid}`, firstAtFault: ctx.ends(), atFault: endsOfB });
      killTree(victim!.pid!);
    },
    verify: (ctx) => {
      expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL')).toHaveLength(1);
      expect(secondRun.victim, 'the killed worker had run commands of run B').toBeDefined();
      // Run A still had simulate commands to do at the kill (240 of them, after its set-up command).
      expect(secondRun.firstAtFault, 'run A still had commands to do at the kill').toBeLessThan(241);
      // Both runs had work going when the worker died: B had started and not finished.
      // Its set-up command and 120 simulate commands: fewer ends means simulate commands still to do.
      expect(secondRun.atFault, 'run B still had commands to do at the kill').toBeLessThan(121);
    },
  },
  {
    name: 'SIGKILL one worker of a non-default pool',
    pool: 'highmem',
    expectExit: 0,
    inject: async (ctx) => killTree(ctx.pool.pick().pid!),
    verify: (ctx, results) => {
      expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL')).toHaveLength(1);
      // Only the pool's workers (each started with --pool highmem) ran the workers phases.
      const poolWorkers = ctx.pool.all.map((proc) => `${hostname()}-${proc.pid}`);
      const ranOn = new Set(results.filter((r) => r.phase !== 'setup').map((r) => r.worker));
      expect([...ranOn].every((id) => poolWorkers.includes(id)), `ran on ${[...ranOn].join(', ')}`).toBe(true);
      expect(ctx.pool.output.every((text) => text().includes(`"pools":["highmem"]`))).toBe(true);
    },
  },
  {
    name: 'SIGKILL a worker in the middle of a bundle',
    taskerArgs: ['--bundle-size', '16'],
    env: { LOG_LEVEL: 'debug' },
    commandSeconds: 0.1,
    expectExit: 0,
    inject: killMidBundle,
    verify: (_ctx, results) => {
      const successes = (id: string) => results.filter((r) => r.id === id && r.outcome === 'succeeded');
      // What the victim finished of its bundle was recorded by it, once, and not run again; the rest ran elsewhere.
      for (const id of bundleFault.finished) expect(successes(id).map((r) => r.worker), id).toEqual([bundleFault.victim]);
      const rest = bundleFault.ids.filter((id) => !bundleFault.finished.includes(id));
      expect(rest.length).toBeGreaterThan(0);
      expect(rest.some((id) => successes(id)[0]?.worker !== bundleFault.victim), 'some of the bundle ran on another worker').toBe(true);
    },
  },
  {
    name: 'a bundle delivered twice',
    taskerArgs: ['--bundle-size', '8'],
    commands: 480,
    expectExit: 0,
    inject: duplicateABundle,
    timeoutMs: 240_000,
  },
  {
    name: 'SIGKILL all workers, fresh ones start',
    expectExit: 0,
    inject: async (ctx) => {
      for (const proc of [...ctx.pool.live]) killTree(proc.pid!);
    },
    verify: (ctx) => expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL')).toHaveLength(workerCount),
  },
  {
    name: 'SIGKILL the tasker, restart same run id',
    expectExit: 0,
    inject: async (ctx) => {
      killTree(ctx.tasker.pid!);
      await ctx.tasker;
      await sleep(500);
      ctx.restartTasker();
    },
  },
  {
    name: 'SIGTERM one worker (scale-down)',
    expectExit: 0,
    inject: async (ctx) => {
      ctx.pool.desired--;
      const victim = ctx.pool.pick();
      victim.kill('SIGTERM');
      const result = await victim;
      expect(result.exitCode, 'a drained worker exits 0').toBe(0);
    },
  },
  {
    name: 'RabbitMQ restart',
    expectExit: 0,
    inject: () => restartBroker(broker),
    timeoutMs: 240_000,
  },
  {
    name: 'Redis restart (with persistence)',
    expectExit: 0,
    around: async (run) => {
      privateRedis = new PrivateRedis(await freePort());
      try {
        await privateRedis.start();
        await run({ REDIS_URL: privateRedis.url });
      } finally {
        await privateRedis.dispose();
        privateRedis = undefined;
      }
    },
    inject: async () => {
      await privateRedis!.stop();
      await sleep(1000);
      await privateRedis!.start();
    },
  },
  {
    name: 'a command kills its own worker',
    // The first time it runs it SIGKILLs the worker running it (as an out-of-memory kill would);
    // run again elsewhere, it succeeds.
    // $PPID is the worker's executor helper; its parent (field 4 of /proc/PID/stat) is the worker.
    specialLines: ['test -e out/killed-once || { touch out/killed-once; kill -9 "$(cut -d " " -f 4 /proc/$PPID/stat)"; sleep 5; }; bash ev.sh 0'],
    expectExit: 0,
    verify: (ctx) => expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL'), 'the worker killed by its command').toHaveLength(1),
  },
  {
    name: 'a command kills its worker every time (poison)',
    // Dead-lettered after TASKER_DELIVERY_LIMIT (here 3) starts without a result, not deliveries.
    specialLines: ['kill -9 "$(cut -d " " -f 4 /proc/$PPID/stat)"; sleep 5'],
    env: { TASKER_DELIVERY_LIMIT: '3' },
    taskerArgs: ['--keep-going'],
    expectExit: 1,
    expectFailed: (results) => [...new Set(results.filter((r) => r.command.startsWith('kill -9')).map((r) => r.id))],
    verify: (ctx, results) => {
      const poison = results.filter((r) => r.command.startsWith('kill -9'));
      expect(poison.map((r) => r.outcome)).toEqual(['dead-lettered']);
      expect(poison[0]?.reason).toMatch(/^started 3 time\(s\) without a result on workers? [^;]+; the command may be killing its worker/);
      expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL'), 'one worker killed per start').toHaveLength(3);
    },
    timeoutMs: 180_000,
  },
  {
    name: 'combined: worker churn, Redis SIGKILL, broker restart, two frozen workers',
    commands: 1500,
    workers: 4,
    commandSeconds: 0.15,
    around: async (run) => {
      privateRedis = new PrivateRedis(await freePort());
      try {
        await privateRedis.start();
        // A short AMQP heartbeat, so that a worker frozen for 30 s is one the broker gives up on.
        await run({ REDIS_URL: privateRedis.url, AMQP_URL: `${services.amqpUrl}${services.amqpUrl.includes('?') ? '&' : '?'}heartbeat=10` });
      } finally {
        await privateRedis.dispose();
        privateRedis = undefined;
      }
    },
    inject: (ctx) => combinedFaults(ctx),
    expectExit: 0,
    verify: (ctx, results) => {
      expect(ctx.pool.all.filter((proc) => proc.signalCode === 'SIGKILL').length, 'workers killed by the churn').toBeGreaterThanOrEqual(3);
      // What ran more than once (its worker was lost or frozen mid-run) says so in its record.
      const startsById = new Map<string, number>();
      for (const e of ctx.events()) if (e.event === 'start') startsById.set(e.id, (startsById.get(e.id) ?? 0) + 1);
      const ranAgain = [...startsById].filter(([, n]) => n > 1).map(([id]) => id);
      const named = new Set(results.filter((r) => r.outcome === 'succeeded' && (r.starts ?? 1) > 1).map((r) => r.id));
      expect(ranAgain.filter((id) => !named.has(id)), 'commands that ran twice without saying so').toEqual([]);
      const summary = readSummary(ctx.dir, `fault-${ctx.ns}`) as { ranAgain?: { count: number; commands: { id: string }[] } };
      expect(summary.ranAgain?.count ?? 0, 'the summary counts what ran more than once').toBe(named.size);
      expect(new Set(summary.ranAgain?.commands.map((c) => c.id) ?? [])).toEqual(named);
      expect(combined.frozen, 'workers frozen and thawed').toBe(2);
      expect(combined.redisKilled && combined.brokerRestarted).toBe(true);
    },
    timeoutMs: 420_000,
  },
  {
    name: 'malformed message in the work queue',
    expectExit: 0,
    inject: async (ctx) => {
      await withChannel(services.amqpUrl, async (channel) => {
        channel.sendToQueue(`${ctx.ns}.commands`, Buffer.from('{"v":1,"kind":"command","command":"touch out/pwned"'), { persistent: true });
        await sleep(100);
      });
      await waitFor('the malformed message dead-lettered', async () => (await queueCounts(services.amqpUrl, `${ctx.ns}.commands.dead`))?.messageCount === 1);
      expect(existsSync(join(ctx.dir, 'out', 'pwned'))).toBe(false);
    },
  },
  {
    name: 'command longer than a lowered consumer timeout',
    specialLines: ['bash ev.sh 4'],
    expectExit: 0,
    verify: (ctx, results) => {
      expect(ctx.pool.output.some((text) => /PRECONDITION_FAILED|consumer channel closed/.test(text())), 'the broker closed a consumer channel').toBe(true);
      expect(results.filter((r) => r.command === 'bash ev.sh 4').map((r) => r.outcome)).toEqual(['succeeded']);
    },
    around: (run) => withConsumerTimeout(broker, 1500, () => run({})),
  },
  {
    name: 'command that never ends, under --timeout',
    specialLines: ['bash ev.sh 3600'],
    taskerArgs: ['--timeout', '3s', '--kill-grace', '1s', '--keep-going'],
    expectExit: 1,
    expectFailed: (results) => [...new Set(results.filter((r) => r.command === 'bash ev.sh 3600').map((r) => r.id))],
    verify: (_ctx, results) => expect(results.filter((r) => r.command === 'bash ev.sh 3600').map((r) => r.outcome)).toEqual(['timed-out']),
  },
];

/**
 * TASKER_FAULT_SCENARIOS (a regular expression): only the scenarios whose name matches run, the
 * others are reported skipped. The RabbitMQ 4 run (vitest.rabbitmq4.config.ts) sets it to the
 * scenarios where the broker does the work: its restarts, timeouts, delivery limits, dead letters.
 */
const selected = new RegExp(process.env['TASKER_FAULT_SCENARIOS'] ?? '');

describe('fault suite', () => {
  for (const scenario of scenarios) {
    if (!selected.test(scenario.name)) {
      it.skip(`${scenario.name} (not in TASKER_FAULT_SCENARIOS)`, () => undefined);
      continue;
    }
    it(
      scenario.name,
      async () => {
        if (scenario.around === undefined) await runScenario(scenario, {});
        else await scenario.around((env) => runScenario(scenario, env));
      },
      scenario.timeoutMs ?? defaultScenarioTimeoutMs,
    );
  }
});
