import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { createAmqpSession, type AmqpSession, type Consumer, type DeliveryHandler } from '../../shared/broker/amqp-session.js';
import { declareTopology, onceOnly, reportMissingPoolQueues } from '../../shared/broker/amqp-topology.js';
import { names as namesFor, type Names } from '../../shared/config/names.js';
import type { Executor } from '../../shared/exec/executor-contract.js';
import { logConfigWarnings, type Logger } from '../../shared/observe/logger.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import { readPoolDepths } from '../../shared/broker/amqp-pool-depths.js';
import { readPoolDemand } from '../../shared/state/pool-demand.js';
import type { RunStore } from '../../shared/state/run-store.js';
import type { WorkerConfig } from '../config.js';
import { createAttemptControl } from '../flow/attempt-control.js';
import { createCommandSlots, type CommandSlots } from '../flow/command-slots.js';
import { createLookahead } from '../flow/lookahead.js';
import { createMessageIntake } from '../flow/message-intake.js';
import { createRunningCommands, type RunningCommands } from '../flow/running-commands.js';
import { handleMessage } from '../message/handle-message.js';
import { createRunDirectoryCheck } from '../message/run-directory-check.js';
import type { WorkerMetrics } from '../ports.js';
import { startHeartbeat } from './heartbeat.js';
import { startRunCancels } from './run-cancels.js';
import { lookInWorkdir } from './look-in-workdir.js';
import { createMessagePorts } from './message-ports.js';
import { announcePresence, type Presence } from './redis-presence.js';
import { createS3OnDemand } from './s3-on-demand.js';
import { createWorkerStop } from './shutdown.js';
import type { UsageRelay } from './usage-relay.js';
import type { Placement } from '../../shared/state/placement.js';

/**
 * The worker's wiring: connects, builds the message pipeline on its ports and the flow control,
 * then consumes its pools' work queues; `done` resolves with the exit code once it has stopped.
 */

export interface WorkerHandle {
  /** Resolves with the exit code once the worker has stopped. */
  done: Promise<number>;
  /** Starts a graceful shutdown (idempotent); `force` kills running commands at once. */
  shutdown(reason: string, force?: boolean): Promise<void>;
  /** Ready to take commands: connected to RabbitMQ, consuming, not draining (the pod's readiness). */
  readiness(): { ok: boolean; detail: string };
}

export interface WorkerDeps {
  logger: Logger;
  executor: Executor;
  metrics?: WorkerMetrics | undefined;
  /** Where this worker runs, recorded with each result. Default: not recorded. */
  placement?: Placement;
  /** The executor's memory samples, to be written to Redis once connected. Default: none written. */
  usage?: UsageRelay;
}

export async function startWorker(config: WorkerConfig, deps: WorkerDeps): Promise<WorkerHandle> {
  const { logger, executor, metrics, placement } = deps;
  const names = namesFor(config.namespace);
  const workdir = resolve(config.workdir);
  const workerId = `${hostname()}-${process.pid}`;
  const { store, session } = await connect(config, names, workerId, logger);

  const running = createRunningCommands();
  metrics?.trackInFlight(() => running.size);
  // What the pools it serves have to run, read at each scrape: the autoscaler asks any pod.
  metrics?.trackPools(() => readPoolDepths(session, names, config.pools));
  metrics?.trackDemand({ pools: () => config.pools, read: (pool) => readPoolDemand(store, pool) });
  const presence = await announcePresence(config.redisUrl, names, workerId, logger, config.redisTls);
  const runDirectories = createRunDirectoryCheck({ workdir, look: lookInWorkdir(workdir), logger });
  const worker = { id: workerId, host: hostname(), pid: process.pid, concurrency: config.concurrency, pools: config.pools, workdir, startedAt: new Date().toISOString() };
  const heartbeat = await startHeartbeat({ store, running, worker, presenceUp: () => presence.upSinceMs() !== undefined, unseenRuns: () => runDirectories.unseenRuns(), logger }).catch(
    closeOnFailure({ store, session, presence }),
  );
  const s3 = createS3OnDemand(config.s3, logger);
  deps.usage?.attach({ store, workerId, inPod: placement?.pod !== undefined, logger });
  const ports = createMessagePorts({ placement, workerId, workdir, leaseTtlMs: config.leaseTtlMs, startLimit: config.deliveryLimit, signingKey: config.signingKey, names, store, presence, session, executor, s3, runDirectories, logger, metrics });

  // Flow control: one intake for every consumer of the pools' queues, the slots they share.
  const queues = config.pools.map((pool) => names.poolQueue(pool));
  const pools = config.pools.map((pool) => ({ queue: names.poolQueue(pool), pool }));
  const tagOf = (pool: string, extra: number | undefined): string => names.workerConsumerTag(workerId, pool, extra);
  const intake = createMessageIntake({ consume: (prefetch, handler, extra) => consumePools(session, pools, prefetch, handler, (pool) => tagOf(pool, extra)), concurrency: config.concurrency, logger, metrics });
  const slots = createCommandSlots(config.concurrency);
  const lookahead = createLookahead({ concurrency: config.concurrency, slots, running, logger, extra: intake.extra });
  const control = createAttemptControl({ slots, running, runningChanged: () => heartbeat.soon(), lookahead, extra: intake.extra, metrics });
  // An idle worker holds nothing ahead: a new phase's first messages go one per idle worker.
  const consumer = await intake.open((delivery) => handleMessage(delivery.content, ports, control, delivery), () => lookahead.idle()).catch(closeOnFailure({ store, session, heartbeat, presence }));
  logStart(config, { workdir, workerId, queues }, logger);
  const runCancels = startRunCancels({ store, running, intervalMs: 1000, logger });

  const { done, shutdown } = createWorkerStop(
    { workerId, running, executor, slots, lookahead, extra: intake.extra, intake, consumer, heartbeat, runCancels, store, presence, session, s3, logger },
    { drainTimeoutMs: config.drainTimeoutMs, exitWhenIdleMs: config.exitWhenIdleMs },
  );
  const readiness = () => readinessOf({ slots, session, consumer, running, queue: queues.join(', '), concurrency: config.concurrency });
  return { done, shutdown, readiness };
}

async function connect(config: WorkerConfig, names: Names, workerId: string, logger: Logger): Promise<{ store: RunStore; session: AmqpSession }> {
  logConfigWarnings(logger, config.warnings);
  const store = await createRunStore(config.redisUrl, names, logger, config.redisTls);
  const noteLost = (queue: string): Promise<void> =>
    store.noteQueueLost(queue).catch((error: unknown) => logger.warn({ err: error, queue }, 'could not record in Redis that the queue was deleted'));
  const unbounded = onceOnly((problem) => logger.warn({ queue: names.deadQueue }, problem));
  try {
    const session = await createAmqpSession({
      url: config.amqpUrl,
      tls: config.amqpTls,
      logger,
      connectionName: names.connectionName('worker', { worker: workerId, host: hostname(), pools: config.pools.join(',') }),
      setup: async (channel, probe, apart) => {
        await reportMissingPoolQueues(probe, names, config.pools, noteLost);
        await declareTopology(channel, names, config.pools, { apart, unbounded });
      },
      // What waited in it is gone: the taskers awaiting it publish it again (lost-queue-recovery.ts).
      onQueueDeleted: (queue) => void noteLost(queue),
    });
    return { store, session };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * One consumer per pool queue, all feeding the same intake and so the same slots. Each has the
 * whole prefetch: a worker serving several pools may hold `prefetch` messages of each, and one
 * that waits over a second for a slot goes back to its queue (flow/lookahead.ts), for another worker.
 */
async function consumePools(session: AmqpSession, pools: readonly { queue: string; pool: string }[], prefetch: number, receive: DeliveryHandler, tag: (pool: string) => string): Promise<Consumer> {
  const consumers: Consumer[] = [];
  try {
    for (const { queue, pool } of pools) consumers.push(await session.consume(queue, prefetch, receive, tag(pool)));
  } catch (error) {
    await Promise.all(consumers.map((consumer) => consumer.cancel().catch(() => undefined))); // the consume error is the one to report
    throw error;
  }
  return {
    isActive: () => consumers.every((consumer) => consumer.isActive()),
    cancel: async () => {
      await Promise.all(consumers.map((consumer) => consumer.cancel()));
    },
  };
}

/** A start that fails half-way closes what it opened (reverse order), then fails with the cause. */
function closeOnFailure(opened: { store: Pick<RunStore, 'close'>; session: Pick<AmqpSession, 'close'>; heartbeat?: { stop(): void }; presence?: Pick<Presence, 'close'> }): (error: unknown) => Promise<never> {
  return async (error) => {
    await opened.presence?.close().catch(() => undefined); // the start's own error is the one to report
    opened.heartbeat?.stop();
    await opened.session.close().catch(() => undefined); // the start's own error is the one to report
    await opened.store.close().catch(() => undefined); // likewise
    throw error;
  };
}

function logStart(config: WorkerConfig, where: { workdir: string; workerId: string; queues: string[] }, logger: Logger): void {
  if (config.signingOff) {
    const hint = 'anyone who can publish to the work queue can run commands here; signed messages are refused (dead-lettered). Set the same TASKER_SIGNING_KEY on the tasker and every worker instead';
    logger.warn({ hint }, 'TASKER_SIGNING=off: running unsigned commands, results go unsigned');
  }
  logger.info({ queues: where.queues, pools: config.pools, concurrency: config.concurrency, workdir: where.workdir, worker: where.workerId }, 'waiting for commands');
  logger.debug(
    {
      namespace: config.namespace,
      deliveryLimit: config.deliveryLimit,
      leaseTtlMs: config.leaseTtlMs,
      drainTimeoutMs: config.drainTimeoutMs,
      exitWhenIdleMs: config.exitWhenIdleMs ?? null,
      signed: config.signingKey !== undefined,
    },
    'worker settings',
  );
}

interface ReadinessParts {
  slots: Pick<CommandSlots, 'draining'>;
  session: Pick<AmqpSession, 'isConnected'>;
  consumer: Pick<Consumer, 'isActive'>;
  running: Pick<RunningCommands, 'size'>;
  queue: string;
  concurrency: number;
}

function readinessOf(parts: ReadinessParts): { ok: boolean; detail: string } {
  const { queue } = parts;
  if (parts.slots.draining()) return { ok: false, detail: 'draining: shutting down' };
  if (!parts.session.isConnected()) return { ok: false, detail: 'not connected to RabbitMQ (reconnecting)' };
  if (!parts.consumer.isActive()) return { ok: false, detail: `not consuming ${queue} (reopening the channel)` };
  return { ok: true, detail: `ok: consuming ${queue}, ${parts.running.size} of ${parts.concurrency} running` };
}
