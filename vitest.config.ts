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
    // On CI a failed test runs once more: the tests stop, freeze and restart
    // real Redis servers on a loaded two-core machine, where a wait can run
    // out once. The summary line names every test that needed the retry.
    retry: process.env.CI ? 1 : 0,
    // Builds dist/ when it is older than src/, for the tests that run the CLI bin.
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
})
