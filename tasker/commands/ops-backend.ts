import type { Command } from 'commander';
import { names as namesFor, type Names } from '../../shared/config/names.js';
import { createLogger, logConfigWarnings } from '../../shared/observe/logger.js';
import { loadOpsConfig, type OpsFlags } from '../config.js';
import type { Backend } from '../distributed/distributed-backend.js';
import type { OpsCommandDeps } from './command-deps.js';

/** What `tasker status` and `tasker purge` share: the options naming RabbitMQ, Redis and the namespace, and a backend connected for the command's length. */

export function addOpsOptions(command: Command): Command {
  return command
    .option('--amqp-url <url>', 'RabbitMQ (default: $AMQP_URL)')
    .option('--redis-url <url>', 'Redis (default: $REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--namespace <name>', 'prefix of queues and Redis keys (default: $TASKER_NAMESPACE, else tasker)')
    .exitOverride();
}

/** Connects (for `command`, as its connection's name says), runs `action`, closes; returns its exit code. The RabbitMQ and Redis clients are loaded only now. */
export async function withOps(command: 'status' | 'purge' | 'cancel' | 'runs', flags: OpsFlags, deps: Pick<OpsCommandDeps, 'env' | 'prettyLogs'>, action: (backend: Backend, names: Names) => Promise<number>): Promise<number> {
  const config = loadOpsConfig(flags, deps.env);
  const logger = createLogger({ level: config.logLevel, pretty: deps.prettyLogs, name: 'tasker' });
  logConfigWarnings(logger, config.warnings);
  const ns = namesFor(config.namespace);
  const { connectBackend } = await import('../distributed/distributed-backend.js');
  const backend = await connectBackend({ amqpUrl: config.amqpUrl, amqpTls: config.amqpTls, redisUrl: config.redisUrl, redisTls: config.redisTls, names: ns, logger, purpose: { command } });
  try {
    return await action(backend, ns);
  } finally {
    await backend.close();
  }
}
