/**
 * The `prune` command: ends the active tasks of recording processes whose
 * heartbeat stopped, which crashed or were killed before they could end
 * their own, and moves them to the completed tasks.
 */
import { pruneStaleTasks } from '../trackers/heartbeat'
import { RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import { CliError } from './cli-error'
import { connectTracker, withRedisHint, type TrackerConnection } from './connect'
import { countOf } from './format'
import { describePrefix } from './live-header'
import { describeWrongTypeHeartbeats } from './orphans'
import type { TrackerOptions } from './options'
import { sanitizeText } from '../util/sanitize'
import { cutToWidth } from './text-width'

/** Max columns of one process name in the message, because heartbeat members come from any writer. */
const MAX_PROCESS_WIDTH = 80

/** Most process names listed; the message counts the others. */
const MAX_LISTED_PROCESSES = 20

export interface PruneStreams {
  stdout: { write(text: string): unknown }
}

/** Prunes stale tasks, prints what was removed and returns the exit code. */
export async function runPrune(
  options: TrackerOptions,
  streams: PruneStreams = { stdout: process.stdout },
): Promise<number> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey, {
    keepsCompletedCap: true,
    describeHttpRejection: (displayUrl) =>
      `Cannot prune ${displayUrl}: the HTTP tracker endpoint is read-only; prune the Redis tracker the app records to`,
  })
  try {
    let result
    try {
      result = await pruneStaleTasks(connection.tracker)
    } catch (error) {
      throw new CliError(await describePruneFailure(connection, error))
    }
    const wrongTypeKeys = (result.wrongTypeKeys ?? []).map((key) => ({ key, expected: 'string' as const }))
    if (wrongTypeKeys.length > 0) {
      streams.stdout.write(`${capitalize(describeWrongTypeHeartbeats(wrongTypeKeys, 'keeps their tasks'))}\n`)
    }
    if (result.stalePrefixes.length === 0) {
      streams.stdout.write(
        'No stopped recording process found; nothing removed. ' +
          '(Tasks of writers without heartbeats, such as the Python tracker, are never pruned.)\n',
      )
      return 0
    }
    const names = [...new Set(result.stalePrefixes.map(describePrefix))]
    const unlisted = names.length - MAX_LISTED_PROCESSES
    const processes =
      names
        .slice(0, MAX_LISTED_PROCESSES)
        .map((process) => cutToWidth(sanitizeText(process), MAX_PROCESS_WIDTH))
        .join(', ') + (unlisted > 0 ? ` and ${unlisted} more` : '')
    const recorders = countOf(result.stalePrefixes.length, 'stopped recorder')
    // A recorder whose cleanup timed out ended its tasks but is still listed.
    // The result has no count per recorder, so the tasks are counted together.
    const pronoun = result.stalePrefixes.length === 1 ? 'its' : 'their'
    streams.stdout.write(
      result.removedTasks === 0
        ? `Removed ${recorders} from the heartbeat list, with no active tasks left: ${processes}\n`
        : `Removed ${recorders} from the heartbeat list and ${pronoun} ${countOf(result.removedTasks, 'active task')}: ${processes}\n`,
    )
    if (result.endedTasks > 0) {
      const listLength = await readCompletedListLength(connection.tracker)
      streams.stdout.write(`${describeEndedTasks(result.endedTasks, listLength)}\n`)
    }
    const deleted = result.removedTasks - result.endedTasks
    if (deleted > 0) {
      streams.stdout.write(`${countOf(deleted, 'task')} not in the record layout of web-top's recorder deleted\n`)
    }
    return 0
  } finally {
    await connection.close()
  }
}

/**
 * Returns the line about the tasks that the prune ended. The prune pushes
 * them onto `past_tasks` and then trims the list to TOP_MAX_COMPLETED_TASKS
 * or its earlier length, whichever is more. So when the list is now shorter
 * than the number ended, the oldest of them were trimmed off again, and the
 * line gives how many the list keeps.
 */
function describeEndedTasks(ended: number, listLength: number | undefined): string {
  const outcome = '(recorded_successfully false, tag web_top.outcome: process_stopped)'
  if (listLength === undefined || listLength >= ended) {
    return `${countOf(ended, 'task')} moved to the completed tasks as ended by cleanup ${outcome}`
  }
  const verb = listLength === 1 ? 'is' : 'are'
  const keptCount = listLength === 0 ? 'none of them are' : `${listLength} of them ${verb}`
  return (
    `${countOf(ended, 'task')} ended by cleanup ${outcome}; the completed tasks were trimmed to ${listLength}, ` +
    `the larger of TOP_MAX_COMPLETED_TASKS and their count before the prune, so ${keptCount} kept`
  )
}

/**
 * Returns the length of `past_tasks` after the prune, or `undefined` when
 * it cannot be read. NOTE: an app that records between the prune and this
 * read changes the length, so the count is exact only while no app writes.
 */
async function readCompletedListLength(tracker: Tracker): Promise<number | undefined> {
  if (!(tracker instanceof RedisTracker)) return undefined
  try {
    return await tracker.client.llen(tracker.keys.pastTasks)
  } catch {
    return undefined
  }
}

/**
 * Returns the one-line message for a failed prune. For a WRONGTYPE reply it
 * names the key that contains the wrong kind of value, found with TYPE.
 */
async function describePruneFailure(connection: TrackerConnection, error: unknown): Promise<string> {
  const reason = connection.describeFailure(error)
  const start = `Cannot prune the tracker at ${connection.displayUrl}`
  const diagnosis = await connection.diagnose?.()
  if (diagnosis !== undefined) return `${start}: ${diagnosis}`
  if (!/\bWRONGTYPE\b/.test(reason)) return `${start}: ${withRedisHint(reason, 'prune', connection.diagnose !== undefined)}`

  const wrongKey = await findWrongTypeKey(connection.tracker)
  if (wrongKey === undefined) return `${start}: ${reason}`
  const { key, actual, expected } = wrongKey
  return (
    `${start}: the key ${JSON.stringify(key)} is a ${actual}, not a ${expected} (WRONGTYPE); ` +
    'check the --prefix value, or delete that key if no other program uses it'
  )
}

interface WrongTypeKey {
  key: string
  expected: string
  actual: string
}

/** Returns the first key that prune reads whose Redis type is not the one it expects, if any. */
async function findWrongTypeKey(tracker: Tracker): Promise<WrongTypeKey | undefined> {
  if (!(tracker instanceof RedisTracker)) return undefined
  const expectedTypes: Array<[string, string]> = [
    [tracker.heartbeatKeys.heartbeats, 'set'],
    [tracker.keys.processors, 'hash'],
    [tracker.keys.pastTasks, 'list'],
  ]
  for (const [key, expected] of expectedTypes) {
    let actual: string
    try {
      actual = await tracker.client.type(key)
    } catch {
      return undefined
    }
    if (actual !== 'none' && actual !== expected) return { key, expected, actual }
  }
  return undefined
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
