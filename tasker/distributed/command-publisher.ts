import type { AmqpSession } from '../../shared/broker/amqp-session.js';
import { encodeMessage, type CommandMessage } from '../../shared/broker/messages.js';
import { signatureHeaders } from '../../shared/broker/signing.js';
import type { Names } from '../../shared/config/names.js';
import type { RunStore } from '../../shared/state/redis-store.js';
import type { CommandRef } from '../../shared/state/results.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { PhaseSpec } from '../jobs/plan.js';

/** Publishes attempts to the work queue, each with this run's queue to reply to, and marks them published in Redis. */

export interface CommandPublisherOptions {
  session: Pick<AmqpSession, 'publish'>;
  store: Pick<RunStore, 'markPublished'>;
  names: Names;
  runId: string;
  timeoutMs: number | undefined;
  killGraceMs: number;
  /** Outputs workers upload after each success; undefined: none. */
  upload: OutputSpec | undefined;
  /** TASKER_SIGNING_KEY: commands are signed with it; undefined: unsigned. */
  signingKey: string | undefined;
}

export type PublishCommand = (phase: PhaseSpec, command: CommandRef, attempt: number) => Promise<void>;

export function createCommandPublisher(options: CommandPublisherOptions): PublishCommand {
  const { session, store, names, runId } = options;
  return async (phase, command, attempt) => {
    const message: CommandMessage = {
      v: 1,
      kind: 'command',
      runId,
      phase: phase.name,
      phaseIndex: phase.index,
      id: command.id,
      attempt,
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
    await store.markPublished(runId, command.id, attempt);
  };
}
