import { Redis } from 'ioredis';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { redactUrl, usesTls } from '../config/urls.js';
import { describeTlsFailure, type TlsAttempt, type TlsFiles } from '../config/tls-config.js';

/**
 * A client that is not connected yet. Commands wait through a Redis restart (they are queued and
 * retried) instead of failing: losing a result write would lose a command. `tls`: the
 * REDIS_TLS_* files, for rediss:// only.
 */
export function createRedisClient(url: string, connectionName = 'tasker', tls?: TlsFiles): Redis {
  return new Redis(url, {
    // Decided here from the scheme, in any case: ioredis itself only sees a lower-case
    // "rediss://" (shared/config/urls.ts, lowercaseScheme).
    ...(usesTls(url) ? { tls: { ...tls } } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: null,
    // Off: a call through its pipelines cost 0.07 ms more CPU (a Pipeline object and a
    // setImmediate each; measured with a runner and one Redis call per command, as
    // bench/worker-floor.mjs does); the per-command scripts are batched by
    // redis-command-batch.ts instead, and the other calls are few.
    enableAutoPipelining: false,
    retryStrategy: (times) => Math.min(10_000, 100 * 2 ** Math.min(times, 7)),
    connectionName,
  });
}

interface ConnectionWatch {
  outage: boolean;
  connected: boolean;
  lastError: Error | undefined;
}

/** Logs outages and recoveries once the first connection succeeded; remembers the last error. */
function watchConnection(redis: Redis, logger: Logger): ConnectionWatch {
  const watch: ConnectionWatch = { outage: false, connected: false, lastError: undefined };
  redis.on('error', (error: Error) => {
    watch.lastError = error;
    // Before the first connection, start-up reports the failure once, as an input error.
    if (watch.connected && !watch.outage) logger.warn({ err: { message: error.message } }, 'Redis connection problem; retrying');
    watch.outage = true;
  });
  redis.on('ready', () => {
    if (watch.outage && watch.connected) logger.info('reconnected to Redis');
    watch.outage = false;
  });
  return watch;
}

/** Connects and checks the server answers; a failure is one InputError saying what to fix. */
export async function connectRedis(redis: Redis, url: string, logger: Logger): Promise<void> {
  const attempt = { secure: usesTls(url), clientCert: redis.options.tls?.cert !== undefined };
  const watch = watchConnection(redis, logger);
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
    await redis.ping();
    // A refused SELECT (no such database) is reported as an error event, and ioredis carries on
    // in database 0: this run's state would land where nobody looks for it.
    if (watch.lastError?.name === 'ReplyError') throw watch.lastError;
    watch.connected = true;
    watch.outage = false;
  } catch (error) {
    redis.disconnect();
    throw new InputError('config', connectionFailure(url, errorMessage(watch.lastError ?? error), attempt), { cause: error });
  }
}

/** What went wrong and what to check, with the password left out of the URL. */
function connectionFailure(url: string, message: string, attempt: TlsAttempt): string {
  const where = redactUrl(url);
  const tls = describeTlsFailure('REDIS', where, message, attempt);
  if (tls !== undefined) return tls;
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)) return `Redis at ${where} refused the password (check REDIS_URL)`;
  if (/DB index/i.test(message)) {
    return `Redis at ${where} has no database ${new URL(url).pathname.slice(1)} (${message}); check the number at the end of REDIS_URL, or leave it out for database 0`;
  }
  return `cannot reach Redis at ${where}: ${message.replaceAll(url, where)} (is it running? check REDIS_URL)`;
}
