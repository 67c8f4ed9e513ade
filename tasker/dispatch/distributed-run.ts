import type { AmqpSession, Delivery } from '../../shared/broker/amqp-session.js';
import { deleteQueue, queueDepth } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import type { ExecutionResult } from '../../shared/exec/executor.js';
import type { Logger } from '../../shared/observe/logger.js';
import { encodeMessage, messageKind, parseCommandMessage, parseResultMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { Names } from '../../shared/config/names.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';
import type { RunStore } from '../../shared/state/redis-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import type { RunLayout } from '../../shared/state/run-layout.js';
import { signatureHeaders, verifyBody } from '../../shared/broker/signing.js';
import type { AttemptOutcome, PhaseDispatch } from './run-phases.js';

/**
 * Dispatch through RabbitMQ: each attempt is published to the work queue and settled by the
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
  /** Highest attempt per command already in results.jsonl (from earlier sessions). */
  recordedAttempts: ReadonlyMap<string, number>;
  /** Outputs workers upload after each success; undefined: none. */
  upload: OutputSpec | undefined;
  /** TASKER_SIGNING_KEY: commands are signed, and only results signed with it are counted. */
  signingKey: string | undefined;
}

export interface DistributedRun {
  dispatchFor(phase: PhaseSpec): PhaseDispatch;
  /** Stops consuming results; deletes the run's queue when the run is over. */
  close(runOver: boolean): Promise<void>;
}

interface Waiter {
  attempt: number;
  since: number;
  resolve: (outcome: AttemptOutcome) => void;
}

interface Arrived {
  record: ResultRecord;
  delivery: Delivery;
}

function toExecution(record: ResultRecord): ExecutionResult {
  const result: ExecutionResult = {
    outcome: record.outcome === 'interrupted' || record.outcome === 'dead-lettered' ? 'failed' : record.outcome,
    exitCode: record.exitCode,
    signal: record.signal,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    durationMs: record.durationMs,
    tail: record.tail ?? '',
  };
  if (record.reason !== undefined) result.reason = record.reason;
  if (record.uploaded !== undefined) result.uploaded = record.uploaded;
  return result;
}

/** The outcome of an attempt from its recorded result; `settle` runs once the tasker recorded it. */
function outcomeOf(record: ResultRecord, settle: () => Promise<void>): AttemptOutcome {
  return { result: toExecution(record), worker: record.worker, log: record.log, attempt: record.attempt, settle };
}

function deathCount(headers: Record<string, unknown>): { count: number; reason: string } {
  const deaths = headers['x-death'];
  if (Array.isArray(deaths) && deaths.length > 0) {
    const first = deaths[0] as { count?: number; reason?: string };
    return { count: Number(first.count ?? 1), reason: String(first.reason ?? 'unknown') };
  }
  return { count: Number(headers['x-delivery-count'] ?? 0), reason: String(headers['x-first-death-reason'] ?? 'delivery limit') };
}

export async function createDistributedRun(options: DistributedRunOptions): Promise<DistributedRun> {
  const { session, store, names, layout, logger } = options;
  const runId = layout.runId;
  const waiting = new Map<string, Waiter>();
  const early = new Map<string, Arrived>();
  const inFlightBefore = await store.publishedAttempts(runId);
  const roomWaiters: (() => void)[] = [];
  let lastProgressAt = Date.now();

  if (inFlightBefore.size > 0) {
    logger.info({ runId, inFlight: inFlightBefore.size }, 'resuming: commands published by the previous tasker are awaited, not published again');
  }

  const freeRoom = (): void => {
    while (roomWaiters.length > 0 && waiting.size < options.maxInFlight) roomWaiters.shift()?.();
  };

  const deliver = (record: ResultRecord, delivery: Delivery): void => {
    lastProgressAt = Date.now();
    const waiter = waiting.get(record.id);
    // The awaited attempt's result; or a success of an earlier attempt, which is how a worker answers
    // a command that already succeeded (e.g. one the previous tasker recorded as interrupted when its
    // pod was stopped, and this one published again): the command is done either way.
    if (waiter !== undefined && (waiter.attempt === record.attempt || record.outcome === 'succeeded')) {
      waiting.delete(record.id);
      freeRoom();
      waiter.resolve(
        outcomeOf(record, async () => {
          await store.clearPublished(runId, record.id);
          delivery.ack();
        }),
      );
      return;
    }
    if (record.attempt <= (options.recordedAttempts.get(record.id) ?? 0)) {
      delivery.ack(); // recorded by an earlier tasker of this run, which died before acking it
      return;
    }
    if (waiter !== undefined && record.attempt < waiter.attempt) {
      delivery.ack(); // an older attempt's late or duplicate result
      return;
    }
    // Not awaited yet: an attempt published by a previous tasker of this run, whose phase
    // this tasker has not reached. Held (unacked) until it is.
    const held = early.get(record.id);
    if (held !== undefined) {
      if (held.record.attempt >= record.attempt) {
        delivery.ack();
        return;
      }
      held.delivery.ack();
    }
    early.set(record.id, { record, delivery });
  };

  const onDelivery = (delivery: Delivery): void => {
    const forged = options.signingKey === undefined ? undefined : verifyBody(options.signingKey, delivery.content, delivery.headers);
    if (forged !== undefined) {
      // Not from one of our workers (or our own command, dead-lettered): counting it would let
      // anyone who can publish mark commands as done or failed. The real result is still to come,
      // or found in Redis by the reconciliation below.
      logger.error({ problem: forged, hint: 'every worker needs the same TASKER_SIGNING_KEY as the tasker' }, 'ignoring a message on the run queue that is not signed with TASKER_SIGNING_KEY');
      delivery.ack();
      return;
    }
    const kind = messageKind(delivery.content);
    if (kind === 'result') {
      const parsed = parseResultMessage(delivery.content);
      if (!parsed.ok || parsed.value.runId !== runId) {
        logger.warn({ problem: parsed.ok ? `result of run ${parsed.value.runId}` : parsed.problem }, 'ignoring a message that is not a result of this run');
        delivery.ack();
        return;
      }
      deliver(parsed.value.record, delivery);
      return;
    }
    if (kind === 'command') {
      // One of our commands, dead-lettered by RabbitMQ: it was delivered too often (its workers
      // died running it) or a worker rejected it. It failed; retries may still publish it again.
      const parsed = parseCommandMessage(delivery.content);
      if (!parsed.ok || parsed.value.runId !== runId) {
        delivery.ack();
        return;
      }
      const message: CommandMessage = parsed.value;
      const death = deathCount(delivery.headers);
      const now = new Date().toISOString();
      logger.warn({ commandId: message.id, attempt: message.attempt, deaths: death.count, reason: death.reason }, 'command dead-lettered by RabbitMQ');
      deliver(
        {
          id: message.id,
          phase: message.phase,
          phaseIndex: message.phaseIndex,
          command: message.command,
          file: message.file,
          line: message.line,
          attempt: message.attempt,
          outcome: 'dead-lettered',
          exitCode: null,
          signal: null,
          startedAt: now,
          finishedAt: now,
          durationMs: 0,
          worker: 'rabbitmq',
          log: layout.logRelativePath({ index: message.phaseIndex, name: message.phase }, message.id, message.attempt),
          reason: `dead-lettered by RabbitMQ (${death.reason}): delivered ${death.count} time(s) without a result; the command may be killing its worker (out of memory?)`,
        },
        delivery,
      );
      return;
    }
    logger.warn('ignoring an unknown message on the run queue');
    delivery.ack();
  };

  const consumer = await session.consume(names.runQueue(runId), 0, onDelivery);

  /**
   * Safety net: a worker records a result in Redis before acking, then sends it here. If it
   * died between the two, the message never comes: pick such results up from Redis.
   */
  const reconcileMs = Math.min(30_000, options.stallWarningMs);
  const reconcileTimer = setInterval(() => {
    const cutoff = Date.now() - reconcileMs;
    const stale = [...waiting.entries()].filter(([, waiter]) => waiter.since <= cutoff).slice(0, 5000);
    if (stale.length === 0) return;
    store
      .latestResults(runId, stale.map(([id]) => id))
      .then((found) => {
        for (const [id, record] of found) {
          const waiter = waiting.get(id);
          if (waiter === undefined || (record.attempt !== waiter.attempt && record.outcome !== 'succeeded')) continue;
          logger.info({ commandId: id, attempt: record.attempt }, 'result found in Redis (its message was lost)');
          waiting.delete(id);
          freeRoom();
          waiter.resolve(
            outcomeOf(record, async () => {
              await store.clearPublished(runId, id);
            }),
          );
        }
      })
      .catch((error: unknown) => logger.debug({ err: error }, 'result check in Redis failed'));
  }, reconcileMs);
  reconcileTimer.unref();

  const stallTimer = setInterval(() => {
    if (waiting.size === 0) return;
    session
      .withChannel((channel) => queueDepth(channel, names.workQueue))
      .then((depth) => {
        if (depth !== undefined && depth.consumers === 0) {
          logger.warn(
            { queue: names.workQueue, waiting: waiting.size, ready: depth.ready },
            `no worker is consuming ${names.workQueue}: ${waiting.size} commands are waiting. Start workers (e.g. kubectl scale deployment/tasker-worker --replicas=4)`,
          );
        }
        const idleMs = Date.now() - lastProgressAt;
        if (idleMs >= options.stallWarningMs) {
          logger.warn({ waiting: waiting.size, idleMs }, `nothing finished for ${formatDuration(idleMs)} (${waiting.size} commands in flight); the run goes on`);
        }
      })
      .catch((error: unknown) => logger.debug({ err: error }, 'stall check failed'));
  }, options.stallWarningMs);
  stallTimer.unref();

  return {
    dispatchFor(phase) {
      return {
        async waitForRoom() {
          while (waiting.size >= options.maxInFlight) await new Promise<void>((resolve) => roomWaiters.push(resolve));
        },
        async runAttempt(command, attempt, onStart) {
          const previous = inFlightBefore.get(command.id);
          inFlightBefore.delete(command.id);
          // Published by an earlier tasker and not yet recorded: await it rather than publish again.
          const awaitPrevious = previous !== undefined && previous > (options.recordedAttempts.get(command.id) ?? 0);
          const effectiveAttempt = awaitPrevious ? previous : attempt;
          const held = early.get(command.id);
          if (held !== undefined) {
            early.delete(command.id);
            const { record, delivery } = held;
            if (record.attempt >= effectiveAttempt) {
              return outcomeOf(record, async () => {
                await store.clearPublished(runId, record.id);
                delivery.ack();
              });
            }
            delivery.ack(); // a stale attempt's late result
          }
          const outcome = new Promise<AttemptOutcome>((resolve) => waiting.set(command.id, { attempt: effectiveAttempt, since: Date.now(), resolve }));
          if (!awaitPrevious) {
            const message: CommandMessage = {
              v: 1,
              kind: 'command',
              runId,
              phase: phase.name,
              phaseIndex: phase.index,
              id: command.id,
              attempt: effectiveAttempt,
              command: command.command,
              file: command.file,
              line: command.line,
              timeoutMs: options.timeoutMs ?? null,
              killGraceMs: options.killGraceMs,
              replyTo: names.runQueue(runId),
              ...(options.upload === undefined ? {} : { upload: options.upload }),
            };
            // x-published-at: workers report how long commands waited in the queue (metrics). It is
            // outside the signed body: a wrong value can only skew a metric.
            const body = encodeMessage(message);
            const headers = { 'x-published-at': Date.now(), ...signatureHeaders(options.signingKey, body) };
            await session.publish(names.exchange, names.runRoutingKey(runId), body, { headers });
            // Marked after the broker confirmed: a crash in between means a duplicate, never a loss.
            await store.markPublished(runId, command.id, effectiveAttempt);
          }
          onStart();
          return outcome;
        },
        killAll(reason) {
          // The workers keep running what they have: a restarted tasker awaits those results.
          const now = new Date().toISOString();
          for (const [id, waiter] of waiting) {
            waiting.delete(id);
            waiter.resolve({
              result: { outcome: 'killed', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `tasker ${reason}; still running on a worker` },
              worker: 'tasker',
              log: '',
              attempt: waiter.attempt,
            });
          }
          freeRoom();
        },
      };
    },
    async close(runOver) {
      clearInterval(stallTimer);
      clearInterval(reconcileTimer);
      await consumer.cancel();
      // Results still held unacked stay in the queue for the next tasker of this run.
      if (runOver) {
        await session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
      }
    },
  };
}
