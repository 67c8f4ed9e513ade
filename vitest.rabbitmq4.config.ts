import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';
import { optedOut, optOutVariable } from './test/helpers/container-engine.js';

/**
 * The distributed end-to-end tests and the fault suite again, against RabbitMQ 4 in a container
 * (test/helpers/rabbitmq4.ts) instead of the machine's broker: `npm run test:rabbitmq4`.
 * With TASKER_TEST_NO_CONTAINERS=1 only a skipped placeholder runs, which names the variable.
 */
const skip = optedOut();
if (skip) process.stdout.write(`RabbitMQ 4 run skipped: ${optOutVariable}=1 is set\n`);

export default defineConfig({
  test: {
    ...base.test,
    include: skip ? ['test/containers/opted-out.test.ts'] : ['test/e2e/distributed.test.ts', 'test/faults/fault-suite.test.ts'],
    exclude: [],
    globalSetup: skip ? [] : ['test/helpers/global-setup.ts', 'test/helpers/rabbitmq4-setup.ts'],
  },
});
