import { parseWorkMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { AttemptEnd, BundleTurns, Control, Envelope, MessagePorts, Settlement } from '../ports.js';
import { answered, handleAttempt } from './handle-attempt.js';
import { refusedRun } from './lease.js';

/**
 * One message of a work queue: checked (authentic, valid: else dead-lettered, never run), then
 * one attempt (handle-attempt.ts) or a bundle's attempts side by side, each with every guarantee
 * of a command that came alone; its decision is made once each attempt has ended (the broker
 * adapter carries it out).
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
  // Begun side by side: their begin calls reach Redis in one pipeline (auto-pipelining).
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
