import type { CommandMessage } from '../../shared/broker/messages.js';
import type { MessagePorts } from '../ports.js';

/** The lease this worker holds on an attempt while it runs it: renewed, checked and counted at the start. Its only owner. */

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
  /** Starts counted by the gate (0: none). */
  starts(): number;
  /** The gate found the lease lost (or could not count the start): the command did not start here. */
  refused(): boolean;
  /** The attempt is being settled (its result recorded, or given back): the lease is released on purpose, not lost. */
  settle(): void;
  /** Stops renewing. */
  release(): void;
}

/** Holds the lease `owner` took: renewed every third of its TTL until released (uploads included: a slow upload must not let another worker take over). */
export function holdLease(message: CommandMessage, owner: string, ports: Pick<MessagePorts, 'store' | 'logger' | 'workerId' | 'leaseTtlMs'>): HeldLease {
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
      try {
        const counted = lost ? -1 : await store.recordStart(message.runId, message.id, message.attempt, ports.workerId, owner, ports.leaseTtlMs);
        if (counted < 0) {
          lost = true;
          refused = true;
          return false;
        }
        starts = counted;
        return true;
      } catch (error) {
        logger.warn({ ...fields, err: error }, 'could not record the start of a command: not started here');
        refused = true;
        return false;
      }
    },
    starts: () => starts,
    refused: () => refused,
    settle: () => {
      settling = true;
    },
    release: () => clearInterval(timer),
  };
}
