import type { ParseResult } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * The message parsed, if it is to be run: undefined (logged; it is dead-lettered) when it is not
 * authentic (with a signing key) or not valid.
 */
export function checkedMessage<T>(content: Buffer, headers: Record<string, unknown>, ports: { authenticate?: ((content: Buffer, headers: Record<string, unknown>) => string | undefined) | undefined; logger: Logger }, parse: (content: Buffer) => ParseResult<T>): T | undefined {
  const { logger } = ports;
  const forged = ports.authenticate?.(content, headers);
  if (forged !== undefined) {
    logger.error({ problem: forged, bytes: content.length, hint: 'this worker runs only commands signed with its TASKER_SIGNING_KEY; the tasker must have the same key' }, 'message not authentic: dead-lettered, not run');
    return undefined;
  }
  const parsed = parse(content);
  if (!parsed.ok) {
    logger.error({ problem: parsed.problem, bytes: content.length }, 'invalid message: dead-lettered, not run');
    return undefined;
  }
  return parsed.value;
}
