import { deleteQueue, queueDepth } from '../../shared/broker/amqp-topology.js';
import { formatDuration } from '../../shared/config/duration.js';
import { InputError } from '../../shared/errors.js';
import type { Names } from '../../shared/config/names.js';
import { taskerAlive } from '../report/run-status.js';
import type { Backend } from './distributed-backend.js';

/** `tasker purge`: removes what a finished or abandoned run left in RabbitMQ and Redis, and tells workers to drop its commands. */

export interface PurgeReport {
  runId: string;
  queueDeleted: boolean;
  keysRemoved: number;
}

export async function purgeRun(backend: Backend, names: Names, runId: string, force: boolean, now: number): Promise<PurgeReport> {
  const run = await backend.store.getRun(runId);
  const exists = run !== undefined || (await backend.session.withChannel((channel) => queueDepth(channel, names.runQueue(runId)))) !== undefined;
  if (!exists) throw new InputError('run-state', `no run "${runId}" to purge (namespace ${names.namespace})`);
  if (run !== undefined && taskerAlive(run, now) && !force) {
    throw new InputError(
      'run-state',
      `run ${runId} is in progress (its tasker ${run.host} sent a heartbeat ${formatDuration(now - Date.parse(run.heartbeatAt))} ago); stop it first, or add --force`,
    );
  }
  // Workers drop this run's leftover messages from now on instead of running them.
  await backend.store.cancelRun(runId);
  const queueDeleted = await backend.session.withChannel((channel) => deleteQueue(channel, names.runQueue(runId)));
  const keysRemoved = await backend.store.purgeRun(runId);
  return { runId, queueDeleted, keysRemoved };
}
