/**
 * The fallback of `tail` and `check` when an http(s):// tracker's reply of
 * completed tasks is over the reader's size limit: they read fewer
 * completed tasks instead of failing, and report what they left out.
 */
import { HttpTrackerError, MAX_BODY_BYTES } from '../trackers/http-tracker'

/** Smallest number of completed tasks that a read falls back to. */
export const MIN_FALLBACK_LIMIT = 10

/** Factor by which each fallback read lowers the number of completed tasks. */
const FALLBACK_DIVISOR = 10

/** A read that returned fewer completed tasks than requested because larger replies were too large. */
export interface ReducedRead {
  /** Completed tasks the first read requested. */
  requested: number
  /** Completed tasks the read that worked requested. */
  read: number
}

/**
 * Calls `read` with `limit`, and while the reply of completed tasks is over
 * the HTTP tracker's size limit, again with a tenth of the previous limit,
 * down to `MIN_FALLBACK_LIMIT`. Returns the value of the read that worked
 * and its limit, or rethrows the error of the last read.
 */
export async function readFewerWhileTooLarge<T>(
  limit: number,
  read: (limit: number) => Promise<T>,
): Promise<{ value: T; limit: number }> {
  let current = limit
  for (;;) {
    try {
      return { value: await read(current), limit: current }
    } catch (error) {
      const next = Math.floor(current / FALLBACK_DIVISOR)
      if (!isTooLargeCompletedReply(error) || next < MIN_FALLBACK_LIMIT) throw error
      current = next
    }
  }
}

/** Returns the reason of a reduced read, for the end of a stderr line: "the reply to a read of …". */
export function describeReducedRead(reduced: ReducedRead): string {
  const maxMib = MAX_BODY_BYTES / 1024 / 1024
  return (
    `the reply to a read of ${reduced.requested} requests was over the reader's ${maxMib} MiB limit, ` +
    `so only the newest ${reduced.read} were read`
  )
}

/** Checks whether an error is an http(s):// tracker's reply of completed tasks over the reader's size limit. */
function isTooLargeCompletedReply(error: unknown): boolean {
  return (
    error instanceof HttpTrackerError &&
    error.code === 'RESPONSE_TOO_LARGE' &&
    error.message.includes('action=completed-tasks')
  )
}
