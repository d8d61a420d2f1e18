/**
 * The period whose requests a reader may have missed, and the shortest one
 * it reports: `formatDuration()` prints anything shorter as 0.00s.
 */
import { describe, expect, it } from 'vitest'
import { formatDuration } from '../src/cli/format'
import { findMissingPeriod, MIN_MISSING_PERIOD_MS } from '../src/cli/missing-period'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'

const SINCE_MS = Date.UTC(2026, 11, 5, 12, 0, 0)
const NOW_MS = SINCE_MS + 60_000

function endedAt(endedAtMs: number): HttpTask {
  return { task_id: `t-${endedAtMs}`, ended_at: formatIsoTime(endedAtMs), status_code: 200 }
}

describe('findMissingPeriod', () => {
  it('prints the shortest period as more than 0.00s', () => {
    expect(formatDuration(MIN_MISSING_PERIOD_MS)).toBe('0.01s')
    expect(formatDuration(MIN_MISSING_PERIOD_MS - 0.001)).toBe('0.00s')
  })

  it.each([0, 1, 9, 9.999])('reports nothing for a read starting %d ms later', (laterMs) => {
    expect(findMissingPeriod([endedAt(SINCE_MS + laterMs)], SINCE_MS, NOW_MS)).toBeUndefined()
  })

  it.each([10, 1_500])('reports a read starting %d ms later', (laterMs) => {
    const tasks = [endedAt(SINCE_MS + laterMs + 100), endedAt(SINCE_MS + laterMs)]
    expect(findMissingPeriod(tasks, SINCE_MS, NOW_MS)).toEqual({ fromMs: SINCE_MS, toMs: SINCE_MS + laterMs })
  })

  it('ends the period now for an end time ahead of this clock', () => {
    const tasks = [endedAt(SINCE_MS + 10_000)]
    expect(findMissingPeriod(tasks, SINCE_MS, SINCE_MS + 8)).toBeUndefined()
    expect(findMissingPeriod(tasks, SINCE_MS, SINCE_MS + 12)).toEqual({ fromMs: SINCE_MS, toMs: SINCE_MS + 12 })
  })

  it('reports nothing for a read reaching back', () => {
    expect(findMissingPeriod([endedAt(SINCE_MS - 1)], SINCE_MS, NOW_MS)).toBeUndefined()
    expect(findMissingPeriod([], SINCE_MS, NOW_MS)).toBeUndefined()
  })
})
