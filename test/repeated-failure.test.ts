import { describe, expect, it } from 'vitest'
import { REPEAT_NOTE_INTERVAL_MS, RepeatedFailureReport } from '../src/cli/repeated-failure'

/** Creates a report on a clock that the test sets, and the list of lines it writes. */
function createReport(): { report: RepeatedFailureReport; lines: string[]; setNow(ms: number): void } {
  const lines: string[] = []
  let nowMs = 0
  const report = new RepeatedFailureReport((line) => lines.push(line), () => nowMs)
  return { report, lines, setNow: (ms) => (nowMs = ms) }
}

describe('RepeatedFailureReport', () => {
  it('writes a repeated error once within the interval', () => {
    const { report, lines, setNow } = createReport()
    for (let second = 0; second < 12; second++) {
      setNow(second * 1000)
      report.fail('ECONNREFUSED')
    }
    expect(lines).toEqual(['ECONNREFUSED'])
  })

  it('counts the repeats once the interval has passed', () => {
    const { report, lines, setNow } = createReport()
    for (let second = 0; second <= 30; second++) {
      setNow(second * 1000)
      report.fail('ECONNREFUSED')
    }
    expect(REPEAT_NOTE_INTERVAL_MS).toBe(30_000)
    expect(lines).toEqual(['ECONNREFUSED', 'still failing with the same error: 30 more failed reads in 30.0s'])

    setNow(31_000)
    report.fail('ECONNREFUSED')
    expect(lines).toHaveLength(2)
  })

  it('writes a different error at once', () => {
    const { report, lines, setNow } = createReport()
    report.fail('ECONNREFUSED')
    setNow(1000)
    report.fail('HTTP 503')
    expect(lines).toEqual(['ECONNREFUSED', 'HTTP 503'])
  })

  it('writes the recovery once, with the failure count', () => {
    const { report, lines, setNow } = createReport()
    report.fail('ECONNREFUSED')
    setNow(2500)
    report.fail('ECONNREFUSED')
    report.succeed()
    report.succeed()
    expect(lines).toEqual(['ECONNREFUSED', 'the tracker can be read again, after 2 failed reads in 2.50s'])
  })

  it('starts over after a recovery', () => {
    const { report, lines } = createReport()
    report.fail('ECONNREFUSED')
    report.succeed()
    report.fail('ECONNREFUSED')
    expect(lines.at(-1)).toBe('ECONNREFUSED')
    expect(lines).toHaveLength(3)
  })

  it('writes nothing for a success without failures', () => {
    const { report, lines } = createReport()
    report.succeed()
    expect(lines).toEqual([])
  })
})
