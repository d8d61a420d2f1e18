/**
 * Prints one closing line, `tests: N passed, N failed, N skipped`, that CI
 * systems read to tell a run with tests from one without. Before it, each
 * test that failed first and passed on its retry is named, so that a flaky
 * test shows in the log of a green run.
 */
import { relative } from 'node:path'
import type { Reporter, TestModule } from 'vitest/node' with { 'resolution-mode': 'import' }

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 }
    const flaky: string[] = []
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const state = test.result().state
        if (test.diagnostic()?.flaky) flaky.push(`${relative(process.cwd(), testModule.moduleId)} > ${test.fullName}`)
        if (state === 'passed') counts.passed++
        else if (state === 'failed') counts.failed++
        else counts.skipped++
      }
      if (testModule.state() === 'failed' && testModule.children.size === 0) counts.failed++
    }
    for (const name of flaky) process.stdout.write(`\npassed on retry: ${name}`)
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`)
  }
}
