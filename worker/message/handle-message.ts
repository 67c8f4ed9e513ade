import { parseWorkMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { checkedMessage } from './check-message.js';
import { answered, handleAttempt, type BundleTurns, type DeliveryControl, type DeliveryPorts, type Handled, type Settled } from './handle-attempt.js';

/**
 * What a worker does with one message of the work queue: a command (handle-delivery.ts), or a
 * bundle of several. A bundle's attempts run on the worker's slots side by side, each with every
 * guarantee of a command that came alone: its own lease, start count, result record, log,
 * timeout and uploads. The bundle is settled once each attempt is: acked when all have their
 * result recorded (a poison attempt's is its dead-lettered record), requeued when any has to run
 * elsewhere (drain, lost lease); a redelivered bundle skips the attempts already recorded. The
 * results go to the tasker in one message.
 */

export interface WorkPorts extends DeliveryPorts {
  /** Sends a bundle's results to the tasker, in one message. */
  publishResults(runId: string, records: readonly ResultRecord[]): Promise<void>;
  /**
   * Whether this worker sees the run's directory in its workdir (run-sight.ts); false: said,
   * and the message goes back to the queue, unrun. Unset: every run is taken as seen.
   */
  seesRun?: ((message: CommandMessage) => Promise<boolean>) | undefined;
  /** How long a message of a run not seen is held before it goes back (run-sight.ts; default 5 s). */
  unseenHoldMs?: ((runId: string) => number) | undefined;
}

/** Default of `unseenHoldMs`. */
const defaultUnseenHoldMs = 5000;

export async function handleWorkMessage(content: Buffer, ports: WorkPorts, control: DeliveryControl, headers: Record<string, unknown> = {}): Promise<Handled> {
  const parsed = checkedMessage(content, headers, ports, parseWorkMessage);
  if (parsed === undefined) return { decision: 'reject' };
  const { attempts, bundled } = parsed;
  // The attempts of a bundle share their run: one look for all of them.
  if (ports.seesRun !== undefined && !(await ports.seesRun(attempts[0]!))) return handBackUnseen(attempts[0]!.runId, ports, control);
  if (!bundled) return answered(attempts[0]!, await handleAttempt(attempts[0]!, ports, control), ports);
  return handleBundle(attempts, ports, control);
}

async function handleBundle(attempts: CommandMessage[], ports: WorkPorts, control: DeliveryControl): Promise<Handled> {
  ports.logger.debug({ runId: attempts[0]!.runId, phase: attempts[0]!.phase, ids: attempts.map((attempt) => attempt.id) }, 'bundle received');
  const turns = createTurns();
  // Begun side by side: their begin calls reach Redis in one pipeline (auto-pipelining).
  const ends = await Promise.allSettled(attempts.map((attempt) => handleAttempt(attempt, ports, control, turns)));
  const failure = ends.find((end) => end.status === 'rejected');
  // The worker's own failure (Redis, S3): the bundle goes back; what was recorded is not run again.
  if (failure !== undefined) throw failure.reason;
  const settled = ends.map((end) => (end as PromiseFulfilledResult<Settled>).value);
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
 * that sees the run takes the rest). Not held once the worker drains.
 */
async function handBackUnseen(runId: string, ports: WorkPorts, control: DeliveryControl): Promise<Handled> {
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
