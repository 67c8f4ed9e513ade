import { deleteQueue, queueDepth } from '../../shared/broker/amqp-topology.js';
import { InputError } from '../../shared/errors.js';
import type { Names } from '../../shared/config/names.js';
import { purgeRefusal } from './cancel-run.js';
import type { Backend } from './distributed-backend.js';

/**
 * `tasker purge`: removes what a finished, interrupted, abandoned or cancelled run left in RabbitMQ
 * and Redis, and tells workers to drop its commands. A live run is cancelled first (cancel-run.ts):
 * purged under its running tasker, it would hang, and declare its queue and keys again.
 */

export interface PurgeReport {
  runId: string;
  queueDeleted: boolean;
  keysRemoved: number;
}

export async function purgeRun(backend: Backend, names: Names, runId: string, force: boolean, now: number): Promise<PurgeReport> {
  const run = await backend.store.getRun(runId);
  const exists = run !== undefined || (await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)))) !== undefined;
  if (!exists) throw new InputError('run-state', `no run "${runId}" to purge (namespace ${names.namespace})`);
  const refusal = run === undefined ? undefined : await purgeRefusal(backend.store, run, now, force);
  if (refusal !== undefined) throw new InputError('run-state', refusal);
  // Workers drop this run's leftover messages from now on instead of running them (a cancel's own mark is kept).
  await backend.store.cancelRun(runId, { by: 'tasker purge', at: new Date(now).toISOString() });
  const queueDeleted = await backend.session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
  const keysRemoved = await backend.store.purgeRun(runId);
  return { runId, queueDeleted, keysRemoved };
}
