import { UnroutableError, type AmqpSession } from '../../shared/broker/amqp-session.js';
import { backoffMs } from '../../shared/config/backoff.js';
import type { Logger } from '../../shared/observe/logger.js';

/**
 * A command message RabbitMQ returned (published `mandatory`, routed to no queue: its pool's work
 * queue was deleted while the run goes): the tasker declares its queues again and publishes it again.
 */

/** Returns of one message before the tasker gives up on it. */
export const maxReturns = 5;

/** The wait before publishing a message again after its `returns`-th return: 250 ms, doubling, at most 4 s. */
export function republishDelayMs(returns: number): number {
  return backoffMs(returns, 250, 4000, () => 1); // no jitter: one tasker retries, nobody to spread from
}

export interface ReturnedPublishesOptions {
  session: Pick<AmqpSession, 'redeclare'>;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** What a message holds and where it goes, for the warning. */
export interface Destination {
  pool: string;
  queue: string;
  routingKey: string;
  commandIds: readonly string[];
}

/**
 * Publishes through `publish` until the message is routed to a queue; rejects after `maxReturns`
 * returns. `describe` is called only for a returned message: nothing is spent on the others.
 */
export type PublishRouted = (publish: () => Promise<void>, describe: () => Destination) => Promise<void>;

/**
 * The broker confirms a returned message too: without this it would be dropped in silence and the
 * tasker would wait for its commands for ever. The queues are declared again as on a reconnect
 * (the session's setup: exchanges, the run's pool queues and result queue). A returned message is
 * in no queue, so publishing it again never makes a second copy. After `maxReturns` returns of the
 * same message the publish fails, and with it the run (exit 3, resumable), rather than wait for
 * commands no queue holds.
 */
export function createReturnedPublishes(options: ReturnedPublishesOptions): PublishRouted {
  const { session, logger } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  // Many messages in flight come back together: they share one declaration, and one warning.
  let redeclaring: Promise<void> | undefined;
  const redeclareOnce = (destination: Destination, returns: number, reason: string): Promise<void> => {
    if (redeclaring !== undefined) return redeclaring;
    logger.warn(
      { pool: destination.pool, queue: destination.queue, routingKey: destination.routingKey, commands: destination.commandIds.length, commandId: destination.commandIds[0], returns, reason },
      `RabbitMQ returned a message of ${destination.commandIds.length} command(s) unrouted: the work queue ${destination.queue} does not exist (was it deleted while the run goes?). ` +
        `Declaring the run's queues again and publishing the message again (return ${returns} of at most ${maxReturns})`,
    );
    redeclaring = session.redeclare().finally(() => {
      redeclaring = undefined;
    });
    return redeclaring;
  };

  return async (publish, describe) => {
    for (let returns = 1; ; returns++) {
      try {
        await publish();
        return;
      } catch (error) {
        if (!(error instanceof UnroutableError)) throw error;
        const destination = describe();
        if (returns >= maxReturns) {
          throw new Error(
            `RabbitMQ returned the message of ${describeCommands(destination.commandIds)} ${returns} times: the work queue ${destination.queue} is missing (or not bound to routing key ${destination.routingKey}) ` +
              `even after the tasker declared it again each time. The tasker stops rather than wait for commands no queue holds; check the queue and its bindings (rabbitmqctl list_bindings), then resume the run`,
            { cause: error },
          );
        }
        await redeclareOnce(destination, returns, error.replyText).catch((redeclareError: unknown) =>
          // E.g. the connection dropped meanwhile: a reconnect declares the queues too; the next try tells.
          logger.warn({ err: redeclareError, queue: destination.queue }, 'could not declare the queues again yet'),
        );
        await sleep(republishDelayMs(returns));
      }
    }
  };
}

/** `command f1-L3`, or `commands f1-L3, f1-L4, f1-L5 and 97 more`. */
export function describeCommands(ids: readonly string[]): string {
  if (ids.length === 1) return `command ${ids[0]}`;
  const shown = ids.slice(0, 3).join(', ');
  return ids.length <= 3 ? `commands ${shown}` : `commands ${shown} and ${ids.length - 3} more`;
}
