/**
 * Names of everything a deployment creates in RabbitMQ and Redis, derived from one namespace
 * (default "tasker") so that `rabbitmqctl list_queues` explains itself and tests can isolate.
 *
 *   exchange  NS               (topic)  commands: routing key run.RUN_ID for the default pool,
 *                                       pool.POOL.run.RUN_ID for another pool
 *   queue     NS.commands      (quorum) the default pool's work queue (bound run.#: a run id may hold dots)
 *   queue     NS.pool.POOL.commands (quorum) pool POOL's work queue (bound pool.POOL.#); only the
 *                                       workers started with --pool POOL consume it
 *   exchange  NS.dead          (topic)  where undeliverable commands go
 *   queue     NS.commands.dead (quorum) every dead-lettered command, for inspection
 *   queue     NS.run.RUN_ID.done (quorum) results of one run, read by its tasker; deleted at the end;
 *                                       also bound to NS.dead by run.RUN_ID and pool.*.run.RUN_ID,
 *                                       the keys its dead letters keep
 *   redis     NS:run:RUN_ID:*   run state;  NS:worker:ID  worker heartbeats;  NS:runs  run index
 *             NS:worker:ID:presence  a channel (not a key) each worker subscribes to while it lives
 */

export const defaultNamespace = 'tasker';

const namespacePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;

export function isValidNamespace(namespace: string): boolean {
  return namespacePattern.test(namespace);
}

/**
 * A pool name is a DNS label (lowercase letters, digits, inner "-", at most 32 characters), so
 * a Kubernetes Deployment can be named after it and it is one word of a topic routing key.
 */
const poolPattern = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/** The pool of a workers phase that names none, and of a worker started without --pool. */
export const defaultPool = 'default';

export function isValidPoolName(pool: string): boolean {
  return poolPattern.test(pool);
}

export const poolNameRule = '1-32 lowercase letters, digits and "-", starting and ending with a letter or digit';

export interface Names {
  namespace: string;
  exchange: string;
  /** The default pool's work queue (NS.commands). */
  workQueue: string;
  /** A pool's work queue: NS.commands for the default pool, NS.pool.POOL.commands for another. */
  poolQueue(pool: string): string;
  /** The key a pool's commands of a run are published with. */
  poolRoutingKey(pool: string, runId: string): string;
  /** The binding of a pool's queue to the exchange: only that pool's keys reach it. */
  poolBinding(pool: string): string;
  deadExchange: string;
  deadQueue: string;
  runQueue(runId: string): string;
  runRoutingKey(runId: string): string;
  runKey(runId: string, part: RunKeyPart): string;
  runsIndexKey: string;
  workerKey(workerId: string): string;
  workerKeyPattern: string;
  /** A worker's presence channel (subscribed while its process lives; worker/service/redis-presence.ts). */
  workerPresenceChannel(workerId: string): string;
  cancelledKey(runId: string): string;
  /** How often a work queue was found deleted (shared/redis/redis-queue-losses.ts). */
  queueLossesKey(queue: string): string;
  /** A pool's demand table: run id -> what it could run now (shared/redis/redis-demand.ts). */
  poolDemandKey(pool: string): string;
  /**
   * A worker's consumer tag (`rabbitmqctl list_consumers`) for a pool's queue: NS.worker-ID.POOL.commands;
   * `extra`: its Nth extra consumer (the lookahead, a message waiting for a lease), `.extra-N` added.
   */
  workerConsumerTag(workerId: string, pool: string, extra?: number): string;
  /** The tasker's consumer tag of its run's result queue: NS.tasker-RUN_ID.results. */
  taskerConsumerTag(runId: string): string;
  /** A connection's name (client property `connection_name`): `ns=NS role=ROLE` and `who`'s fields (worker or run id, host, pid). */
  connectionName(role: 'tasker' | 'worker', who: Record<string, string | number>): string;
}

/**
 * `stopped`: set while the run is interrupted; workers drop its commands (see the begin script).
 * `over`: set when the run ends (finished); workers dead-letter its leftover messages.
 */
export type RunKeyPart = 'meta' | 'results' | 'published' | 'starts' | 'stopped' | 'over' | 'queue-losses' | 'usage' | `lease:${string}` | `ok:${string}` | `failed:${string}`;

export function names(namespace: string = defaultNamespace): Names {
  return {
    namespace,
    exchange: namespace,
    workQueue: `${namespace}.commands`,
    poolQueue: (pool) => (pool === defaultPool ? `${namespace}.commands` : `${namespace}.pool.${pool}.commands`),
    // The default pool keeps the key and binding of before pools: older workers still consume it.
    poolRoutingKey: (pool, runId) => (pool === defaultPool ? `run.${runId}` : `pool.${pool}.run.${runId}`),
    poolBinding: (pool) => (pool === defaultPool ? 'run.#' : `pool.${pool}.#`),
    deadExchange: `${namespace}.dead`,
    deadQueue: `${namespace}.commands.dead`,
    runQueue: (runId) => `${namespace}.run.${runId}.done`,
    runRoutingKey: (runId) => `run.${runId}`,
    runKey: (runId, part) => `${namespace}:run:${runId}:${part}`,
    runsIndexKey: `${namespace}:runs`,
    workerKey: (workerId) => `${namespace}:worker:${workerId}`,
    workerKeyPattern: `${namespace}:worker:*`,
    workerPresenceChannel: (workerId) => `${namespace}:worker:${workerId}:presence`,
    cancelledKey: (runId) => `${namespace}:cancelled:${runId}`,
    queueLossesKey: (queue) => `${namespace}:queue-losses:${queue}`,
    poolDemandKey: (pool) => `${namespace}:pool:${pool}:demand`,
    // A consumer tag is a short string (255 bytes at most), unique per channel only: each consumer has a channel of its own.
    workerConsumerTag: (workerId, pool, extra) => `${namespace}.worker-${workerId}.${pool}.commands${extra === undefined ? '' : `.extra-${extra}`}`.slice(0, 255),
    taskerConsumerTag: (runId) => `${namespace}.tasker-${runId}.results`.slice(0, 255),
    connectionName: (role, who) => [`ns=${namespace}`, `role=${role}`, ...Object.entries(who).map(([key, value]) => `${key}=${value}`)].join(' '),
  };
}
