/**
 * The read of a command that prints once and exits (`recent`, `check`):
 * the tasks, the heartbeats that expired and the note for a key prefix
 * under which no app records.
 */
import type { TaskSnapshot } from '../trackers/tracker'
import { connectTracker, readTracker } from './connect'
import { describeEmptyPrefix } from './empty-prefix'
import type { TrackerOptions } from './options'
import { readStalePrefixes } from './orphans'

export interface SingleRead {
  snapshot: TaskSnapshot
  /** Processor id prefixes whose heartbeat expired, read only when some task is active. */
  stalePrefixes: readonly string[]
  /** `describeEmptyPrefix` of the read. */
  emptyPrefixNotice: string | undefined
  /** The tracker's URL with its password masked, for messages. */
  displayUrl: string
}

/**
 * Connects, reads the active tasks and up to `completedLimit` completed
 * ones, and closes the connection. Throws a `CliError` when the tracker
 * cannot be reached or read. `readLessAdvice` is passed to `readTracker`.
 */
export async function readTrackerOnce(
  options: TrackerOptions,
  completedLimit: number,
  readLessAdvice?: string,
): Promise<SingleRead> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey)
  try {
    const snapshot = await readTracker(connection, completedLimit, readLessAdvice)
    const stalePrefixes = snapshot.active.size > 0 ? await readStalePrefixes(connection) : []
    const emptyPrefixNotice = await describeEmptyPrefix(connection, snapshot, options.keyPrefix)
    return { snapshot, stalePrefixes, emptyPrefixNotice, displayUrl: connection.displayUrl }
  } finally {
    await connection.close()
  }
}
