import type { Redis } from 'ioredis';
import type { Names } from '../config/names.js';
import type { RunStore } from '../state/run-store.js';

/**
 * What a deleted work queue took with it. RabbitMQ deletes a queue's waiting messages with it
 * (`rabbitmqctl delete_queue`), and a queue declared again under the same name looks the same as
 * before, so whoever finds a work queue gone counts it here (NS:queue-losses:QUEUE, a counter that
 * never expires: one per work queue): a worker whose consumer the broker cancels, and any tasker or
 * worker that finds a pool queue missing as it declares its queues. A tasker that sees the count
 * grow publishes again what it awaits from that queue (tasker/distributed/lost-queue-recovery.ts),
 * and keeps the count it has dealt with in NS:run:RUN_ID:queue-losses for a resumed tasker.
 */

type QueueLosses = Pick<RunStore, 'noteQueueLost' | 'queueLosses' | 'saveHandledQueueLosses' | 'handledQueueLosses' | 'runningCommands'>;

export function createQueueLosses(redis: Redis, names: Names): QueueLosses {
  return {
    async noteQueueLost(queue) {
      await redis.incr(names.queueLossesKey(queue));
    },
    async queueLosses(queue) {
      return Number((await redis.get(names.queueLossesKey(queue))) ?? 0);
    },
    async saveHandledQueueLosses(runId, queue, losses) {
      await redis.hset(names.runKey(runId, 'queue-losses'), queue, String(losses));
    },
    async handledQueueLosses(runId) {
      const all = await redis.hgetall(names.runKey(runId, 'queue-losses'));
      return new Map(Object.entries(all).map(([queue, losses]) => [queue, Number(losses)]));
    },
    async runningCommands(runId, ids) {
      if (ids.length === 0) return new Set();
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.exists(names.runKey(runId, `lease:${id}`));
      const replies = (await pipeline.exec()) ?? [];
      return new Set(ids.filter((_, index) => replies[index]?.[1] === 1));
    },
  };
}
