import type { CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { BeginOutcome, RunStanding } from '../../shared/state/run-store.js';
import { poisonRecord } from '../../shared/state/results.js';
import type { Control, MessagePorts, PresencePorts, AttemptEnd } from '../ports.js';
import { judgeHolder, presenceOf, type HolderAbsence } from './lease-holder.js';

/**
 * A command's lease: taken (or the answer that the message is not to run: a run purged, unknown or
 * over: dead-lettered; an interrupted run, a duplicate: acked; poison), waited for while another
 * worker holds it, then held while it runs: renewed, and checked and counted at the start. This
 * file alone changes a held lease's state.
 */

type TakePorts = Pick<MessagePorts, 'store' | 'logger' | 'workerId' | 'leaseTtlMs' | 'startLimit' | 'logOf' | 'sleep' | 'presence'>;

/** What the log says of an attempt. */
export function fieldsOf(message: CommandMessage): { runId: string; phase: string; commandId: string; attempt: number } {
  return { runId: message.runId, phase: message.phase, commandId: message.id, attempt: message.attempt };
}

export interface HeldLease {
  readonly owner: string;
  /**
   * The executor's `beforeStart`, asked with a runner free just before the command starts: in one
   * round trip, is the lease still this worker's (it may have waited, or been frozen, while another
   * worker took the command over), and count the start. A start is thus recorded before the
   * command runs, so a command that brings its worker down is always counted (poison). False: not
   * started here, back to the queue.
   */
  gateStart(): Promise<boolean>;
  /** Starts counted by the gate (0: none; a late answer's start is counted, and refused). */
  starts(): number;
  /** The gate found the lease lost (or could not count the start): the command did not start here. */
  refused(): boolean;
  /** Its result is being recorded, or it is given back: Redis releases the lease on purpose from now on, which is not a loss. */
  releasingOnPurpose(): void;
  /** Stops renewing it (the lease itself is released by finishCommand or abandonCommand). */
  stopRenewing(): void;
}

/** Holds the lease `owner` took: renewed every third of its TTL until `stopRenewing` (uploads included: a slow upload must not let another worker take over). */
export function holdLease(message: CommandMessage, owner: string, ports: Pick<MessagePorts, 'store' | 'logger' | 'workerId' | 'leaseTtlMs' | 'presence'>): HeldLease {
  const { logger, store } = ports;
  const fields = fieldsOf(message);
  let lost = false;
  let settling = false;
  let starts = 0;
  let refused = false;
  const timer = setInterval(() => {
    store.renewLease(message.runId, message.id, owner, ports.leaseTtlMs).then(
      (held) => {
        if (held || settling) return;
        lost = true;
        logger.warn(fields, 'lost the lease of a running command (Redis was unreachable for too long?)');
      },
      (error: unknown) => logger.warn({ ...fields, err: error }, 'could not renew the lease'),
    );
  }, Math.max(100, Math.floor(ports.leaseTtlMs / 3)));
  return {
    owner,
    async gateStart() {
      const now = (): number => ports.presence?.nowMs() ?? Date.now();
      const askedAtMs = now();
      try {
        const counted = lost ? -1 : await store.recordStart(message.runId, message.id, message.attempt, ports.workerId, owner, ports.leaseTtlMs);
        if (counted >= 0) starts = counted;
        // Redis renewed the lease when it counted the start; a worker frozen (SIGSTOP, a VM pause)
        // after that, before the command started, may have lost it meanwhile. An answer older than
        // half the TTL is not trusted: not started here, its start given back (run(), handle-message.ts).
        const waitedMs = now() - askedAtMs;
        const late = counted >= 0 && waitedMs > ports.leaseTtlMs / 2;
        if (late) logger.warn({ ...fields, waitedMs }, 'the start gate answered too late to trust the lease (was this worker frozen?)');
        if (counted >= 0 && !late) return true;
        lost = true;
        refused = true;
        return false;
      } catch (error) {
        logger.warn({ ...fields, err: error }, 'could not record the start of a command: not started here');
        refused = true;
        return false;
      }
    },
    starts: () => starts,
    refused: () => refused,
    releasingOnPurpose: () => {
      settling = true;
    },
    stopRenewing: () => clearInterval(timer),
  };
}

/**
 * While it waits, the message holds no slot (`onWait` gives it back) and not the worker's prefetch
 * (`waitingForLease`): the worker keeps running other commands. The wait ends when the holder
 * finishes (a duplicate: acked), when its lease expires (TASKER_LEASE_TTL), or sooner, when its
 * worker is known dead (lease-holder.ts): then the lease is taken over at once. Resolves with the
 * command's starts so far (to run it), or how to settle a message not to run.
 */
export async function takeLease(message: CommandMessage, owner: string, ports: TakePorts, control: Pick<Control, 'draining' | 'waitingForLease'>, onWait?: () => void): Promise<AttemptEnd | { priorStarts: number }> {
  const fields = fieldsOf(message);
  let endWait: (() => void) | undefined;
  let absence: HolderAbsence | undefined;
  let goneHolder: string | undefined;
  try {
    for (;;) {
      const begun = await ports.store.beginCommand(message.runId, message.id, message.attempt, owner, ports.leaseTtlMs, ports.startLimit, goneHolder);
      if (begun.kind !== 'busy') return await settleBegun(message, owner, begun, ports);
      if (endWait === undefined) {
        ports.logger.info({ ...fields, holder: begun.holder }, 'command is running elsewhere: waiting for it instead of running it twice (running other commands meanwhile)');
        onWait?.();
        endWait = control.waitingForLease();
      }
      if (control.draining()) return { decision: 'requeue' };
      if (goneHolder === undefined) {
        absence = await lookAtHolder(begun.holder, absence, ports.presence);
        if (absence.gone) {
          ports.logger.warn({ ...fields, holder: begun.holder }, 'the worker holding the command’s lease is gone (its process ended): taking the command over now, not when the lease expires');
          goneHolder = begun.holder;
          continue;
        }
      } else goneHolder = undefined; // another worker took it over first: its holder is judged afresh
      await ports.sleep(Math.min(1000, ports.leaseTtlMs / 3));
    }
  } finally {
    endWait?.();
  }
}

/** What Redis said, when it is not "busy": run it, or how to settle its message. */
async function settleBegun(message: CommandMessage, owner: string, begun: Exclude<BeginOutcome, { kind: 'busy' }>, ports: TakePorts): Promise<AttemptEnd | { priorStarts: number }> {
  const { logger } = ports;
  const fields = fieldsOf(message);
  switch (begun.kind) {
    case 'started':
      return { priorStarts: begun.priorStarts ?? 0 };
    case 'cancelled':
    case 'unknown':
    case 'over':
      return refusedRun(logger, fields, begun.kind);
    case 'stopped':
      // Taken off the run's published attempts with this answer: its resume publishes it again.
      logger.info(fields, 'run is interrupted: command not run, its tasker publishes it again on resume');
      return { decision: 'ack' };
    case 'finished':
      // Its record, sent again in case its first sender died before sending it; none once the tasker has it.
      logger.info({ ...fields, outcome: begun.record?.outcome ?? 'recorded by the tasker' }, 'duplicate delivery of a finished command: not run again');
      return { decision: 'ack', record: begun.record };
    case 'poison': {
      // Recorded first: the tasker reads this record (and its reason) when the dead letter reaches it.
      const usage = await ports.store.lastUsage?.(message.runId, message.id).catch(() => undefined); // unread: the reason goes without it
      const record = poisonRecord(message, message.attempt, begun.starts, ports.workerId, ports.logOf(message), new Date(), usage?.attempt === message.attempt ? usage : undefined);
      await ports.store.finishCommand(message.runId, record, owner);
      logger.error({ ...fields, starts: begun.starts.n, workers: [...new Set(begun.starts.workers)] }, 'command started too often without a result: dead-lettered, not run again');
      return { decision: 'reject', record };
    }
  }
}

const refusedRuns: Record<Exclude<RunStanding, 'live'>, { message: string; hint: string }> = {
  cancelled: { message: 'run cancelled (tasker cancel, or purged)', hint: 'none of its commands runs again' },
  unknown: { message: 'run is unknown to Redis', hint: 'never registered by a tasker, purged, expired 7 days after its end, or Redis lost its data (resuming the run registers it again)' },
  over: { message: 'run is finished', hint: 'this attempt has no result in the finished run (resuming the run runs what it lacks)' },
};

/**
 * A message of a run that is purged, unknown or over: nobody awaits it, so it is a replayed or
 * leftover message. Said loudly and dead-lettered (kept for inspection), never run; nothing of it
 * is written to Redis.
 */
export function refusedRun(logger: Logger, fields: Record<string, unknown>, standing: Exclude<RunStanding, 'live'>): AttemptEnd {
  const { message, hint } = refusedRuns[standing];
  logger.error({ ...fields, standing, hint }, `${message}: a replayed or leftover message, dead-lettered, not run`);
  return { decision: 'reject' };
}

/** One more look at the holder's presence. A holder that announces none, or Redis not saying, counts as present. */
async function lookAtHolder(holder: string, previous: HolderAbsence | undefined, presence: PresencePorts | undefined): Promise<HolderAbsence> {
  const worker = presenceOf(holder);
  if (presence === undefined || worker === undefined) return judgeHolder(previous, { holder, present: undefined, nowMs: 0, ownUpSinceMs: undefined });
  const present = await presence.workerPresent(worker).catch(() => undefined); // unknown: wait, as for a live holder
  return judgeHolder(previous, { holder, present, nowMs: presence.nowMs(), ownUpSinceMs: presence.ownUpSinceMs() });
}
