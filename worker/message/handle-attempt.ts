import type { ExecutionResult } from '../../shared/exec/executor.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { CommandMessage } from '../../shared/broker/messages.js';
import { applyUploadReport, type OutputSpec, type OutputWatch } from '../../shared/storage/outputs.js';
import type { RunStore } from '../../shared/redis/redis-store.js';
import { toResultRecord, type ResultRecord } from '../../shared/state/results.js';
import { fieldsOf, recordStart, renewLease, type Gate, type Lease } from './attempt-lease.js';
import { beginAttempt, type BeginControl, type PresencePorts, type Settled } from './take-lease.js';
import { leaseOwner } from './lease-holder.js';

/**
 * What a worker does with one attempt of a command, delivered alone or in a bundle (the message
 * is checked and settled in handle-work.ts). Knows no client library: the store, the executor
 * and the publisher are ports. Returns how to settle its message, and the result to send.
 *
 * Guarantees:
 * - an invalid message, or with a signing key one whose signature does not verify, is
 *   dead-lettered, never run, never requeued;
 * - a command of an interrupted (stopped) run is not run: it is acked and taken off the run's
 *   published attempts in one Redis step, so the tasker that resumes the run publishes it again;
 * - a command whose result is already recorded is not run again (duplicate delivery); its
 *   result is sent again, in case the first sender died before sending it;
 * - one lease per command: a redelivered copy of a command that is still running elsewhere
 *   (broker consumer timeout, reconnect) waits for that run instead of starting another; a
 *   frozen worker's command too, until its lease expires. The wait holds no slot and not the
 *   worker's prefetch (begin-attempt.ts), and ends at once when the holder's worker is known
 *   dead (its process ended: lease-holder.ts);
 * - the result is recorded in Redis before the message is acked. It is then sent to the
 *   tasker; should that send be lost with its worker, the tasker finds the result in Redis;
 * - poison counts runs, not deliveries: each start is counted in Redis as the command starts,
 *   and an attempt that started `startLimit` times without a result is recorded dead-lettered
 *   and rejected (dead-lettered), not run again. A message returned unstarted (held ahead,
 *   handed back, drained, lost with a connection or a broker restart) never counts; one given
 *   up for a known reason (drain deadline) takes its start back.
 */

export type { Decision, PresencePorts, Settled } from './take-lease.js';

export interface Handled {
  decision: Settled['decision'];
  /** Runs after the message is settled: sending the result to the tasker. */
  afterSettle?: () => Promise<void>;
}

/**
 * For the attempts of a bundle: the lease is taken (with the siblings', in one round trip) before
 * a slot is waited for, and suspects take turns, so that one waiting to run alone never holds a
 * slot the one running alone waits for.
 */
export interface BundleTurns {
  /** Resolves when it is this suspect's turn; call the returned function when its turn ends. */
  suspectTurn(): Promise<() => void>;
}

export interface StartedCommand {
  result: Promise<ExecutionResult>;
  kill(reason: string): void;
  /** False while it waits for the executor's free slot (handed over early). */
  started(): boolean;
  /** Resolves true when the command starts, false when it ends without having started. */
  whenStarted: Promise<boolean>;
  /** Log path relative to the workdir. */
  log: string;
}

export type DeliveryStore = Pick<RunStore, 'beginCommand' | 'recordStart' | 'finishCommand' | 'abandonCommand' | 'renewLease'>;

export interface DeliveryPorts {
  store: DeliveryStore;
  /** The attempt's log, relative to the workdir (where its earlier starts wrote). */
  logOf(message: CommandMessage): string;
  /** `beforeStart`: asked just before it starts (slot free); false: it ends unstarted. */
  start(message: CommandMessage, beforeStart?: () => boolean | Promise<boolean>): StartedCommand;
  publishResult(message: CommandMessage, record: ResultRecord): Promise<void>;
  /** With TASKER_SIGNING_KEY: why a message is not authentic, undefined when it is. Unset: all are run. */
  authenticate?: ((content: Buffer, headers: Record<string, unknown>) => string | undefined) | undefined;
  /** Snapshot before a command whose message asks for uploads; `finish()` uploads its outputs. */
  watchOutputs(spec: OutputSpec): Promise<OutputWatch>;
  sleep(ms: number): Promise<void>;
  logger: Logger;
  workerId: string;
  /** A lease not renewed for this long is taken over (its worker is presumed dead). */
  leaseTtlMs: number;
  /** TASKER_DELIVERY_LIMIT: an attempt that started this often without a result is dead-lettered (poison). */
  startLimit: number;
  /** Absent: a lease holder is never known dead, a redelivered command waits out its lease. */
  presence?: PresencePorts | undefined;
}

export interface DeliveryControl extends BeginControl {
  /** True once the worker is shutting down: commands not started yet go back to the queue. */
  draining(): boolean;
  /**
   * Waits for one of the worker's `concurrency` slots; resolves with its release, or undefined when
   * draining. `patient`: not handed back for waiting long (a bundle's attempts wait behind each other).
   */
  acquireSlot(patient?: boolean): Promise<(() => void) | undefined>;
  /** Registers a running command so shutdown can kill it; returns the unregister function. */
  track(command: StartedCommand, message: CommandMessage): () => void;
  /** Set by shutdown for commands it killed: they are requeued, not recorded. */
  killedForDrain(command: StartedCommand): boolean;
  /**
   * Waits until the caller's is the only command of this worker (no other starts meanwhile);
   * resolves with the release, or undefined when another command already waits to run alone or
   * the worker is draining.
   */
  runAlone(): Promise<(() => void) | undefined>;
}

let leaseCounter = 0;

/** A message of one attempt settles as decided; its result is sent once it is settled. Poison is dead-lettered, not sent. */
export function answered(message: CommandMessage, settled: Settled, ports: Pick<DeliveryPorts, 'publishResult'>): Handled {
  const { decision, record } = settled;
  if (decision !== 'ack' || record === undefined) return { decision };
  return { decision, afterSettle: () => ports.publishResult(message, record) };
}

/**
 * One attempt, alone in its message (a slot first, then the lease) or in a bundle (`turns`: the
 * lease first, then a slot). One alone that has to wait for another worker's lease gives its
 * slot back meanwhile, and takes one again once it has the lease, as a bundled attempt does.
 */
export async function handleAttempt(message: CommandMessage, ports: DeliveryPorts, control: DeliveryControl, turns?: BundleTurns): Promise<Settled> {
  const owner = leaseOwner(ports.workerId, ++leaseCounter, ports.presence?.ownUpSinceMs() !== undefined);
  if (turns !== undefined) {
    const begun = await beginAttempt(message, owner, ports, control);
    return 'decision' in begun ? begun : runHolding(message, owner, begun.priorStarts, ports, control, turns);
  }
  let slot = await control.acquireSlot();
  if (slot === undefined) return { decision: 'requeue' };
  const giveSlotBack = (): void => {
    slot?.();
    slot = undefined;
  };
  try {
    const begun = await beginAttempt(message, owner, ports, control, giveSlotBack);
    if ('decision' in begun) return begun;
    return await runHolding(message, owner, begun.priorStarts, ports, control, slot === undefined ? aloneInItsMessage : undefined);
  } finally {
    giveSlotBack();
  }
}

/** The turns of an attempt alone in its message: its own, at once. */
const aloneInItsMessage: BundleTurns = { suspectTurn: () => Promise.resolve(() => undefined) };

/**
 * With the lease taken: renews it until the attempt is settled (waiting to run alone, the output
 * watch and uploads included), and on the worker's own failure (Redis, S3) releases it and takes
 * the start back, so the requeued copy runs at once elsewhere, uncounted.
 */
async function runHolding(message: CommandMessage, owner: string, priorStarts: number, ports: DeliveryPorts, control: DeliveryControl, turns?: BundleTurns): Promise<Settled> {
  const lease: Lease = { owner, lost: false };
  const gate: Gate = { starts: 0, refused: false };
  const stopRenewing = renewLease(message, lease, ports);
  try {
    if (turns === undefined) return await runSuspectAlone(message, lease, gate, priorStarts, ports, control);
    return await runOnSlot(message, lease, gate, priorStarts, ports, control, turns);
  } catch (error) {
    const started = gate.starts > 0 ? { attempt: message.attempt, worker: ports.workerId } : undefined;
    await ports.store.abandonCommand(message.runId, message.id, owner, started).catch((cause: unknown) => ports.logger.warn({ ...fieldsOf(message), err: cause }, 'could not give the command back'));
    throw error;
  } finally {
    stopRenewing();
  }
}

/** A bundled attempt, its lease held: waits for its turn (a suspect) and a slot, then runs. */
async function runOnSlot(message: CommandMessage, lease: Lease, gate: Gate, priorStarts: number, ports: DeliveryPorts, control: DeliveryControl, turns: BundleTurns): Promise<Settled> {
  const endTurn = priorStarts > 0 ? await turns.suspectTurn() : undefined;
  try {
    // Patient: waiting behind its own bundle's commands is expected, it is not handed back for that.
    const release = await control.acquireSlot(true);
    if (release === undefined) {
      await ports.store.abandonCommand(message.runId, message.id, lease.owner);
      return { decision: 'requeue' };
    }
    try {
      return await runSuspectAlone(message, lease, gate, priorStarts, ports, control);
    } finally {
      release();
    }
  } finally {
    endTurn?.();
  }
}

/**
 * A command that already started without a result (its worker was lost while running it) runs
 * alone: the worker waits until its other commands end and starts no others meanwhile. All the
 * commands of a worker that died are suspects; run alone, the one that kills its worker keeps
 * doing so (and reaches the limit), and its neighbours finish. Another suspect already waiting
 * here goes back to the queue (not counted), for another worker.
 */
async function runSuspectAlone(message: CommandMessage, lease: Lease, gate: Gate, priorStarts: number, ports: DeliveryPorts, control: DeliveryControl): Promise<Settled> {
  if (priorStarts === 0) return run(message, lease, gate, ports, control);
  const fields = fieldsOf(message);
  ports.logger.info({ ...fields, starts: priorStarts }, 'command started before without a result (its worker was lost): running it alone here');
  const alone = await control.runAlone();
  if (alone === undefined) {
    await ports.store.abandonCommand(message.runId, message.id, lease.owner);
    ports.logger.info(fields, 'another command runs alone here, or the worker is stopping: back to the queue');
    return { decision: 'requeue' };
  }
  try {
    return await run(message, lease, gate, ports, control);
  } finally {
    alone();
  }
}

/** Runs a command whose lease this worker holds; records its result before the message is acked. */
async function run(message: CommandMessage, lease: Lease, gate: Gate, ports: DeliveryPorts, control: DeliveryControl): Promise<Settled> {
  const { logger, store } = ports;
  const { owner } = lease;
  const fields = fieldsOf(message);
  const upload = message.upload;
  const watch = upload === undefined || upload.patterns.length === 0 ? undefined : await ports.watchOutputs(upload);
  const started = ports.start(message, () => recordStart(message, lease, gate, ports));
  const untrack = control.track(started, message);
  let result: ExecutionResult;
  try {
    result = await started.result;
  } finally {
    untrack();
  }
  // Done only when its outputs are uploaded: a failed upload fails the attempt.
  if (watch !== undefined && result.outcome === 'succeeded' && !control.killedForDrain(started)) result = applyUploadReport(result, await watch.finish());

  const { starts } = gate;
  if (gate.refused) {
    lease.settling = true;
    await store.abandonCommand(message.runId, message.id, owner);
    logger.warn(fields, 'lost the lease before the command started (was this worker frozen?): not run here, back to the queue');
    return { decision: 'requeue' };
  }
  if (control.killedForDrain(started)) {
    lease.settling = true;
    await store.abandonCommand(message.runId, message.id, owner, starts > 0 ? { attempt: message.attempt, worker: ports.workerId } : undefined);
    logger.info(fields, 'not run to its end here (shutdown, or handed back before it started): back to the queue for another worker');
    return { decision: 'requeue' };
  }
  const record = toResultRecord(message, message.attempt, result, ports.workerId, started.log);
  if (starts > 1) record.starts = starts;
  lease.settling = true;
  await store.finishCommand(message.runId, record, owner);
  logger.info({ ...fields, outcome: record.outcome, exitCode: record.exitCode, durationMs: record.durationMs }, 'command finished');
  return { decision: 'ack', record };
}
