/**
 * A note for `recent` and `check` when a Redis read finds nothing because
 * no app records under the key prefix, as after a typo in `--prefix`:
 * without it, an empty table or "OK" looks like an idle app.
 */
import { RedisTracker } from '../trackers/redis-tracker'
import type { TaskSnapshot } from '../trackers/tracker'
import type { TrackerConnection } from './connect'
import { quoteForShell } from './detail'
import { sanitizeText } from '../util/sanitize'

/**
 * Returns the note when the read found no record and none of the prefix's
 * `processors`, `past_tasks`, `last_cleared_at` and `heartbeats` keys
 * exists, the keys by which `prefixes` finds an app. Sends one EXISTS, and only after an empty
 * read of a Redis tracker. Returns undefined otherwise, and when EXISTS
 * fails: the note is advice, and the read itself worked.
 */
export async function describeEmptyPrefix(
  connection: TrackerConnection,
  snapshot: TaskSnapshot,
  keyPrefix = '',
): Promise<string | undefined> {
  const found = snapshot.active.size + snapshot.completed.length + snapshot.skipped
  if (found > 0 || snapshot.lastClearedAt !== null) return undefined
  return describeUnusedPrefix(connection, keyPrefix)
}

/**
 * Returns the note of `describeEmptyPrefix` when none of the prefix's
 * keys exists, without a read first, for a command that does not read the
 * tasks at its start (`tail`). Sends one EXISTS to a Redis tracker.
 */
export async function describeUnusedPrefix(connection: TrackerConnection, keyPrefix = ''): Promise<string | undefined> {
  const { tracker } = connection
  if (!(tracker instanceof RedisTracker)) return undefined
  let existing: number
  try {
    existing = await countTrackerKeys(tracker)
  } catch {
    // A Redis user without EXISTS in its ACL gets no note.
    return undefined
  }
  if (existing > 0) return undefined

  const where = keyPrefix === '' ? 'without a key prefix' : `under the key prefix ${JSON.stringify(keyPrefix)}`
  // The prefix comes from the command line, which may contain characters that a terminal acts on.
  return sanitizeText(
    `no app has recorded ${where} at ${connection.displayUrl} (no processors, past_tasks, ` +
      `last_cleared_at or heartbeats key); ${describePrefixAdvice(keyPrefix, connection.displayUrl)}`,
  )
}

/** Returns what to do about a key prefix under which no app records: check it, or list the prefixes in use. */
export function describePrefixAdvice(keyPrefix: string, displayUrl: string): string {
  const fix =
    keyPrefix === '' ? "if the app sets keyPrefix, pass it with --prefix" : "check --prefix against the app's keyPrefix"
  return `${fix}, or list the prefixes in use with ${describePrefixesCommand(displayUrl)}`
}

/**
 * Returns how many of the prefix's `processors`, `past_tasks`,
 * `last_cleared_at` and `heartbeats` keys exist, with one EXISTS. Rejects
 * when EXISTS fails.
 */
export function countTrackerKeys(tracker: RedisTracker): Promise<number> {
  const { processors, pastTasks, lastClearedAt } = tracker.keys
  return tracker.client.exists(processors, pastTasks, lastClearedAt, tracker.heartbeatKeys.heartbeats)
}

/**
 * Returns the `web-top-cli prefixes` command for the server at
 * `displayUrl`. A masked password would not work if pasted, so such a URL
 * is not repeated.
 */
function describePrefixesCommand(displayUrl: string): string {
  if (displayUrl.includes('***')) return 'web-top-cli prefixes and the same --tracker-url'
  return `web-top-cli prefixes --tracker-url ${quoteForShell(displayUrl)}`
}
