/**
 * A note for `recent` and `check` when a Redis read finds nothing because
 * no app records under the key prefix, as after a typo in `--prefix`:
 * without it, an empty table or "OK" looks like an idle app.
 */
import { RedisTracker } from '../trackers/redis-tracker'
import type { TaskSnapshot } from '../trackers/tracker'
import type { TrackerConnection } from './connect'
import { quoteForShell } from './detail'
import { sanitizeText } from './sanitize'

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
  const { tracker } = connection
  if (!(tracker instanceof RedisTracker)) return undefined
  const found = snapshot.active.size + snapshot.completed.length + snapshot.skipped
  if (found > 0 || snapshot.lastClearedAt !== null) return undefined

  let existing: number
  try {
    const { processors, pastTasks, lastClearedAt } = tracker.keys
    existing = await tracker.client.exists(processors, pastTasks, lastClearedAt, tracker.heartbeatKeys.heartbeats)
  } catch {
    // A Redis user without EXISTS in its ACL gets no note.
    return undefined
  }
  if (existing > 0) return undefined

  const where = keyPrefix === '' ? 'without a key prefix' : `under the key prefix ${JSON.stringify(keyPrefix)}`
  const fix =
    keyPrefix === '' ? "if the app sets keyPrefix, pass it with --prefix" : "check --prefix against the app's keyPrefix"
  // A masked password would not work if pasted, so such a URL is not repeated.
  const masked = connection.displayUrl.includes('***')
  const listCommand = masked
    ? 'web-top-cli prefixes and the same --tracker-url'
    : `web-top-cli prefixes --tracker-url ${quoteForShell(connection.displayUrl)}`
  // The prefix comes from the command line, which may contain characters that a terminal acts on.
  return sanitizeText(
    `no app has recorded ${where} at ${connection.displayUrl} (no processors, past_tasks, ` +
      `last_cleared_at or heartbeats key); ${fix}, or list the prefixes in use with ${listCommand}`,
  )
}
