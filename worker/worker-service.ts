import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { createAmqpSession, type AmqpSession, type Consumer, type Delivery } from '../shared/broker/amqp-session.js';
import { declareTopology } from '../shared/broker/amqp-topology.js';
import type { Executor } from '../shared/exec/executor.js';
import type { Logger } from '../shared/observe/logger.js';
import { encodeMessage, type CommandMessage } from '../shared/broker/messages.js';
import type { OutputSpec } from '../shared/storage/outputs.js';
import type { ResultRecord } from '../shared/state/results.js';
import type { S3Store } from '../shared/storage/s3-store.js';
import { signatureHeaders, verifyBody } from '../shared/broker/signing.js';
import { names as namesFor } from '../shared/config/names.js';
import { createRunStore, type RunStore, type WorkerInfo } from '../shared/state/redis-store.js';
import { attemptRequest, runLayout } from '../shared/state/run-layout.js';
import type { WorkerConfig } from './config.js';
import { handleDelivery, type Decision, type DeliveryStore, type StartedCommand } from './handle-delivery.js';

/**
 * The worker service: takes commands from the work queue, `concurrency` at a time, runs them
 * in the shared workdir, records and reports each result. Shutdown drains: stop taking work,
 * let running commands finish until the drain deadline, then kill and requeue them.
 */

export interface WorkerHandle {
  /** Resolves with the exit code once the worker has stopped. */
  done: Promise<number>;
  /** Starts a graceful shutdown (idempotent); `force` kills running commands at once. */
  shutdown(reason: string, force?: boolean): Promise<void>;
  /** Ready to take commands: connected to RabbitMQ, consuming, not draining (the pod's readiness). */
  readiness(): { ok: boolean; detail: string };
}

/** What the worker reports for its metrics; the metrics server's recorder, or nothing. */
export interface WorkerMetrics {
  commandFinished(outcome: string, durationMs: number): void;
  messagePickedUp(lagMs: number): void;
  trackInFlight(read: () => number): void;
}

export async function startWorker(config: WorkerConfig, deps: { logger: Logger; executor: Executor; metrics?: WorkerMetrics }): Promise<WorkerHandle> {
  const { logger, executor, metrics } = deps;
  const names = namesFor(config.namespace);
  const workdir = resolve(config.workdir);
  const workerId = `${hostname()}-${process.pid}`;
  const store: RunStore = await createRunStore(config.redisUrl, names, logger);
  let session: AmqpSession;
  try {
    session = await createAmqpSession({
      url: config.amqpUrl,
      logger,
      connectionName: `worker ${workerId}`,
      setup: (channel) => declareTopology(channel, names, { deliveryLimit: config.deliveryLimit }),
    });
  } catch (error) {
    await store.close();
    throw error;
  }

  const running = new Map<StartedCommand, { message: CommandMessage; sinceMs: number }>();
  const drainKilled = new WeakSet<StartedCommand>();
  metrics?.trackInFlight(() => running.size);
  let inFlight = 0;
  let lastActivity = Date.now();
  let draining = false;
  const startedAt = new Date().toISOString();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });
  const idleWaiters: (() => void)[] = [];

  const heartbeat = async (): Promise<void> => {
    const info: WorkerInfo = {
      id: workerId,
      host: hostname(),
      pid: process.pid,
      concurrency: config.concurrency,
      startedAt,
      // Handed over early but not started yet: not shown as running.
      running: [...running]
        .filter(([command]) => command.started())
        .map(([, { message: m, sinceMs }]) => ({ runId: m.runId, id: m.id, attempt: m.attempt, since: new Date(sinceMs).toISOString(), command: m.command.slice(0, 200) })),
    };
    await store.workerHeartbeat(info, 15_000);
  };
  // `tasker status` should see a command start without a Redis write per command: at most one
  // extra heartbeat per second, on top of the regular one.
  let heartbeatQueued = false;
  const soonHeartbeat = (): void => {
    if (heartbeatQueued) return;
    heartbeatQueued = true;
    setTimeout(() => {
      heartbeatQueued = false;
      heartbeat().catch((error: unknown) => logger.debug({ err: error }, 'heartbeat failed'));
    }, 1000).unref();
  };
  const heartbeatTimer = setInterval(() => {
    heartbeat().catch((error: unknown) => logger.debug({ err: error }, 'heartbeat failed'));
  }, 5000);
  await heartbeat();

  // With a signing key, results are signed too: the tasker counts only results from real workers.
  const publishSigned = (queue: string, body: Buffer): Promise<void> => session.publish('', queue, body, { headers: signatureHeaders(config.signingKey, body) });
  // The AWS SDK is loaded on the first message that asks for uploads: most runs never do.
  let s3: Promise<S3Store> | undefined;
  const s3Store = (): Promise<S3Store> => {
    s3 ??= import('../shared/storage/s3-store.js').then(({ createS3Store }) => createS3Store({ connection: config.s3, logger }));
    return s3;
  };
  const signingKey = config.signingKey;
  // Metrics count each attempt run here once, with the outcome as recorded (after its uploads,
  // which can fail it); a command stopped by the drain is counted as requeued (below, in track).
  const deliveryStore: DeliveryStore = {
    beginCommand: (...args) => store.beginCommand(...args),
    abandonCommand: (...args) => store.abandonCommand(...args),
    renewLease: (...args) => store.renewLease(...args),
    async finishCommand(runId, record, owner) {
      await store.finishCommand(runId, record, owner);
      metrics?.commandFinished(record.outcome, record.durationMs);
    },
  };
  const ports = {
    store: deliveryStore,
    logger,
    authenticate: signingKey === undefined ? undefined : (content: Buffer, headers: Record<string, unknown>) => verifyBody(signingKey, content, headers),
    watchOutputs: async (spec: OutputSpec) => (await s3Store()).watchOutputs(spec, workdir),
    workerId,
    leaseTtlMs: config.leaseTtlMs,
    sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    start(message: CommandMessage): StartedCommand {
      const { request, log } = attemptRequest(runLayout(workdir, message.runId), {
        phase: { index: message.phaseIndex, name: message.phase },
        commandId: message.id,
        command: message.command,
        attempt: message.attempt,
        timeoutMs: message.timeoutMs ?? undefined,
        killGraceMs: message.killGraceMs,
      });
      const handle = executor.start(request);
      return { result: handle.result, kill: handle.kill, started: handle.started, log };
    },
    publishResult: (message: CommandMessage, record: ResultRecord) =>
      // The reply queue is derived from the run id, never taken from the message: a forged
      // message cannot make a worker write into another queue.
      publishSigned(names.runQueue(message.runId), encodeMessage({ v: 1, kind: 'result', runId: message.runId, record })),
  };
  // Slots: commands handed to the executor, which runs `concurrency` of them at once. While
  // commands are short, one more (the lookahead message, below) is claimed and handed over
  // early, so it starts the moment a command ends instead of after a round trip to Redis.
  let lookahead: 0 | 1 = 0;
  let taken = 0;
  const slotWaiters: { since: number; resolve: (release: (() => void) | undefined) => void }[] = [];
  const releaseSlot = (): void => {
    taken--;
    wakeSlotWaiters();
  };
  const wakeSlotWaiters = (): void => {
    while (!draining && taken < config.concurrency + lookahead && slotWaiters.length > 0) {
      taken++;
      slotWaiters.shift()!.resolve(releaseSlot);
    }
  };
  const recentDurationsMs: number[] = [];

  const control = {
    draining: () => draining,
    acquireSlot(): Promise<(() => void) | undefined> {
      if (draining) return Promise.resolve(undefined);
      if (taken < config.concurrency + lookahead) {
        taken++;
        return Promise.resolve(releaseSlot);
      }
      return new Promise((resolve) => slotWaiters.push({ since: Date.now(), resolve }));
    },
    track(command: StartedCommand, message: CommandMessage) {
      running.set(command, { message, sinceMs: Date.now() });
      soonHeartbeat();
      command.result.then(
        (result) => {
          if (drainKilled.has(command)) {
            metrics?.commandFinished('requeued', result.durationMs);
            return;
          }
          recentDurationsMs.push(result.durationMs);
          if (recentDurationsMs.length > 20) recentDurationsMs.shift();
          adaptLookahead();
        },
        () => undefined, // an executor failure is handled (and logged) by handleDelivery
      );
      return () => {
        running.delete(command);
        soonHeartbeat();
      };
    },
    killedForDrain: (command: StartedCommand) => drainKilled.has(command),
  };

  const settle = (delivery: Delivery, decision: Decision): void => {
    if (decision === 'ack') delivery.ack();
    else if (decision === 'reject') delivery.reject();
    else delivery.requeue();
  };

  /**
   * Fair dispatch: the consumer's prefetch is the worker's concurrency, so nobody hoards long
   * commands. While every recent command was short (the last 5 to 20 all under a second), a
   * second consumer with prefetch 1 holds one more message, claimed and handed to the executor
   * early, so the next command starts the moment one ends. RabbitMQ keeps a running consumer's
   * prefetch as it was, hence a consumer of its own, cancelled when commands get long. A message
   * that waited over a second behind running commands (the phase turned to long ones) is handed
   * back to the queue, for an idle worker.
   */
  let lookaheadConsumer: Consumer | undefined;
  let lookaheadChange = Promise.resolve();
  const setLookahead = (wanted: 0 | 1): void => {
    if (wanted === lookahead) return;
    lookahead = wanted;
    wakeSlotWaiters();
    logger.debug({ prefetch: config.concurrency + wanted }, 'lookahead changed');
    lookaheadChange = lookaheadChange
      .then(async () => {
        if (lookahead === 1 && !draining && lookaheadConsumer === undefined) {
          lookaheadConsumer = await session.consume(names.workQueue, 1, onDelivery);
        } else if ((lookahead === 0 || draining) && lookaheadConsumer !== undefined) {
          const cancelled = lookaheadConsumer;
          lookaheadConsumer = undefined;
          await cancelled.cancel();
        }
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not change the lookahead consumer'));
  };
  const adaptLookahead = (): void => {
    if (draining || recentDurationsMs.length < 5) return;
    setLookahead(Math.max(...recentDurationsMs) < 1000 ? 1 : 0);
  };
  const handBackTimer = setInterval(() => {
    const cutoff = Date.now() - 1000;
    let handedBack = 0;
    // Handed to the executor early and still not started.
    for (const [command, { sinceMs }] of running) {
      if (sinceMs > cutoff || command.started() || drainKilled.has(command)) continue;
      drainKilled.add(command); // requeued, not recorded: see handleDelivery
      command.kill('waited behind a long command');
      handedBack++;
    }
    for (const waiter of slotWaiters.filter((entry) => entry.since <= cutoff)) {
      slotWaiters.splice(slotWaiters.indexOf(waiter), 1);
      waiter.resolve(undefined); // requeued
      handedBack++;
    }
    if (handedBack > 0) {
      logger.info({ handedBack }, 'commands waited over a second behind long ones: handed back to the queue, lookahead off');
      recentDurationsMs.length = 0;
      setLookahead(0);
    }
  }, 250);
  handBackTimer.unref();

  const onDelivery = (delivery: Delivery): void => {
    inFlight++;
    lastActivity = Date.now();
    // Set by the tasker when it publishes (ms since the epoch); absent from foreign messages.
    const publishedAt = Number(delivery.headers['x-published-at']);
    if (publishedAt > 0) metrics?.messagePickedUp(lastActivity - publishedAt);
    handleDelivery(delivery.content, ports, control, delivery.headers)
      .then(
        (handled) => {
          settle(delivery, handled.decision);
          handled.afterSettle?.().catch((error: unknown) =>
            // The result is in Redis: the tasker picks it up from there if this message is lost.
            logger.warn({ err: error }, 'could not send a result to the tasker; it will find it in Redis'),
          );
        },
        (error: unknown) => {
          // Our own failure (Redis or broker gone for good): give the command back, never lose it.
          logger.error({ err: error }, 'could not handle a message; requeueing it');
          delivery.requeue();
        },
      )
      .finally(() => {
        inFlight--;
        lastActivity = Date.now();
        if (inFlight === 0) for (const resolve of idleWaiters.splice(0)) resolve();
      });
  };
  const consumer = await session.consume(names.workQueue, config.concurrency, onDelivery);
  logger.info({ queue: names.workQueue, concurrency: config.concurrency, workdir, worker: workerId }, 'waiting for commands');
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

  let idleTimer: NodeJS.Timeout | undefined;
  let shutdownPromise: Promise<void> | undefined;

  const shutdown = (reason: string, force = false): Promise<void> => {
    if (force) {
      for (const command of running.keys()) {
        drainKilled.add(command);
        command.kill('worker shutdown');
      }
      executor.killAllNow();
    }
    if (shutdownPromise !== undefined) return shutdownPromise;
    shutdownPromise = (async () => {
      draining = true;
      clearInterval(handBackTimer);
      setLookahead(0); // cancels the lookahead consumer (draining)
      for (const waiter of slotWaiters.splice(0)) waiter.resolve(undefined); // prefetched, not started: requeued
      for (const command of running.keys()) {
        if (command.started()) continue;
        drainKilled.add(command); // handed over early, not started yet: requeued at once
        command.kill('worker shutdown');
      }
      logger.info({ reason, running: running.size }, 'shutting down: no new commands');
      if (idleTimer !== undefined) clearInterval(idleTimer);
      await consumer.cancel();
      await lookaheadChange;
      if (inFlight > 0) {
        const drained = new Promise<void>((resolve) => idleWaiters.push(resolve));
        const deadline = new Promise<'deadline'>((resolve) => setTimeout(() => resolve('deadline'), config.drainTimeoutMs).unref());
        if ((await Promise.race([drained, deadline])) === 'deadline') {
          logger.warn({ running: running.size, drainTimeoutMs: config.drainTimeoutMs }, 'drain deadline reached: killing running commands and requeueing them');
          for (const command of running.keys()) {
            drainKilled.add(command);
            command.kill('worker shutdown');
          }
          await drained;
        }
      }
      clearInterval(heartbeatTimer);
      // Reverse order of creation; each step runs even if an earlier one failed.
      await store.removeWorker(workerId).catch((error: unknown) => logger.debug({ err: error }, 'could not remove the heartbeat'));
      await session.close().catch((error: unknown) => logger.warn({ err: error }, 'closing RabbitMQ failed'));
      await store.close().catch((error: unknown) => logger.warn({ err: error }, 'closing Redis failed'));
      if (s3 !== undefined) (await s3).close();
      logger.info('worker stopped');
      resolveDone(0);
    })();
    return shutdownPromise;
  };

  if (config.exitWhenIdleMs !== undefined) {
    const idleMs = config.exitWhenIdleMs;
    idleTimer = setInterval(() => {
      if (inFlight === 0 && Date.now() - lastActivity >= idleMs) {
        void shutdown(`idle for ${idleMs} ms`);
      }
    }, Math.min(1000, idleMs));
  }

  const readiness = (): { ok: boolean; detail: string } => {
    if (draining) return { ok: false, detail: 'draining: shutting down' };
    if (!session.isConnected()) return { ok: false, detail: 'not connected to RabbitMQ (reconnecting)' };
    if (!consumer.isActive()) return { ok: false, detail: `not consuming ${names.workQueue} (reopening the channel)` };
    return { ok: true, detail: `ok: consuming ${names.workQueue}, ${running.size} of ${config.concurrency} running` };
  };

  return { done, shutdown, readiness };
}
