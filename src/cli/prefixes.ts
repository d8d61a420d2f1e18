/**
 * Apps sharing one Redis: the `prefixes` command lists the key prefixes that
 * trackers write to, and `recent --all-prefixes` prints the requests of each.
 */
import type { Cluster } from 'ioredis'
import type { HttpTask } from '../task/http-task'
import { listTrackerKeys, type WrongTypeKey } from '../trackers/list-prefixes'
import { hasClusterHashTag } from '../trackers/redis-connection'
import { createRedisKeys } from '../trackers/redis-keys'
import { isCluster, RedisTracker } from '../trackers/redis-tracker'
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './cli-error'
import { connectTracker, readTracker } from './connect'
import type { TrackerOptions } from './options'
import { CUT_NOTICE, stringifyForTerminal } from './json-output'
import { describeOrphaned } from './orphans'
import { readRecentTasks, runRecent, type RecentOptions, type RecentStreams } from './recent'
import { escapeJsonForTerminal } from '../util/sanitize'
import { fitToWidth, textWidth } from './text-width'
import { messageStream } from './standard-streams'

export interface PrefixesStreams {
  stdout: { write(text: string): unknown }
}

/** Summary of one app found on the server. */
export interface PrefixSummary {
  prefix: string
  active: number
  completed: number
  /** Records (and keys) that could not be read, which the counts leave out. */
  skipped: number
  /**
   * True for a prefix without a hash tag on Redis Cluster: its keys lie on
   * several slots, so they were counted one by one and cannot be read together.
   */
  spread?: boolean
  /** Keys of the prefix with a tracker key name but another Redis type; set when there are any. */
  wrongTypeKeys?: Array<Pick<WrongTypeKey, 'key' | 'expected'>>
}

/**
 * Finds the prefixes on the tracker's Redis, with their active and
 * completed counts. With `withWrongTypeOnly`, it also lists the prefixes
 * whose tracker keys all have the wrong Redis type.
 */
export async function findPrefixes(
  options: TrackerOptions,
  { withWrongTypeOnly = false } = {},
): Promise<PrefixSummary[]> {
  const connection = await connectTracker(options.trackerUrl, undefined, options.apiKey, {
    listsPrefixes: true,
    describeHttpRejection: describeNoPrefixes,
  })
  try {
    const tracker = connection.tracker
    if (!(tracker instanceof RedisTracker)) throw new CliError(describeNoPrefixes(connection.displayUrl), EXIT_USAGE)

    let listing
    try {
      listing = await listTrackerKeys(tracker.client)
    } catch (error) {
      const reason = (await connection.diagnose?.()) ?? connection.describeFailure(error)
      throw new CliError(`Cannot list prefixes at ${connection.displayUrl}: ${reason}`)
    }
    const wrongTypePrefixes = withWrongTypeOnly ? listing.wrongTypeKeys.map(({ prefix }) => prefix) : []
    const prefixes = [...new Set([...listing.prefixes, ...wrongTypePrefixes])].sort()

    const summaries: PrefixSummary[] = []
    for (const prefix of prefixes) {
      const summary = await summarizePrefix(tracker, prefix, options)
      const wrongTypeKeys = listing.wrongTypeKeys
        .filter((key) => key.prefix === prefix)
        .map(({ key, expected }) => ({ key, expected }))
      summaries.push(wrongTypeKeys.length === 0 ? summary : { ...summary, wrongTypeKeys })
    }
    return summaries
  } finally {
    await connection.close()
  }
}

function describeNoPrefixes(displayUrl: string): string {
  return `Cannot list prefixes of ${displayUrl}: only a Redis tracker has key prefixes`
}

/** Reads the counts of one prefix. */
async function summarizePrefix(tracker: RedisTracker, prefix: string, options: TrackerOptions): Promise<PrefixSummary> {
  // A reader reads one prefix in a transaction, which Redis Cluster
  // rejects for keys on several slots, so each key is counted alone.
  if (isCluster(tracker.client) && !hasClusterHashTag(prefix)) return countSpreadPrefix(tracker.client, prefix)

  const prefixed = await connectTracker(options.trackerUrl, prefix, options.apiKey)
  try {
    const snapshot = await readTracker(prefixed, {
      completedLimit: Number.MAX_SAFE_INTEGER,
      maxRecordBytes: options.maxRecordBytes,
    })
    return { prefix, active: snapshot.active.size, completed: snapshot.completed.length, skipped: snapshot.skipped }
  } finally {
    await prefixed.close()
  }
}

/**
 * Counts the active and completed tasks of a prefix without a hash tag on
 * a cluster. Unlike a read, it counts records that do not decode too.
 */
async function countSpreadPrefix(client: Cluster, prefix: string): Promise<PrefixSummary> {
  const keys = createRedisKeys(prefix)
  const [active, completed] = await Promise.all([client.hlen(keys.processors), client.llen(keys.pastTasks)])
  return { prefix, active, completed, skipped: 0, spread: true }
}

/** Prints one line per prefix found, or a JSON array with `json`. Returns the exit code. */
export async function runPrefixes(
  options: TrackerOptions & { json: boolean },
  streams: PrefixesStreams = { stdout: process.stdout },
): Promise<number> {
  const summaries = await findPrefixes(options, { withWrongTypeOnly: true })
  if (options.json) {
    streams.stdout.write(`${escapeJsonForTerminal(JSON.stringify(summaries))}\n`)
    return 0
  }
  if (summaries.length === 0) {
    streams.stdout.write(`${NO_TRACKER_KEYS_NOTE}.\n`)
    return 0
  }
  for (const line of formatSummaryLines(summaries)) streams.stdout.write(`${line}\n`)
  return 0
}

/** Note for a server where `findPrefixes` found no prefix, as a sentence without its full stop. */
const NO_TRACKER_KEYS_NOTE = 'No tracker keys found on this server'

/**
 * Formats one line per prefix, with the prefixes, the counts and the
 * skipped records in aligned columns. Keys of the wrong type follow at the
 * end of the line.
 */
function formatSummaryLines(summaries: readonly PrefixSummary[]): string[] {
  const prefixes = summaries.map(({ prefix }) => formatPrefix(prefix))
  const skipped = summaries.map((summary) => (summary.skipped > 0 ? `${summary.skipped} skipped (not readable)` : ''))
  const prefixWidth = Math.max(...prefixes.map(textWidth))
  const activeWidth = Math.max(...summaries.map(({ active }) => String(active).length))
  const completedWidth = Math.max(...summaries.map(({ completed }) => String(completed).length))
  const skippedWidth = Math.max(...skipped.map((text) => text.length))

  return summaries.map((summary, index) => {
    const cells = [
      fitToWidth(prefixes[index] ?? '', prefixWidth),
      `${String(summary.active).padStart(activeWidth)} active`,
      `${String(summary.completed).padStart(completedWidth)} completed`,
    ]
    if (skippedWidth > 0) cells.push((skipped[index] ?? '').padEnd(skippedWidth))
    for (const { key, expected } of summary.wrongTypeKeys ?? []) {
      cells.push(`key ${formatKey(key)}: wrong key type, not a ${expected}`)
    }
    return cells.join('  ').trimEnd()
  })
}

/**
 * Runs `recent` once for every prefix found and prints each table under a
 * heading line. `--json` prints one array of `{ prefix, tasks }` instead,
 * and `--ndjson` one `{ prefix, task }` object per line, so that the
 * output stays valid JSON and names the prefix of each task.
 */
export async function runRecentForAllPrefixes(
  options: RecentOptions,
  streams: RecentStreams = { stdout: process.stdout, stderr: messageStream },
): Promise<number> {
  const summaries = await findPrefixes(options)
  if (summaries.length === 0) {
    // The note goes to stderr, so that --json still prints an empty array and --ndjson nothing.
    streams.stderr.write(`web-top-cli: ${NO_TRACKER_KEYS_NOTE.toLowerCase()}\n`)
  }
  let exitCode = 0
  const groups: PrefixTasks[] = []
  let printed = 0
  for (const { prefix, spread } of summaries) {
    if (spread === true) {
      streams.stderr.write(`web-top-cli: ${formatPrefix(prefix)}: ${SPREAD_PREFIX_NOTICE}\n`)
      exitCode = Math.max(exitCode, EXIT_FAILURE)
      continue
    }
    const prefixed = { ...options, keyPrefix: prefix }
    const index = printed++
    try {
      if (options.format === 'table') {
        streams.stdout.write(`${index === 0 ? '' : '\n'}== ${formatPrefix(prefix)} ==\n`)
        // Notices go to stderr, away from the headings, so each names its app.
        const stderr = { write: (text: string) => streams.stderr.write(text.replace(NOTICE_START, `$&${formatPrefix(prefix)}: `)) }
        exitCode = Math.max(exitCode, await runRecent(prefixed, { stdout: streams.stdout, stderr }))
        continue
      }
      const read = await readRecentTasks(prefixed)
      groups.push({ prefix, tasks: read.tasks })
      if (read.skippedNotice !== undefined) {
        streams.stderr.write(`web-top-cli: ${formatPrefix(prefix)}: ${read.skippedNotice}\n`)
      }
      if (read.orphaned.size > 0) {
        const notice = describeOrphaned(read.orphaned.size, read.displayUrl, prefix, options.trackerUrlFromEnvironment)
        streams.stderr.write(`web-top-cli: ${formatPrefix(prefix)}: ${notice}\n`)
      }
      for (const notice of [read.heartbeatNotice, read.wrongTypeKeyNotice, read.unreadNotice]) {
        if (notice !== undefined) streams.stderr.write(`web-top-cli: ${formatPrefix(prefix)}: ${notice}\n`)
      }
    } catch (error) {
      // A prefix that cannot be read, such as one without a hash tag on a cluster, is reported and the others still print.
      if (!(error instanceof CliError)) throw error
      streams.stderr.write(`web-top-cli: ${formatPrefix(prefix)}: ${error.message}\n`)
      exitCode = Math.max(exitCode, EXIT_FAILURE)
    }
  }

  let cut = false
  const onCut = () => {
    cut = true
  }
  if (options.format === 'json') {
    streams.stdout.write(`${stringifyForTerminal(groups, 2, onCut)}\n`)
  } else if (options.format === 'ndjson') {
    for (const { prefix, tasks } of groups) {
      for (const task of tasks) streams.stdout.write(`${stringifyForTerminal({ prefix, task }, undefined, onCut)}\n`)
    }
  }
  if (cut) streams.stderr.write(`web-top-cli: ${CUT_NOTICE}\n`)
  return exitCode
}

/** Notice for a prefix without a hash tag on Redis Cluster, which `recent --all-prefixes` leaves out. */
const SPREAD_PREFIX_NOTICE =
  'not printed: without a hash tag, this prefix spreads its keys over several Redis Cluster slots, which ' +
  'cannot be read together; give its apps a prefix with a hash tag, such as {shop}:'

/** The tasks of one key prefix, as `recent --all-prefixes --json` prints them. */
interface PrefixTasks {
  prefix: string
  tasks: HttpTask[]
}

/** Start of each notice line that the CLI writes to stderr. */
const NOTICE_START = /^web-top-cli: /gm

function formatPrefix(prefix: string): string {
  // Any writer names the keys, so a prefix may contain characters that a terminal acts on.
  return prefix === '' ? '(no prefix)' : formatKey(prefix)
}

function formatKey(key: string): string {
  return escapeJsonForTerminal(JSON.stringify(key))
}
