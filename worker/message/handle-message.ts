import { parseWorkMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import { toResultRecord } from '../../shared/state/results.js';
import { applyUploadReport } from '../../shared/storage/outputs.js';
import type { AttemptEnd, BundleTurns, Control, Envelope, MessagePorts, Settlement } from '../ports.js';
import { fieldsOf, holdLease, refusedRun, takeLease, type HeldLease } from './lease.js';
import { leaseOwner } from './lease-holder.js';

/**
 * One message of a work queue: checked (authentic, valid: else dead-lettered, never run), then
 * one attempt or a bundle's attempts side by side, each with every guarantee of a command that
 * came alone: a slot and the lease, run, record. Pure orchestration on ports; its decision is made
 * once each attempt has ended (the broker adapter carries it out). The guarantees it keeps (one
 * lease per command, record before ack, poison counts starts) are in docs/architecture.md.
 */

/** Default of `unseenHoldMs`. */
const defaultUnseenHoldMs = 5000;

export async function handleMessage(content: Buffer, ports: MessagePorts, control: Control, envelope: Envelope = { headers: {}, routingKey: '' }): Promise<Settlement> {
  const parsed = checkedMessage(content, envelope, ports);
  if (parsed === undefined) return { decision: 'reject' };
  const { attempts, bundled } = parsed;
  // The attempts of a bundle share their run: one look for all of them.
  if (ports.seesRun !== undefined && !(await ports.seesRun(attempts[0]!))) return unseenRun(attempts[0]!, ports, control);
  if (!bundled) return answered(attempts[0]!, await handleAttempt(attempts[0]!, ports, control), ports);
  return handleBundle(attempts, ports, control);
}

/**
 * A bundle is acked when every attempt has its result recorded (a poison attempt's is its
 * dead-lettered record), requeued when any has to run elsewhere (drain, lost lease); a redelivered
 * bundle skips the attempts already recorded. The results go to the tasker in one message.
 */
async function handleBundle(attempts: CommandMessage[], ports: MessagePorts, control: Control): Promise<Settlement> {
  ports.logger.debug({ runId: attempts[0]!.runId, phase: attempts[0]!.phase, ids: attempts.map((attempt) => attempt.id) }, 'bundle received');
  const turns = createTurns();
  // Begun side by side: their begin calls reach Redis in one script call (shared/redis/redis-command-batch.ts).
  const ends = await Promise.allSettled(attempts.map((attempt) => handleAttempt(attempt, ports, control, turns)));
  const failure = ends.find((end) => end.status === 'rejected');
  // The worker's own failure (Redis, S3): the bundle goes back; what was recorded is not run again.
  if (failure !== undefined) throw failure.reason;
  const settled = ends.map((end) => (end as PromiseFulfilledResult<AttemptEnd>).value);
  // A refused attempt (its run purged, unknown or over: no record) dead-letters the whole bundle;
  // a poison one has its record, and counts as settled.
  if (settled.some((one) => one.decision === 'reject' && one.record === undefined)) return { decision: 'reject' };
  const records = settled.flatMap((one) => (one.record === undefined ? [] : [one.record]));
  const decision = settled.some((one) => one.decision === 'requeue') ? 'requeue' : 'ack';
  ports.logger.debug({ runId: attempts[0]!.runId, phase: attempts[0]!.phase, attempts: attempts.length, recorded: records.length, decision }, 'bundle settled');
  const { runId } = attempts[0]!;
  return records.length === 0 ? { decision } : { decision, afterSettle: () => ports.publishResults(runId, records) };
}

/**
 * A message of a run this worker cannot see goes back to the queue, unrun, for a worker that sees
 * it: held a while first, so that a worker alone with it does not take it back at once, over and
 * over (its prefetch is held meanwhile, so it takes nothing else of the queue either; a worker
 * that sees the run takes the rest). Not held once the worker drains. Unless the run is purged,
 * unknown or over: then no worker is to run it, and it is dead-lettered as the begin script would.
 */
async function unseenRun(message: CommandMessage, ports: MessagePorts, control: Control): Promise<Settlement> {
  const standing = (await ports.runStanding?.(message.runId)) ?? 'live';
  if (standing !== 'live') return refusedRun(ports.logger, { runId: message.runId, phase: message.phase }, standing);
  const { runId } = message;
  const holdMs = ports.unseenHoldMs?.(runId) ?? defaultUnseenHoldMs;
  const stepMs = Math.min(250, holdMs);
  for (let held = 0; held < holdMs && !control.draining(); held += stepMs) await ports.sleep(stepMs);
  return { decision: 'requeue' };
}

/** Suspects of one bundle run alone one after another, never waiting for each other's slot. */
function createTurns(): BundleTurns {
  let previous = Promise.resolve();
  return {
    suspectTurn() {
      const before = previous;
      let end!: () => void;
      previous = new Promise<void>((resolve) => (end = resolve));
      return before.then(() => end);
    },
  };
}

/** The message parsed, if it is to be run: undefined (logged; it is dead-lettered) when it is not authentic (with a signing key) or not valid. */
function checkedMessage(content: Buffer, envelope: Envelope, ports: Pick<MessagePorts, 'authenticate' | 'logger'>): { attempts: CommandMessage[]; bundled: boolean } | undefined {
  const { logger } = ports;
  const forged = ports.authenticate?.(content, envelope);
  if (forged !== undefined) {
    const hint = 'the tasker and every worker need the same TASKER_SIGNING_KEY (or all of them TASKER_SIGNING=off)';
    logger.error({ problem: forged, routingKey: envelope.routingKey, bytes: content.length, hint }, 'message not authentic: dead-lettered, not run');
    return undefined;
  }
  const parsed = parseWorkMessage(content);
  if (!parsed.ok) {
    logger.error({ problem: parsed.problem, bytes: content.length }, 'invalid message: dead-lettered, not run');
    return undefined;
  }
  return parsed.value;
}

// ---- one attempt, alone in its message or in a bundle

let leaseCounter = 0;

/** A message of one attempt settles as decided; its result is sent once it is settled. Poison is dead-lettered, not sent. */
function answered(message: CommandMessage, settled: AttemptEnd, ports: Pick<MessagePorts, 'publishResults'>): Settlement {
  const { decision, record } = settled;
  if (decision !== 'ack' || record === undefined) return { decision };
  return { decision, afterSettle: () => ports.publishResults(message.runId, [record]) };
}

/**
 * One attempt, alone in its message (a slot first, then the lease) or in a bundle (`turns`: the
 * lease first, then a slot). One alone that has to wait for another worker's lease gives its
 * slot back meanwhile, and takes one again once it has the lease, as a bundled attempt does.
 */
async function handleAttempt(message: CommandMessage, ports: MessagePorts, control: Control, turns?: BundleTurns): Promise<AttemptEnd> {
  const owner = leaseOwner(ports.workerId, ++leaseCounter, ports.presence?.ownUpSinceMs() !== undefined);
  if (turns !== undefined) {
    const begun = await takeLease(message, owner, ports, control);
    return 'decision' in begun ? begun : runHolding(message, owner, begun.priorStarts, ports, control, turns);
  }
  let slot = await control.acquireSlot(false, message);
  if (slot === undefined) return { decision: 'requeue' };
  const giveSlotBack = (): void => {
    slot?.();
    slot = undefined;
  };
  try {
    const begun = await takeLease(message, owner, ports, control, giveSlotBack);
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
async function runHolding(message: CommandMessage, owner: string, priorStarts: number, ports: MessagePorts, control: Control, turns?: BundleTurns): Promise<AttemptEnd> {
  const lease = holdLease(message, owner, ports);
  try {
    if (turns === undefined) return await runSuspectAlone(message, lease, priorStarts, ports, control);
    return await runOnSlot(message, lease, priorStarts, ports, control, turns);
  } catch (error) {
    await ports.store.abandonCommand(message.runId, message.id, owner, startedHere(message, lease, ports)).catch((cause: unknown) => ports.logger.warn({ ...fieldsOf(message), err: cause }, 'could not give the command back'));
    throw error;
  } finally {
    lease.stopRenewing();
  }
}

/** A bundled attempt, its lease held: waits for its turn (a suspect) and a slot, then runs. */
async function runOnSlot(message: CommandMessage, lease: HeldLease, priorStarts: number, ports: MessagePorts, control: Control, turns: BundleTurns): Promise<AttemptEnd> {
  const endTurn = priorStarts > 0 ? await turns.suspectTurn() : undefined;
  try {
    // Patient: waiting behind its own bundle's commands is expected, it is not handed back for that.
    const release = await control.acquireSlot(true);
    if (release === undefined) {
      await ports.store.abandonCommand(message.runId, message.id, lease.owner);
      return { decision: 'requeue' };
    }
    try {
      return await runSuspectAlone(message, lease, priorStarts, ports, control);
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
async function runSuspectAlone(message: CommandMessage, lease: HeldLease, priorStarts: number, ports: MessagePorts, control: Control): Promise<AttemptEnd> {
  if (priorStarts === 0) return run(message, lease, ports, control);
  const fields = fieldsOf(message);
  ports.logger.info({ ...fields, starts: priorStarts }, 'command started before without a result (its worker was lost): running it alone here');
  const alone = await control.runAlone();
  if (alone === undefined) {
    await ports.store.abandonCommand(message.runId, message.id, lease.owner);
    ports.logger.info(fields, 'another command runs alone here, or the worker is stopping: back to the queue');
    return { decision: 'requeue' };
  }
  try {
    return await run(message, lease, ports, control);
  } finally {
    alone();
  }
}

/** The start this worker counted for the attempt, to take back when it gives the command back; undefined when it counted none. */
function startedHere(message: CommandMessage, lease: HeldLease, ports: Pick<MessagePorts, 'workerId'>): { attempt: number; worker: string } | undefined {
  return lease.starts() > 0 ? { attempt: message.attempt, worker: ports.workerId } : undefined;
}

/** Runs a command whose lease this worker holds; records its result before the message is acked. */
async function run(message: CommandMessage, lease: HeldLease, ports: MessagePorts, control: Control): Promise<AttemptEnd> {
  const { logger, store } = ports;
  const { owner } = lease;
  const fields = fieldsOf(message);
  const upload = message.upload;
  const watch = upload === undefined || upload.patterns.length === 0 ? undefined : await ports.watchOutputs(upload);
  const started = ports.start(message, () => lease.gateStart());
  const untrack = control.track(started, message);
  let result: ExecutionResult;
  try {
    result = await started.result;
  } finally {
    untrack();
  }
  // Done only when its outputs are uploaded: a failed upload fails the attempt.
  if (watch !== undefined && result.outcome === 'succeeded' && !control.killedForDrain(started)) result = applyUploadReport(result, await watch.finish());

  const starts = lease.starts();
  if (lease.refused()) {
    lease.releasingOnPurpose();
    // A start counted by a gate that answered too late did not happen: taken back.
    await store.abandonCommand(message.runId, message.id, owner, startedHere(message, lease, ports));
    logger.warn(fields, 'lost the lease before the command started (was this worker frozen?): not run here, back to the queue');
    return { decision: 'requeue' };
  }
  if (control.killedForDrain(started)) {
    lease.releasingOnPurpose();
    await store.abandonCommand(message.runId, message.id, owner, startedHere(message, lease, ports));
    logger.info(fields, 'not run to its end here (shutdown, or handed back before it started): back to the queue for another worker');
    return { decision: 'requeue' };
  }
  const record = toResultRecord(message, message.attempt, result, ports.workerId, started.log, ports.placement);
  if (starts > 1) record.starts = starts;
  lease.releasingOnPurpose();
  await store.finishCommand(message.runId, record, owner);
  logger.info({ ...fields, outcome: record.outcome, exitCode: record.exitCode, durationMs: record.durationMs }, 'command finished');
  return { decision: 'ack', record };
}
