import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';
import { optedOut, optOutVariable } from './test/helpers/container-engine.js';

/**
 * The distributed end-to-end tests and the fault suite again, against RabbitMQ 4 in a container
 * (test/helpers/rabbitmq4.ts) instead of the machine's broker: `npm run test:rabbitmq4`.
 * One project per file, each with a RabbitMQ 4 of its own (both change their broker: restarts, a
 * lowered consumer timeout), so that the two files can run side by side.
 * With TASKER_TEST_NO_CONTAINERS=1 only a skipped placeholder runs, which names the variable.
 */
const skip = optedOut();
if (skip) process.stdout.write(`RabbitMQ 4 run skipped: ${optOutVariable}=1 is set\n`);

function project(name: string, file: string, env: Record<string, string> = {}) {
  return { extends: true as const, test: { name, include: [file], env, globalSetup: ['test/helpers/global-setup.ts', 'test/helpers/rabbitmq4-setup.ts'] } };
}

/**
 * The fault scenarios run against RabbitMQ 4: those where the broker does the work (its restart,
 * a consumer timeout, delivery limits and dead-lettering, a worker's unacked bundle returned).
 * The others exercise Redis and the workers, which do not change with the broker; they run once,
 * against the local broker, in `npm test`. This keeps the RabbitMQ 4 run within a few minutes.
 */
const brokerScenarios = 'RabbitMQ restart|consumer timeout|poison|malformed|middle of a bundle|delivered twice';

export default defineConfig({
  test: {
    ...base.test,
    // The base config's file lists and setup are its own (its exclude leaves out test/containers/):
    // each project below names its file and setup (projects add to these lists).
    include: [],
    exclude: [],
    globalSetup: [],
    // One file at a time by default: on a busy 2-CPU machine the distributed tests, side by side
    // with the fault suite, missed their timing (worker start-up races, 60 s test timeouts).
    // RABBITMQ4_FILES_AT_ONCE=2 runs both at once (each has its own broker), for a machine with room.
    fileParallelism: true,
    maxWorkers: Number(process.env['RABBITMQ4_FILES_AT_ONCE'] ?? '1'),
    projects: skip
      ? [{ extends: true, test: { name: 'rabbitmq4', include: ['test/containers/opted-out.test.ts'] } }]
      : [project('rabbitmq4-distributed', 'test/e2e/distributed.test.ts'), project('rabbitmq4-faults', 'test/faults/fault-suite.test.ts', { TASKER_FAULT_SCENARIOS: brokerScenarios })],
  },
});
