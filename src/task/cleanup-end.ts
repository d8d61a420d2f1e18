/**
 * Records ended by cleanup: an active entry whose request never reported
 * its end, because its process stopped or its recorder closed first. The
 * wire protocol moves such a task to the completed ones with
 * `recorded_successfully: false`, so that readers still see that it ran.
 */
import type { HttpTask } from './http-task'

/** Tag on a record that did not end with a complete response; its value is the reason. */
export const OUTCOME_TAG = 'web_top.outcome'

/**
 * Reasons of a cleanup, as values of the `web_top.outcome` tag.
 * `process_stopped` is a process that crashed or was killed, found by
 * `prune` or by a new process with the same host and pid.
 * `recorder_closed` is a request still in flight when its recorder closed.
 */
export type CleanupOutcome = 'process_stopped' | 'recorder_closed'

const CLEANUP_OUTCOMES: ReadonlySet<string> = new Set<CleanupOutcome>(['process_stopped', 'recorder_closed'])

/**
 * Returns whether a record was ended by cleanup. Its duration runs until the
 * cleanup, so readers leave it out of their figures (rate, status mix, p99).
 */
export function isEndedByCleanup(task: HttpTask): boolean {
  if (task.recorded_successfully !== false) return false
  const outcome = task.tags?.[OUTCOME_TAG]
  return outcome !== undefined && CLEANUP_OUTCOMES.has(outcome)
}

/**
 * Returns the completed record of an active one: `updated_at` and
 * `ended_at` set to `endedAt`, `recorded_successfully` false and the
 * outcome tag added to `tags`, or as the only tag when `tags` is missing or
 * null. Returns null for text that is not a JSON object.
 */
export function endByCleanup(text: string, endedAt: string, outcome: CleanupOutcome): string | null {
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    return null
  }
  if (!isObject(record)) return null

  const task = record as Record<string, unknown>
  task.updated_at = endedAt
  task.ended_at = endedAt
  task.recorded_successfully = false
  // As in the Redis tracker's script: tags of another type than an object stay as they are.
  if (task.tags === undefined || task.tags === null) task.tags = { [OUTCOME_TAG]: outcome }
  else if (isObject(task.tags)) task.tags = { ...task.tags, [OUTCOME_TAG]: outcome }
  return JSON.stringify(task)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
