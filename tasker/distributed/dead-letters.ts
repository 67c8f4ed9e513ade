import type { Decision, Delivery } from '../../shared/broker/amqp-session.js';
import { combinedDecision } from './result-inbox.js';
import { brokerDeliveryLimit } from '../../shared/broker/amqp-topology.js';
import { parseWorkMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStanding, RunStore } from '../../shared/state/run-store.js';
import { deadLetteredRecord, type ResultRecord } from '../../shared/state/results.js';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';

/**
 * Our own commands, dead-lettered onto the run queue: each attempt is a failure, with the truest
 * reason at hand (what its worker recorded in Redis, else why a worker or RabbitMQ gave it up:
 * poison, not authentic, invalid, or of a run not live in Redis).
 */

export interface DeadLetterOptions {
  runId: string;
  layout: RunLayout;
  logger: Logger;
  store: Pick<RunStore, 'latestResults' | 'runStanding'>;
  /** TASKER_SIGNING_KEY of this tasker: says why a worker may have refused a command. */
  signingKey: string | undefined;
  /** Where the failure it stands for goes, as a result of the command; resolves with the message's decision for it. */
  deliver: (record: ResultRecord) => Promise<Decision>;
}

/** The part of a dead-lettered message needed to say which attempt failed: what survives even an invalid one. */
type AttemptRef = Pick<CommandMessage, 'id' | 'attempt'> & Partial<Pick<CommandMessage, 'phase' | 'phaseIndex' | 'command' | 'file' | 'line'>>;

/** Why RabbitMQ dead-lettered it, from the headers it adds (x-death: the first entry is the latest). */
export function deathReason(headers: Record<string, unknown>): string {
  const deaths = headers['x-death'];
  const first = Array.isArray(deaths) && deaths.length > 0 ? (deaths[0] as { reason?: unknown }) : undefined;
  return String(first?.reason ?? headers['x-first-death-reason'] ?? 'unknown');
}

/**
 * The reason for a dead letter with no record from a worker. A worker refuses (rejects) a message
 * it cannot read, one whose signature does not verify there, and one of a run that is not live in
 * Redis (`standing`: purged, unknown, over); with the signature checked at both ends, a key on one
 * side only is refused too: signed by this tasker, a worker running with TASKER_SIGNING=off
 * refuses it; unsigned, a worker with a key refuses it.
 */
export function deadLetterReason(headers: Record<string, unknown>, signingKey: string | undefined, invalid: string | undefined, standing: RunStanding = 'live'): string {
  if (invalid !== undefined) return `invalid message, dead-lettered without running it: ${invalid}`;
  const reason = deathReason(headers);
  if (reason === 'rejected' && standing !== 'live') {
    return `a worker refused to run it: Redis holds this run as ${standing === 'unknown' ? 'unknown (its keys are gone: purged, or Redis lost its data)' : standing === 'cancelled' ? 'cancelled' : 'finished'}, and workers run no command of such a run`;
  }
  if (reason === 'rejected') {
    return signingKey === undefined
      ? 'a worker refused to run it: this tasker runs unsigned (TASKER_SIGNING=off) and the workers have a TASKER_SIGNING_KEY (or the worker could not read it: see its log)'
      : "a worker refused to run it: the signature did not verify there (do all workers have this tasker's TASKER_SIGNING_KEY? A worker with TASKER_SIGNING=off refuses signed commands)";
  }
  if (reason === 'delivery_limit') {
    // Quorum queues count returns in x-delivery-count (RabbitMQ 4.3 and later: only failed ones; x-acquired-count: all).
    const deliveries = headers['x-delivery-count'] ?? headers['x-acquired-count'];
    const count = deliveries === undefined ? `more than ${brokerDeliveryLimit}` : String(deliveries);
    return `dead-lettered by RabbitMQ after ${count} deliveries without a result (its backstop limit ${brokerDeliveryLimit}): its workers were lost before they could count a start`;
  }
  return `dead-lettered by RabbitMQ (${reason}) without a result`;
}

/** The failed result a dead-lettered attempt stands for, when no worker recorded one. */
function recordOf(ref: AttemptRef, reason: string, layout: RunLayout): ResultRecord {
  const phase = { index: ref.phaseIndex ?? 0, name: ref.phase ?? '' };
  const command = { id: ref.id, phase: phase.name, phaseIndex: phase.index, command: ref.command ?? '', file: ref.file ?? '', line: ref.line ?? 0 };
  return deadLetteredRecord(command, ref.attempt, 'rabbitmq', layout.logRelativePath(phase, ref.id, ref.attempt), reason, new Date());
}

/** Which attempts of this run an invalid message (a command, or a bundle) was, as far as it says: else none are ours to count. */
function attemptsOfInvalid(content: Buffer, runId: string): AttemptRef[] {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
  } catch {
    return []; // not JSON: nothing in it names an attempt of this run
  }
  if (value === null || typeof value !== 'object' || value['runId'] !== runId) return [];
  const listed = Array.isArray(value['commands']) ? (value['commands'] as unknown[]) : [value];
  return listed.flatMap((entry) => {
    const one = (entry ?? {}) as Record<string, unknown>;
    if (typeof one['id'] !== 'string' || !Number.isInteger(one['attempt'])) return [];
    const pick = <T>(key: string, type: string): T | undefined => (typeof one[key] === type ? (one[key] as T) : typeof value[key] === type ? (value[key] as T) : undefined);
    return [{ id: one['id'], attempt: one['attempt'] as number, phase: pick('phase', 'string'), phaseIndex: pick('phaseIndex', 'number'), command: pick('command', 'string'), file: pick('file', 'string'), line: pick('line', 'number') }];
  });
}

/**
 * What a worker recorded for this attempt: the poison record it wrote before dead-lettering it,
 * or the real result of a copy that ran (a duplicate can reach a limit after its attempt ended).
 * The same rule as the workers' begin script: this attempt's result, or any success.
 */
function workerRecord(message: AttemptRef, latest: ResultRecord | undefined): ResultRecord | undefined {
  return latest !== undefined && (latest.attempt === message.attempt || latest.outcome === 'succeeded') ? latest : undefined;
}

/**
 * Delivers each attempt of a dead-lettered command or bundle of this run as its result: what its
 * worker recorded, else a dead-lettered failure; acks anything else. A worker dead-letters an
 * attempt that started TASKER_DELIVERY_LIMIT times without a result (it records why in Redis
 * first), or a message it cannot run (not authentic, or invalid there); RabbitMQ dead-letters one
 * past its backstop delivery limit. Retries may still publish the command again.
 */
export async function deliverDeadLettered(delivery: Delivery, options: DeadLetterOptions): Promise<Decision> {
  const parsed = parseWorkMessage(delivery.content);
  const invalid = parsed.ok ? undefined : parsed.problem;
  const refs = parsed.ok ? parsed.value.attempts.filter((attempt) => attempt.runId === options.runId) : attemptsOfInvalid(delivery.content, options.runId);
  if (refs.length === 0) return 'ack';
  const found = await options.store.latestResults(options.runId, refs.map((ref) => ref.id));
  // Asked only when a worker refused it without a record: was it for the run's state in Redis?
  const unrecorded = refs.some((ref) => workerRecord(ref, found.get(ref.id)) === undefined);
  const standing = unrecorded && invalid === undefined && deathReason(delivery.headers) === 'rejected' ? await options.store.runStanding(options.runId) : 'live';
  const decisions = refs.map((ref): Promise<Decision> => {
    const recorded = workerRecord(ref, found.get(ref.id));
    // Refused because the run is cancelled: it never started, and stays unrecorded (wind-down.ts), not a failure.
    if (recorded === undefined && standing === 'cancelled') return Promise.resolve('ack');
    const record = recorded ?? recordOf(ref, deadLetterReason(delivery.headers, options.signingKey, invalid, standing), options.layout);
    if (record.outcome === 'dead-lettered') options.logger.warn({ commandId: ref.id, attempt: ref.attempt, reason: record.reason }, 'command dead-lettered');
    return options.deliver(record);
  });
  return combinedDecision(decisions);
}
