import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';
import { optedOut } from './test/helpers/container-engine.js';

/**
 * The container images test (`npm run test:images`): builds tasker.Dockerfile and
 * worker.Dockerfile and runs them as containers against the RabbitMQ and Redis of the usual setup.
 * With TASKER_TEST_NO_CONTAINERS=1 only a skipped placeholder runs, which names the variable.
 */
const skip = optedOut();

export default defineConfig({
  test: {
    ...base.test,
    include: [skip ? 'test/containers/opted-out.test.ts' : 'test/containers/images.test.ts'],
    exclude: [],
    globalSetup: skip ? [] : ['test/helpers/global-setup.ts'],
    // Building the images from scratch (a stand-in base image, npm ci) takes minutes.
    hookTimeout: 900_000,
    testTimeout: 300_000,
  },
});
