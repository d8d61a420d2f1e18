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
 * Returns the period from `sinceMs` to the end of the oldest task read, when
 * that task ended after `sinceMs`: the tasks that ended between the two may
 * have been trimmed. Returns undefined when the read reaches back to
 * `sinceMs` or contains no readable end time.
 */
export function findMissingPeriod(
  tasks: readonly HttpTask[],
  sinceMs: number,
  nowMs: number,
): MissingPeriod | undefined {
  const oldestMs = findOldestEnd(tasks)
  if (oldestMs === undefined || oldestMs <= sinceMs) return undefined
  return { fromMs: sinceMs, toMs: Math.min(oldestMs, nowMs) }
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
