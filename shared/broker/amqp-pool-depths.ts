import type { Names } from '../config/names.js';
import type { PoolDepth } from '../observe/metrics-registry.js';
import type { AmqpSession } from './amqp-session.js';
import { queueDepth } from './amqp-topology.js';

/** Each pool's queue as the broker reports it now: the pool gauges of tasker and worker, `tasker status`. */
export async function readPoolDepths(session: AmqpSession, names: Names, pools: readonly string[]): Promise<PoolDepth[]> {
  const depths: PoolDepth[] = [];
  for (const pool of pools) {
    const queue = names.poolQueue(pool);
    const depth = await session.withChannel((channel) => queueDepth(channel, queue));
    depths.push({ pool, queue, ready: depth?.ready, consumers: depth?.consumers });
  }
  return depths;
}
