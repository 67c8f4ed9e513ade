import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The container tests have configs of their own: npm run test:images, npm run test:rabbitmq4.
    exclude: [...configDefaults.exclude, 'test/containers/**'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // End-to-end tests start many processes; on a 2-CPU machine test files run one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests start real processes; forks isolate them best.
    pool: 'forks',
    reporters: ['default'],
  },
});
