import type { TestProject } from 'vitest/node';
import { detectEngine, noEngineMessage } from './container-engine.js';
import { startRabbitmq4 } from './rabbitmq4.js';

/**
 * Global setup of the RabbitMQ 4 run (vitest.rabbitmq4.config.ts), after the usual one: the
 * same test files, with `amqpUrl` and `broker` replaced by a RabbitMQ 4 in a container. Redis and
 * S3 stay those of the usual setup.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const engine = await detectEngine();
  if (engine === undefined) throw new Error(noEngineMessage('The RabbitMQ 4 run (npm run test:rabbitmq4)'));
  const started = Date.now();
  const rabbitmq = await startRabbitmq4(engine);
  process.stdout.write(`RabbitMQ 4 run against ${rabbitmq.broker.name}, ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  project.provide('amqpUrl', rabbitmq.amqpUrl);
  project.provide('broker', rabbitmq.broker);
  return () => rabbitmq.stop();
}
