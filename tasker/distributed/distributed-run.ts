import type { AmqpSession } from '../../shared/broker/amqp-session.js';
import { deleteQueue } from '../../shared/broker/amqp-topology.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Names } from '../../shared/config/names.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { RunStore } from '../../shared/state/run-store.js';
import { servesPool } from '../../shared/state/run-store.js';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import { ensureRunToken } from '../../shared/run-dir/run-token.js';
import { attemptBytesBudget, createCommandPublisher, type PublishBundle } from './command-publisher.js';
import { startLostQueueRecovery } from './lost-queue-recovery.js';
import { startLostResultRecovery } from './lost-result-recovery.js';
import { createDistributedDispatch, createPhaseBundler, type PhaseBundler, type ResumedAttempts } from './phase-dispatch.js';
import { createAwaitedAttempts, createForgetRecorded, createResultInbox } from './result-inbox.js';
import { createRunQueueHandler } from './run-queue-messages.js';
import type { PhaseDispatch } from '../dispatch/phase-ports.js';
import { startStallWarnings, startWorkersHint } from './stall-warnings.js';
import { createUnseenRunWarnings } from './unseen-run-warnings.js';
import { watchWorkerLanes } from './worker-lanes.js';
import { startRunShare } from './run-share.js';
import type { Priority } from '../../shared/state/fair-share.js';
import type { RunMeta } from '../../shared/state/run-store.js';
import { createWindDown } from './wind-down.js';

/**
 * Dispatch through RabbitMQ: each attempt is published to its phase's pool queue and settled by the
 * result a worker sends to this run's own queue. Results are matched by command id and attempt,
 * so nothing from another run, and no stale or duplicate result, is ever counted.
 */

export interface DistributedRunOptions {
  session: AmqpSession;
  store: RunStore;
  names: Names;
  layout: RunLayout;
  logger: Logger;
  timeoutMs: number | undefined;
  killGraceMs: number;
  /** Commands published and not yet finished, at most. Bounds memory and queue length. */
  maxInFlight: number;
  /** Warn when no worker consumes, or nothing finished, for this long. */
  stallWarningMs: number;
  /**
   * Highest attempt per command with a result in results.jsonl (from earlier sessions). Attempts
   * recorded as interrupted are not counted: they may still be queued or running on a worker.
   */
  recordedAttempts: ReadonlyMap<string, number>;
  /** Outputs workers upload after each success; undefined: none. */
  upload: OutputSpec | undefined;
  /** TASKER_SIGNING_KEY: commands are signed, and only results signed with it are counted. */
  signingKey: string | undefined;
  /** --bundle-size: attempts per message; undefined: adaptive (bundleSize, phase-dispatch.ts). */
  bundleSize: number | undefined;
  /** The pools the run's phases use. */
  pools: readonly string[];
  /** --priority: a waiting command of a higher one starts first; equal ones share the pool's slots. */
  priority: Priority;
}

/** How often the run writes its demand and reads its share (run-share.ts). */
const shareIntervalMs = 250;

/** Before a phase's first result, the attempts beyond the first few wait this long at most to be bundled. */
const bundleProbeMs = 2000;

export interface DistributedRun {
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  /**
   * No worker consumes the running phase's pool (stall-warnings.ts), or workers cannot see the
   * run's directory (unseen-run-warnings.ts); undefined when all is well.
   */
  warning(): string | undefined;
  /** Its priority, share of the pool and whom it waits behind, for its record in Redis. */
  shareFields(): Partial<RunMeta>;
  /** Stops consuming results; deletes the run's queue when the run is over. */
  close(runOver: boolean): Promise<void>;
}

export async function createDistributedRun(options: DistributedRunOptions): Promise<DistributedRun> {
  const { session, store, names, layout, logger, signingKey } = options;
  const runId = layout.runId;
  const resumed = await loadResumedAttempts(store, runId, options.recordedAttempts, logger);
  let bundler: PhaseBundler | undefined;
  const awaited = createAwaitedAttempts({ maxInFlight: options.maxInFlight, window: () => share.window(), batch: () => bundler?.size() ?? 1 });
  const forget = createForgetRecorded(store, runId);
  const inbox = createResultInbox({ forget, awaited, recordedAttempts: options.recordedAttempts });
  // Written before the first command is published: a worker runs only the commands of runs whose token it finds.
  const origin = { workdir: layout.workdir, token: await ensureRunToken(layout) };
  // A work queue found deleted is declared again; the declaration counts it as lost (distributed-backend.ts).
  const queueMissing = (queue: string): void => void session.redeclare().catch((error: unknown) => logger.warn({ err: error, queue }, 'could not declare the queues again yet'));
  const { timeoutMs, killGraceMs, upload } = options;
  const publisherOptions = { session, store, names, runId, timeoutMs, killGraceMs, upload, signingKey, origin, logger };
  const publishOne = createCommandPublisher(publisherOptions);
  const recovery = await startLostQueueRecovery({
    store,
    runId,
    queues: options.pools.map((pool) => names.poolQueue(pool)),
    queueOf: (pool) => names.poolQueue(pool),
    // Already marked published: a copy is not marked again (the attempt may be recorded and forgotten meanwhile).
    publish: createCommandPublisher({ ...publisherOptions, markPublished: false }),
    earlierPending: () => resumed.pending() > 0,
    intervalMs: 2000,
    logger,
  });
  const { publish, sent } = counted(publishOne);
  const unseen = createUnseenRunWarnings(runId, layout.workdir, logger);
  const workerLanes = watchWorkerLanes(store, 1000, logger, undefined, (workers) => unseen.update(workers));
  const share = startRunShare({ store, runId, priority: options.priority, lanes: (pool) => workerLanes.lanes(pool), onChange: () => awaited.wake(), logger, intervalMs: shareIntervalMs });

  const stopOnce = createWindDown(awaited, store, runId);
  const handler = createRunQueueHandler({ runId, layout, logger, store, signingKey, names, deliver: (record) => inbox.deliver(record) });
  const consumer = await session.consume(names.runQueue(runId), 0, handler, names.taskerConsumerTag(runId));
  const stopRecovery = startLostResultRecovery({ runId, store, forget, awaited, intervalMs: Math.min(30_000, options.stallWarningMs), logger });
  let currentPool: { pool: string; queue: string } | undefined;
  const stallWarnings = startStallWarnings({
    session,
    currentPool: () => currentPool,
    stallWarningMs: options.stallWarningMs,
    inFlight: () => awaited.count(),
    lastProgressAt: () => inbox.lastProgressAt(),
    onQueueMissing: queueMissing,
    logger,
  });

  return {
    dispatchFor: (phase) => {
      // Phases run one at a time: the stall warnings watch this phase's pool from now on.
      currentPool = { pool: phase.pool, queue: names.poolQueue(phase.pool) };
      void sayIfUnserved(store, currentPool, logger);
      workerLanes.refresh();
      const maxBytes = attemptBytesBudget(phase, publisherOptions);
      const phaseBundler = createPhaseBundler(phase, { publish, fixedSize: options.bundleSize, lanes: () => workerLanes.lanes(phase.pool), probeMs: bundleProbeMs, maxBytes });
      bundler = phaseBundler;
      const dispatch = createDistributedDispatch({ awaited, inbox, resumed, bundler: phaseBundler, recovery, phase, windDown: stopOnce });
      share.setPhase({ pool: phase.pool, phase: phase.name, inFlight: () => awaited.count(), backlog: () => dispatch.backlog(), bundleSize: () => phaseBundler.size() });
      return dispatch;
    },
    warning: () => joinWarnings(unseen.current(), stallWarnings.current()),
    shareFields: () => ({ ...share.metaFields(), inFlight: awaited.count() }),
    async close(runOver) {
      // How well bundling did: attempts per work-queue message (README, Bundles).
      if (sent.messages > 0) logger.info({ attempts: sent.attempts, messages: sent.messages }, `published ${sent.attempts} attempts in ${sent.messages} messages`);
      await share.stop();
      workerLanes.stop();
      stallWarnings.stop();
      stopRecovery();
      await recovery.stop();
      await consumer.cancel();
      // Results still held unacked stay in the queue for the next tasker of this run.
      if (runOver) {
        await session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
      }
    },
  };
}

/**
 * At a phase's start, said at once when no live worker serves its pool (no heartbeat): its
 * commands wait in the queue meanwhile (normal while KEDA scales a pool from zero). The warning
 * of stall-warnings.ts follows if none has come to consume after the stall delay.
 */
async function sayIfUnserved(store: Pick<RunStore, 'workers'>, current: { pool: string; queue: string }, logger: Logger): Promise<void> {
  const workers = await store.workers().catch(() => undefined);
  if (workers === undefined || workers.some((worker) => servesPool(worker, current.pool))) return;
  logger.info({ pool: current.pool, queue: current.queue }, `no worker of pool ${current.pool} is up yet: the phase's commands wait in ${current.queue} until one starts (${startWorkersHint(current.pool)})`);
}

/** The warnings in force, most specific first; undefined when none is. */
function joinWarnings(...warnings: (string | undefined)[]): string | undefined {
  const present = warnings.filter((warning) => warning !== undefined);
  return present.length === 0 ? undefined : present.join('; ');
}

/** The publisher, counting what it sent: attempts and messages (how well bundling did). */
function counted(publishOne: PublishBundle): { publish: PublishBundle; sent: { attempts: number; messages: number } } {
  const sent = { attempts: 0, messages: 0 };
  const publish: PublishBundle = async (phase, attempts) => {
    await publishOne(phase, attempts);
    sent.attempts += attempts.length;
    sent.messages++;
  };
  return { publish, sent };
}

// ---- attempts a previous tasker of this run published and nobody recorded yet: their results
// are still to come, so they are awaited rather than published again.

/**
 * `recordedAttempts`: the highest attempt per command with a result in results.jsonl (from
 * earlier sessions). An attempt the previous tasker recorded as interrupted has none: if it is
 * still published (queued, or running on a worker), it is awaited, so it runs once, not twice.
 * One a worker dropped while the run was stopped is no longer published: it is published again.
 */
export async function loadResumedAttempts(
  store: Pick<RunStore, 'publishedAttempts'>,
  runId: string,
  recordedAttempts: ReadonlyMap<string, number>,
  logger: Logger,
): Promise<ResumedAttempts> {
  const inFlightBefore = await store.publishedAttempts(runId);
  if (inFlightBefore.size > 0) {
    logger.info({ runId, inFlight: inFlightBefore.size }, 'resuming: commands published by the previous tasker are awaited, not published again');
  }
  return {
    claim(commandId, attempt) {
      const previous = inFlightBefore.get(commandId);
      inFlightBefore.delete(commandId);
      // Published by an earlier tasker and not yet recorded: await it rather than publish again.
      const awaitPrevious = previous !== undefined && previous > (recordedAttempts.get(commandId) ?? 0);
      return awaitPrevious ? { attempt: previous, publish: false } : { attempt, publish: true };
    },
    pending: () => inFlightBefore.size,
  };
}
