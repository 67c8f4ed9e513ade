import { hostname } from 'node:os';
import { createAmqpSession, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { declareRunQueue, declareTopology } from '../../shared/broker/amqp-topology.js';
import { InputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Names } from '../../shared/config/names.js';
import type { PhaseSpec } from '../jobs/plan.js';
import { createRunStore, type RunMeta, type RunStore } from '../../shared/state/redis-store.js';
import { createDistributedRun, type DistributedRun, type DistributedRunOptions } from './distributed-run.js';
import type { PhaseDispatch, Progress } from './run-phases.js';

/** Wires RabbitMQ and Redis for one tasker run. Connecting is separate from starting, so a bad URL fails before the workdir is touched. */

export interface BackendOptions {
  amqpUrl: string;
  redisUrl: string;
  names: Names;
  deliveryLimit: number;
  logger: Logger;
}

export interface Backend {
  store: RunStore;
  session: AmqpSession;
  /** Throws when Redis already knows a run of this id: its results would be taken for this run's. */
  checkUnusedRunId(runId: string): Promise<void>;
  start(options: StartOptions): Promise<RunningBackend>;
  close(): Promise<void>;
}

/** What the run needs from the tasker; the backend adds its own session, store, names and logger. */
export type StartOptions = Omit<DistributedRunOptions, 'session' | 'store' | 'names' | 'logger'> & {
  phases: readonly PhaseSpec[];
  /** A heartbeat older than this means the previous tasker of the run is gone. */
  staleAfterMs: number;
};

export interface RunningBackend {
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  heartbeat(progress: Progress): Promise<void>;
  /** Records the final counts (what `tasker status` shows of a finished run) and the end. */
  finish(status: string, runOver: boolean, progress: Progress): Promise<void>;
}

/** Seconds a finished run's Redis keys are kept (for `tasker status` and duplicate checks). */
const finishedRunTtlSeconds = 7 * 24 * 3600;

/**
 * A restarted pod starts while the old tasker's heartbeat is still fresh: wait until it goes
 * stale. A heartbeat that keeps moving means another tasker really runs this run: refuse.
 */
async function waitForPreviousTasker(store: RunStore, runId: string, me: string, staleAfterMs: number, logger: Logger): Promise<RunMeta | undefined> {
  const first = await store.getRun(runId);
  let current = first;
  let told = false;
  while (current !== undefined && current.state === 'running' && current.host !== me && Date.now() - Date.parse(current.heartbeatAt) < staleAfterMs) {
    if (first !== undefined && current.heartbeatAt !== first.heartbeatAt) {
      throw new InputError('run-state', `run ${runId} is being run right now by another tasker (${current.host}); wait for it to finish, or stop it first`);
    }
    if (!told) logger.info({ runId, previous: current.host }, 'waiting for the previous tasker of this run to stop sending heartbeats');
    told = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
    current = await store.getRun(runId);
  }
  return current;
}

export async function connectBackend(options: BackendOptions): Promise<Backend> {
  const { names, logger } = options;
  const store = await createRunStore(options.redisUrl, names, logger);
  let runIdForSetup: string | undefined;
  let session: AmqpSession;
  try {
    session = await createAmqpSession({
      url: options.amqpUrl,
      logger,
      connectionName: `tasker ${hostname()}-${process.pid}`,
      setup: async (channel) => {
        await declareTopology(channel, names, { deliveryLimit: options.deliveryLimit });
        if (runIdForSetup !== undefined) await declareRunQueue(channel, names, runIdForSetup);
      },
    });
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
    async start(start) {
      const runId = start.layout.runId;
      const me = `${hostname()}-${process.pid}`;
      const existing = await waitForPreviousTasker(store, runId, me, start.staleAfterMs, logger);
      runIdForSetup = runId;
      await session.withChannel((channel) => declareRunQueue(channel, names, runId));
      const now = new Date().toISOString();
      const meta: RunMeta = {
        runId,
        state: 'running',
        startedAt: existing?.startedAt ?? now,
        heartbeatAt: now,
        host: me,
        workdir: start.layout.workdir,
        phase: '',
        phaseIndex: 0,
        phaseCount: start.phases.length,
        total: start.phases.reduce((sum, phase) => sum + phase.commandCount, 0),
        done: 0,
        failed: 0,
      };
      await store.registerRun(meta);
      const run: DistributedRun = await createDistributedRun({ ...start, session, store, names, logger });
      return {
        dispatchFor: (phase) => run.dispatchFor(phase),
        async heartbeat(progress) {
          await store.updateRun(runId, {
            heartbeatAt: new Date().toISOString(),
            phase: progress.phase,
            phaseIndex: progress.phaseIndex,
            done: progress.done,
            failed: progress.failed,
          });
        },
        async finish(status, runOver, progress) {
          await run.close(runOver);
          await store.updateRun(runId, {
            state: runOver ? 'finished' : 'running',
            status,
            heartbeatAt: runOver ? new Date().toISOString() : new Date(0).toISOString(),
            phase: progress.phase,
            phaseIndex: progress.phaseIndex,
            done: progress.done,
            failed: progress.failed,
          });
          if (runOver) await store.expireRun(runId, finishedRunTtlSeconds);
        },
      };
    },
    async close() {
      await session.close().catch((error: unknown) => logger.warn({ err: error }, 'closing RabbitMQ failed'));
      await store.close().catch((error: unknown) => logger.warn({ err: error }, 'closing Redis failed'));
    },
  };
}

