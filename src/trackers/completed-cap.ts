/**
 * The number of completed tasks a tracker keeps (`past_tasks` in Redis),
 * shared by the recorder's options and the CLI, which both read
 * `TOP_MAX_COMPLETED_TASKS`.
 */
import { invalidEnvironmentValue } from '../errors'

/** Completed tasks kept when neither an option nor `TOP_MAX_COMPLETED_TASKS` sets a number. */
export const DEFAULT_MAX_COMPLETED_TASKS = 256

/**
 * Reads `TOP_MAX_COMPLETED_TASKS`. Returns undefined when it is unset or
 * empty, and throws an error with the code `WEB_TOP_INVALID_OPTION`
 * for text that is not a whole number from 1 to `Number.MAX_SAFE_INTEGER`.
 */
export function readMaxCompletedEnv(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined
  const parsed = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw invalidEnvironmentValue(
      'TOP_MAX_COMPLETED_TASKS',
      `a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
      value,
    )
  }
  return parsed
}
