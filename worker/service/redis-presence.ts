import type { Names } from '../../shared/config/names.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { createRedisClient } from '../../shared/redis/redis-connection.js';
import type { TlsFiles } from '../../shared/config/tls-config.js';

/**
 * A worker's presence: a Redis connection of its own, subscribed to the worker's channel
 * (NS:worker:ID:presence), for as long as the process lives. The kernel closes that connection
 * the moment the process ends (SIGKILL, OOM, crash), and keeps it open while the process is only
 * stopped or slow; so, unlike a heartbeat's age, it tells a dead worker from a frozen one. Other
 * workers ask with PUBSUB NUMSUB (an ordinary command, no admin rights); nothing is ever
 * published on the channel. See worker/lease-holder.ts for how it is used, and what guards a live
 * worker whose connection was reset.
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
export async function announcePresence(
  url: string,
  names: Pick<Names, 'workerPresenceChannel'>,
  workerId: string,
  logger: Logger,
  onChange: () => void = () => undefined,
  tls?: TlsFiles,
): Promise<Presence> {
  const redis = createRedisClient(url, 'tasker-presence', tls);
  const channel = names.workerPresenceChannel(workerId);
  let upSince: number | undefined;
  let subscribed = false;
  let closed = false;
  redis.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'presence connection problem'));
  // `onChange`: the heartbeat says at once whether the presence is up (see RunStore.workerPresent).
  redis.on('close', () => {
    if (upSince === undefined) return;
    upSince = undefined;
    if (!closed) onChange();
  });
  // After a reconnect ioredis subscribes again as the connection becomes ready.
  redis.on('ready', () => {
    if (!subscribed || closed || upSince !== undefined) return;
    upSince = Date.now();
    onChange();
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
