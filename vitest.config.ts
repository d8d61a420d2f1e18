import { defineConfig } from 'vitest/config'

// Two cores are shared by the app under test, the client and redis-server,
// so test files run two at a time and each starts its own Redis.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Builds dist/ when it is older than src/, for the tests that run the CLI bin.
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
})
