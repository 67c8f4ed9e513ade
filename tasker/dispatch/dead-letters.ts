import type { Delivery } from '../../shared/broker/amqp-session.js';
import { parseCommandMessage, type CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { ResultRecord } from '../../shared/state/results.js';
import type { RunLayout } from '../../shared/state/run-layout.js';

/**
 * One of our commands, dead-lettered by RabbitMQ onto the run queue: it was delivered too often
 * (its workers died running it) or a worker rejected it. It failed; retries may still publish it again.
 */

export interface DeadLetterOptions {
  runId: string;
  layout: RunLayout;
  logger: Logger;
  /** Where the failure it stands for goes, as a result of the command. */
  deliver: (record: ResultRecord, delivery: Delivery) => void;
}

interface Death {
  count: number;
  reason: string;
}

function deathCount(headers: Record<string, unknown>): Death {
  const deaths = headers['x-death'];
  if (Array.isArray(deaths) && deaths.length > 0) {
    const first = deaths[0] as { count?: number; reason?: string };
    return { count: Number(first.count ?? 1), reason: String(first.reason ?? 'unknown') };
  }
  return { count: Number(headers['x-delivery-count'] ?? 0), reason: String(headers['x-first-death-reason'] ?? 'delivery limit') };
}

/** The failed result a dead-lettered command stands for. */
function deadLetteredRecord(message: CommandMessage, death: Death, layout: RunLayout): ResultRecord {
  const now = new Date().toISOString();
  return {
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
  };
}

/** Delivers a dead-lettered command of this run as its failed result; acks anything else. */
export function deliverDeadLettered(delivery: Delivery, options: DeadLetterOptions): void {
  const parsed = parseCommandMessage(delivery.content);
  if (!parsed.ok || parsed.value.runId !== options.runId) {
    delivery.ack();
    return;
  }
  const message = parsed.value;
  const death = deathCount(delivery.headers);
  options.logger.warn({ commandId: message.id, attempt: message.attempt, deaths: death.count, reason: death.reason }, 'command dead-lettered by RabbitMQ');
  options.deliver(deadLetteredRecord(message, death, options.layout), delivery);
}
