import type { Names } from '../../shared/config/names.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { createRedisClient } from '../../shared/redis/redis-connection.js';
import type { TlsFiles } from '../../shared/config/tls-config.js';

/**
 * A worker's presence: a Redis connection of its own, subscribed to the worker's channel
 * (NS:worker:ID:presence) while the process lives, so that other workers can tell a dead worker
 * from a frozen one (message/lease-holder.ts; docs/architecture.md).
 */

export interface Presence {
  /** Since when this worker's presence is up, without a break (ms since the epoch); undefined while it is not. */
  upSinceMs(): number | undefined;
  close(): Promise<void>;
}

/**
 * Subscribes, and resubscribes after every reconnect (ioredis does). Never fails the worker's
 * start: without a presence (e.g. an ACL that forbids SUBSCRIBE) its leases simply say they have
 * none, and wait out their TTL when it dies, as before.
 */
export async function announcePresence(url: string, names: Pick<Names, 'workerPresenceChannel'>, workerId: string, logger: Logger, tls?: TlsFiles): Promise<Presence> {
  const redis = createRedisClient(url, 'tasker-presence', tls);
  const channel = names.workerPresenceChannel(workerId);
  let upSince: number | undefined;
  let subscribed = false;
  let closed = false;
  redis.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'presence connection problem'));
  // The heartbeat tells within a second whether the presence is up (see RunStore.workerPresent).
  redis.on('close', () => {
    upSince = undefined;
  });
  // After a reconnect ioredis subscribes again as the connection becomes ready.
  redis.on('ready', () => {
    if (!subscribed || closed || upSince !== undefined) return;
    upSince = Date.now();
  });
  try {
    // Bounded: the worker's start does not hang on it (its Redis answered a moment ago).
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.subscribe(channel);
      })(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
    subscribed = true;
    upSince = Date.now();
  } catch (error) {
    logger.warn({ err: { message: errorMessage(error) } }, 'could not announce this worker’s presence in Redis: if it dies, its commands wait for their lease to expire');
    closed = true;
    redis.disconnect();
    upSince = undefined;
  }
  return {
    upSinceMs: () => upSince,
    async close() {
      closed = true;
      upSince = undefined;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
