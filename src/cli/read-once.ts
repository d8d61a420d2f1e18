/**
 * The read of a command that prints once and exits (`recent`, `check`):
 * the tasks, the heartbeats that expired and the note for a key prefix
 * under which no app records.
 */
import { RedisTracker } from '../trackers/redis-tracker'
import { describeCompletedSkipStart } from '../trackers/snapshot'
import type { TaskSnapshot } from '../trackers/tracker'
import { CliError } from './cli-error'
import { connectTracker, diagnoseReadFailure, readTracker, type TrackerConnection } from './connect'
import { describeEmptyPrefix } from './empty-prefix'
import type { TrackerOptions } from './options'
import { readHeartbeatState, type WrongTypeHeartbeatKey } from './orphans'
import { readFewerWhileTooLarge, type ReducedRead } from './read-fewer'

export interface SingleRead {
  snapshot: TaskSnapshot
  /** Processor id prefixes whose heartbeat expired. */
  stalePrefixes: readonly string[]
  /** Heartbeat keys of the wrong type, for which no task can be judged ORPHANED. */
  wrongTypeHeartbeats: readonly WrongTypeHeartbeatKey[]
  /** `describeEmptyPrefix` of the read. */
  emptyPrefixNotice: string | undefined
  /** The tracker's URL with its password masked, for messages. */
  displayUrl: string
  /**
   * Set when the tracker stores more completed tasks than `completedLimit`,
   * so the read left the oldest out. `total` is their number, from LLEN on
   * Redis, and undefined when the tracker cannot tell it.
   */
  moreCompleted: { total: number | undefined } | undefined
  /** Set when the read fell back to fewer completed tasks because a reply was too large. */
  reduced: ReducedRead | undefined
}

export interface SingleReadSettings {
  /** The command's way to read fewer completed tasks, passed to `readTracker`. */
  readLessAdvice?: string | undefined
  /**
   * Whether a reply of completed tasks over the HTTP tracker's size limit
   * makes the read fall back to fewer (`readFewerWhileTooLarge`) instead of failing.
   */
  readFewerWhenTooLarge?: boolean
}

/**
 * Connects, reads the active tasks and up to `completedLimit` completed
 * ones, and closes the connection. It reads one completed task more, to
 * learn whether the tracker stores more than the limit, and leaves that one
 * out. Throws a `CliError` when the tracker cannot be reached or read.
 */
export async function readTrackerOnce(
  options: TrackerOptions,
  completedLimit: number,
  settings: SingleReadSettings = {},
): Promise<SingleRead> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey)
  try {
    const readLimit = completedLimit === 0 ? 0 : completedLimit + 1
    let snapshot: TaskSnapshot
    let reduced: ReducedRead | undefined
    const { maxRecordBytes } = options
    if (settings.readFewerWhenTooLarge === true && readLimit > 0) {
      const read = await readFewerOrFail(connection, readLimit, maxRecordBytes)
      snapshot = read.value
      if (read.limit < readLimit) reduced = { requested: completedLimit, read: read.limit }
    } else {
      const readOptions = { completedLimit: readLimit, maxRecordBytes }
      snapshot = await readTracker(connection, readOptions, settings.readLessAdvice)
    }
    const moreCompleted = dropExtraCompleted(snapshot, completedLimit)
      ? { total: await countCompleted(connection) }
      : undefined
    // Read also without active tasks, so that check finds a heartbeat key of the wrong type.
    const heartbeats = await readHeartbeatState(connection)
    const emptyPrefixNotice = await describeEmptyPrefix(connection, snapshot, options.keyPrefix)
    return {
      snapshot,
      stalePrefixes: heartbeats?.stalePrefixes ?? [],
      wrongTypeHeartbeats: heartbeats?.wrongTypeKeys ?? [],
      emptyPrefixNotice,
      displayUrl: connection.displayUrl,
      moreCompleted,
      reduced,
    }
  } finally {
    await connection.close()
  }
}

/** Reads with `readFewerWhileTooLarge`, and throws a `CliError` as `readTracker` does when the last read fails. */
async function readFewerOrFail(
  connection: TrackerConnection,
  completedLimit: number,
  maxRecordBytes: number | undefined,
) {
  try {
    return await readFewerWhileTooLarge(completedLimit, (limit) =>
      connection.tracker.read({ completedLimit: limit, maxRecordBytes }),
    )
  } catch (error) {
    throw new CliError(await diagnoseReadFailure(connection, error))
  }
}

/**
 * Removes the completed record read past `limit` from `snapshot` and
 * returns whether there was one. Records that could not be decoded count
 * toward the limit too, so the one past it may be a skipped record, which
 * is then uncounted with its reason.
 */
function dropExtraCompleted(snapshot: TaskSnapshot, limit: number): boolean {
  if (limit === 0 || snapshot.completed.length + countCompletedSkipped(snapshot) <= limit) return false
  // The list is read from index 0, so the extra record is at index `limit`.
  if (snapshot.lastSkippedCompletedIndex === limit) {
    snapshot.skipped--
    const reasonStart = describeCompletedSkipStart(limit)
    snapshot.skipReasons = snapshot.skipReasons.filter((reason) => !reason.startsWith(reasonStart))
  } else {
    snapshot.completed.pop()
  }
  return true
}

/** Returns the records and keys of the completed tasks that a read skipped. */
export function countCompletedSkipped(snapshot: TaskSnapshot): number {
  return snapshot.skipped - (snapshot.activeSkipped ?? 0)
}

/**
 * Returns the length of `past_tasks` on a Redis tracker, or undefined for
 * another tracker and when LLEN fails, as for a Redis user whose ACL denies it.
 */
async function countCompleted(connection: TrackerConnection): Promise<number | undefined> {
  const { tracker } = connection
  if (!(tracker instanceof RedisTracker)) return undefined
  try {
    return await tracker.client.llen(tracker.keys.pastTasks)
  } catch {
    return undefined
  }
}
