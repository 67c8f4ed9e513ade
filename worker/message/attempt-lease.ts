import type { CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { RunStore } from '../../shared/redis/redis-store.js';

/** The lease a worker holds on an attempt while it runs it: renewed, checked and counted at the start. */

/** What the log says of an attempt. */
export function fieldsOf(message: CommandMessage): { runId: string; phase: string; commandId: string; attempt: number } {
  return { runId: message.runId, phase: message.phase, commandId: message.id, attempt: message.attempt };
}

/** What the lease needs of the worker's delivery ports. */
export interface LeasePorts {
  store: Pick<RunStore, 'recordStart' | 'renewLease'>;
  logger: Logger;
  workerId: string;
  leaseTtlMs: number;
}

/** The lease this worker holds on a command, as far as it knows. */
export interface Lease {
  owner: string;
  /** Redis said another worker holds it now. */
  lost: boolean;
  /** Being settled (its result recorded, or given back): the lease is released on purpose, not lost. */
  settling?: boolean;
}

/** The start gate's findings: the starts counted (0: none), or that the lease was found lost. */
export interface Gate {
  starts: number;
  refused: boolean;
}

/**
 * Asked with an executor slot reserved, just before the command starts: in one round trip, is
 * the lease still this worker's (it may have waited for a slot, or been frozen, while another
 * worker took the command over and ran it), and count the start. A start is thus recorded before
 * the command runs, so a command that brings its worker down is always counted (poison). False:
 * the command is not started here and goes back to the queue.
 */
export async function recordStart(message: CommandMessage, lease: Lease, gate: Gate, ports: LeasePorts): Promise<boolean> {
  try {
    const starts = lease.lost ? -1 : await ports.store.recordStart(message.runId, message.id, message.attempt, ports.workerId, lease.owner, ports.leaseTtlMs);
    if (starts < 0) {
      lease.lost = true;
      gate.refused = true;
      return false;
    }
    gate.starts = starts;
    return true;
  } catch (error) {
    ports.logger.warn({ ...fieldsOf(message), err: error }, 'could not record the start of a command: not started here');
    gate.refused = true;
    return false;
  }
}

/** Renewed until the uploads are done too: a slow upload must not let another worker take over. */
export function renewLease(message: CommandMessage, lease: Lease, ports: LeasePorts): () => void {
  const { logger, store } = ports;
  const fields = fieldsOf(message);
  const timer = setInterval(() => {
    store.renewLease(message.runId, message.id, lease.owner, ports.leaseTtlMs).then(
      (held) => {
        if (held || lease.settling === true) return;
        lease.lost = true;
        logger.warn(fields, 'lost the lease of a running command (Redis was unreachable for too long?)');
      },
      (error: unknown) => logger.warn({ ...fields, err: error }, 'could not renew the lease'),
    );
  }, Math.max(100, Math.floor(ports.leaseTtlMs / 3)));
  return () => clearInterval(timer);
}
