/**
 * Completed tasks a reader may have missed. `past_tasks` and the memory
 * tracker keep only the newest completed tasks, so tasks that ended between
 * two reads can be trimmed before the second one.
 */
import { getEndedAtMs } from '../task/derived'
import type { HttpTask } from '../task/http-task'

/** Period, in epoch milliseconds, whose completed tasks may be missing. */
export interface MissingPeriod {
  fromMs: number
  toMs: number
}

/**
 * Shortest period reported as missing, in milliseconds. `formatDuration()`
 * cuts a shorter one to 0.00s. End times also come from the clocks of
 * the apps' hosts and, after a reconnection, of the reader's, so a few
 * milliseconds between them are within the error of those clocks.
 */
export const MIN_MISSING_PERIOD_MS = 10

/**
 * Returns the period from `sinceMs` to the end of the oldest task read, when
 * that task ended at least `MIN_MISSING_PERIOD_MS` after `sinceMs`: the
 * tasks that ended between the two may have been trimmed. Returns
 * undefined when the read reaches back to `sinceMs`, or nearly so, or
 * contains no readable end time.
 * NOTE: requests trimmed from a shorter period go unreported.
 */
export function findMissingPeriod(
  tasks: readonly HttpTask[],
  sinceMs: number,
  nowMs: number,
): MissingPeriod | undefined {
  const oldestMs = findOldestEnd(tasks)
  if (oldestMs === undefined) return undefined
  const toMs = Math.min(oldestMs, nowMs)
  return toMs - sinceMs < MIN_MISSING_PERIOD_MS ? undefined : { fromMs: sinceMs, toMs }
}

export function findOldestEnd(tasks: readonly HttpTask[]): number | undefined {
  let oldest: number | undefined
  for (const task of tasks) {
    const endedAtMs = getEndedAtMs(task)
    if (endedAtMs !== undefined && (oldest === undefined || endedAtMs < oldest)) oldest = endedAtMs
  }
  return oldest
}

export function findNewestEnd(tasks: readonly HttpTask[]): number | undefined {
  let newest: number | undefined
  for (const task of tasks) {
    const endedAtMs = getEndedAtMs(task)
    if (endedAtMs !== undefined && (newest === undefined || endedAtMs > newest)) newest = endedAtMs
  }
  return newest
}
