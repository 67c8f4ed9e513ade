import { hostname } from 'node:os';
import { createAmqpSession, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { declareRunQueue, declareTopology, onceOnly, probeQueue, reportMissingPoolQueues } from '../../shared/broker/amqp-topology.js';
import { readPoolDepths } from '../../shared/broker/amqp-pool-depths.js';
import type { PoolDepth } from '../../shared/observe/metrics-registry.js';
import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { defaultPool, type Names } from '../../shared/config/names.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { poolsOf } from '../jobs/phase-pools.js';
import { createRunStore } from '../../shared/redis/redis-store.js';
import type { Cancellation, RunMeta, RunStore } from '../../shared/state/run-store.js';
import type { RunStatus } from '../report/summary.js';
import { refuseCancelledRun } from './cancel-run.js';
import { readPoolDemand, type PoolDemand } from '../../shared/state/pool-demand.js';
import type { TlsFiles } from '../../shared/config/tls-config.js';
import { createDistributedRun, type DistributedRun, type DistributedRunOptions } from './distributed-run.js';
import { acceptRevision, checkRunRecord, createRunProgressRecorder, runningMeta, waitForPreviousTasker, type RevisionToAccept } from './run-registration.js';
import type { PhaseDispatch, Progress } from '../dispatch/phase-ports.js';

/**
 * Connects the tasker to RabbitMQ and Redis (for a run, `tasker status` or `tasker purge`) and
 * starts a run on them. Connecting is separate from starting, so a bad URL fails before the workdir is touched.
 */

export interface BackendOptions {
  amqpUrl: string;
  /** AMQP_TLS_* files. Default: none. */
  amqpTls?: TlsFiles;
  redisUrl: string;
  /** REDIS_TLS_* files. Default: none. */
  redisTls?: TlsFiles;
  names: Names;
  logger: Logger;
  /** What this tasker connects for, in its connection's name: `{ run: RUN_ID }`, `{ command: 'status' }`. */
  purpose: Record<string, string>;
}

export interface Backend {
  store: RunStore;
  session: AmqpSession;
  /** Throws when Redis already knows a run of this id: its results would be taken for this run's. */
  checkUnusedRunId(runId: string): Promise<void>;
  start(options: StartOptions): Promise<RunningBackend>;
  /** An edited resume, before the run's records change (run-registration.ts `acceptRevision`); throws when it cannot be. */
  acceptRevision(revision: RevisionToAccept): Promise<void>;
  close(): Promise<void>;
}

/** What the run needs from the tasker; the backend adds its own session, store, names and logger. */
export type StartOptions = Omit<DistributedRunOptions, 'session' | 'store' | 'names' | 'logger' | 'pools'> & {
  phases: readonly PhaseSpec[];
  /** A heartbeat older than this means the previous tasker of the run is gone. */
  staleAfterMs: number;
  /** The sha256 of the run's run.json (undefined: unknown); checked against the one its first tasker kept in Redis. */
  recordSha256: string | undefined;
};

export interface RunningBackend {
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  heartbeat(progress: Progress): Promise<void>;
  /** What the tasker warns of now (no worker consumes the running phase's pool), for the progress line. */
  warning(): string | undefined;
  /** The queues of the run's pools, as the broker reports them now (metrics). */
  poolDepths(): Promise<PoolDepth[]>;
  /** The pools the run sends commands to. */
  pools: readonly string[];
  /** A pool's demand as Redis has it now, the same for every tasker and worker (metrics, `/demand`). */
  poolDemand(pool: string): Promise<PoolDemand>;
  /** The run's priority and its share as last computed while a workers phase ran (the summary). */
  lastShare(): Pick<RunMeta, 'priority' | 'share' | 'slots'>;
  /** Who cancelled the run (`tasker cancel`), once someone did. */
  cancellation(): Promise<Cancellation | undefined>;
  /**
   * Records the final counts (what `tasker status` shows of a finished run) and the end: an
   * interrupted run is stopped (its queue and keys kept for a resume), any other is over. A
   * cancelled one's queue and keys are not declared or written again (`tasker purge` removes them).
   */
  finish(status: RunStatus, progress: Progress, cancelled: Cancellation | undefined): Promise<void>;
}

/** This tasker, as Redis records it as a run's host (its RabbitMQ connection names the host and pid too). */
function taskerIdentity(): string {
  return `${hostname()}-${process.pid}`;
}

/** What a (re)connect declares again once a run started: its result queue and its pools' queues. */
interface RunSetup {
  runId: string;
  pools: string[];
}

async function connectSession(options: BackendOptions, missing: (queue: string) => Promise<void>, runForSetup: () => RunSetup | undefined, unbounded: (problem: string) => void): Promise<AmqpSession> {
  const { names } = options;
  return createAmqpSession({
    url: options.amqpUrl,
    tls: options.amqpTls,
    logger: options.logger,
    connectionName: names.connectionName('tasker', { ...options.purpose, host: hostname(), pid: process.pid }),
    setup: async (channel, probe, apart) => {
      const run = runForSetup();
      const pools = run?.pools ?? [defaultPool];
      // A pool queue missing now was deleted (or never made), with what waited in it (missingQueue).
      await reportMissingPoolQueues(probe, names, pools, missing);
      await declareTopology(channel, names, pools, { apart, unbounded });
      if (run !== undefined) await declareRunQueue(channel, names, run.runId);
    },
  });
}

export async function connectBackend(options: BackendOptions): Promise<Backend> {
  const { names, logger } = options;
  const store = await createRunStore(options.redisUrl, names, logger, options.redisTls);
  let runForSetup: RunSetup | undefined;
  // Pool queues found missing before a run started: counted as lost once one starts (bad input leaves
  // nothing in Redis), so that lost-queue-recovery.ts publishes again what a previous tasker published there.
  const missingBeforeRun = new Set<string>();
  const missingQueue = async (queue: string): Promise<void> => {
    if (runForSetup === undefined) missingBeforeRun.add(queue);
    else await store.noteQueueLost(queue);
  };
  const unbounded = onceOnly((problem) => logger.warn({ queue: names.deadQueue }, problem));
  let session: AmqpSession;
  try {
    session = await connectSession(options, missingQueue, () => runForSetup, unbounded);
  } catch (error) {
    await store.close();
    throw error;
  }

  return {
    store,
    session,
    async checkUnusedRunId(runId) {
      if ((await store.getRun(runId)) === undefined) return;
      throw new InputError(
        'run-state',
        `run id ${runId} is already known to Redis (namespace ${names.namespace}) but has no records in this workdir; its finished commands would be skipped. Use another --run-id, the workdir of that run, or remove it first with: tasker purge ${runId}`,
      );
    },
    acceptRevision: (revision) => acceptRevision(store, revision, taskerIdentity(), logger),
    async start(start) {
      const runId = start.layout.runId;
      const host = taskerIdentity();
      await refuseCancelledRun(store, runId);
      const existing = await waitForPreviousTasker(store, runId, host, start.staleAfterMs, logger);
      checkRunRecord(runId, existing, start.recordSha256);
      // Every pool queue the run sends to exists before its first command: none is unroutable
      // while no worker of that pool has started yet.
      runForSetup = { runId, pools: poolsOf(start.phases) };
      const pools = runForSetup.pools;
      const probe = (queue: string) => session.withChannel((channel) => probeQueue(channel, queue));
      await reportMissingPoolQueues(probe, names, pools, missingQueue);
      for (const queue of missingBeforeRun) if (pools.some((pool) => names.poolQueue(pool) === queue)) await store.noteQueueLost(queue);
      await session.withChannel(async (channel) => {
        await declareTopology(channel, names, pools, { apart: (operation) => session.withChannel(operation), unbounded });
        await declareRunQueue(channel, names, runId);
      });
      await store.registerRun(runningMeta({ runId, host, workdir: start.layout.workdir, phases: start.phases, existing, recordSha256: start.recordSha256, priority: start.priority }));
      const run: DistributedRun = await createDistributedRun({ ...start, session, store, names, logger, pools });
      const recorder = createRunProgressRecorder(store, runId);
      let lastShare: Pick<RunMeta, 'priority' | 'share' | 'slots'> = { priority: start.priority };
      return {
        dispatchFor: (phase) => run.dispatchFor(phase),
        heartbeat: (progress) => {
          const share = run.shareFields();
          if (share.share !== undefined) lastShare = { priority: share.priority, share: share.share, slots: share.slots };
          return recorder.heartbeat(progress, run.warning(), share);
        },
        warning: () => run.warning(),
        poolDepths: () => readPoolDepths(session, names, pools),
        pools,
        poolDemand: (pool) => readPoolDemand(store, pool),
        lastShare: () => lastShare,
        cancellation: () => store.cancellation(runId),
        async finish(status, progress, cancelled) {
          const runOver = status !== 'interrupted';
          // A reconnect from now on declares no queue of this run.
          if (cancelled !== undefined) runForSetup = undefined;
          await run.close(runOver);
          await recorder.finish(status, runOver, progress, cancelled);
        },
      };
    },
    async close() {
      await session.close().catch((error: unknown) => logger.warn({ err: error }, 'closing RabbitMQ failed'));
      await store.close().catch((error: unknown) => logger.warn({ err: error }, 'closing Redis failed'));
    },
  };
}
