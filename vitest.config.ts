import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Records what the tests start, and stops at the end whatever a failed or killed test left.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites start real registries and databases; two cores, so keep the parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
