/**
 * Names of everything a deployment creates in RabbitMQ and Redis, derived from one namespace
 * (default "tasker") so that `rabbitmqctl list_queues` explains itself and tests can isolate.
 *
 *   exchange  NS               (topic)  commands, routing key run.RUN_ID
 *   queue     NS.commands      (quorum) the work queue all workers consume
 *   exchange  NS.dead          (topic)  where undeliverable commands go
 *   queue     NS.commands.dead (quorum) every dead-lettered command, for inspection
 *   queue     NS.run.RUN_ID.done (quorum) results of one run, read by its tasker; deleted at the end
 *   redis     NS:run:RUN_ID:*   run state;  NS:worker:ID  worker heartbeats;  NS:runs  run index
 */

export const defaultNamespace = 'tasker';

const namespacePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;

export function isValidNamespace(namespace: string): boolean {
  return namespacePattern.test(namespace);
}

export interface Names {
  namespace: string;
  exchange: string;
  workQueue: string;
  deadExchange: string;
  deadQueue: string;
  runQueue(runId: string): string;
  runRoutingKey(runId: string): string;
  runKey(runId: string, part: RunKeyPart): string;
  runsIndexKey: string;
  workerKey(workerId: string): string;
  workerKeyPattern: string;
  cancelledKey(runId: string): string;
}

/** `stopped`: set while the run is interrupted; workers drop its commands (see the begin script). */
export type RunKeyPart = 'meta' | 'results' | 'published' | 'starts' | 'stopped' | `lease:${string}` | `ok:${string}` | `failed:${string}`;

export function names(namespace: string = defaultNamespace): Names {
  return {
    namespace,
    exchange: namespace,
    workQueue: `${namespace}.commands`,
    deadExchange: `${namespace}.dead`,
    deadQueue: `${namespace}.commands.dead`,
    runQueue: (runId) => `${namespace}.run.${runId}.done`,
    runRoutingKey: (runId) => `run.${runId}`,
    runKey: (runId, part) => `${namespace}:run:${runId}:${part}`,
    runsIndexKey: `${namespace}:runs`,
    workerKey: (workerId) => `${namespace}:worker:${workerId}`,
    workerKeyPattern: `${namespace}:worker:*`,
    cancelledKey: (runId) => `${namespace}:cancelled:${runId}`,
  };
}
