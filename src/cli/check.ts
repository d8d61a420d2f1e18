/**
 * The `check` command, for cron jobs and health probes: reads the tracker
 * once and compares stalled requests, the 5xx share and the p99 duration of
 * the window with limits. Prints one line and exits 0 when every limit
 * holds, 1 when one is broken or the tracker's data cannot be read: a key
 * of the wrong type, or only records that cannot be decoded. Records that
 * cannot be decoded among readable ones are left out of the figures and
 * reported on standard error, as `recent` does. Active requests of a
 * process whose heartbeat expired (ORPHANED) are left out of the stalled
 * count and named apart: they no longer run, and `prune` ends them. When
 * an http(s):// tracker's reply is over the reader's size limit, the check
 * judges the newest requests that fit and reports that on standard error.
 */
import { getDurationMs, getEndedAtMs } from '../task/derived'
import type { HttpTask } from '../task/http-task'
import type { TaskSnapshot } from '../trackers/tracker'
import { countOf, formatDuration } from './format'
import { formatLatency, formatShare } from './live-header'
import type { TrackerOptions } from './options'
import { describeOrphaned, describeWrongTypeHeartbeats, findOrphaned, type WrongTypeHeartbeatKey } from './orphans'
import { describeReducedRead } from './read-fewer'
import { readTrackerOnce } from './read-once'
import { sanitizeText } from '../util/sanitize'
import { describeSkipped, listUnreadableKeys } from './skipped'
import { StatsWindow } from './stats'
import { messageStream } from './standard-streams'

/** Most completed tasks read. */
export const CHECK_READ_LIMIT = 10_000

/** Stalled requests named in a failure message. */
const MAX_NAMED_STALLED = 3

/** Characters of a stalled request's path that the report shows, so that one long path cannot make a huge line. */
const MAX_NAMED_PATH_LENGTH = 120

/** Heartbeat keys of the wrong type named in a failure message; it counts the others. */
const MAX_NAMED_HEARTBEAT_KEYS = 3

export interface CheckOptions extends TrackerOptions {
  /** Most active requests allowed to run `stallAfterSeconds` or longer. */
  maxStalled: number | undefined
  /** Highest share (0 to 1) of 5xx responses allowed in the window. */
  maxErrorRate: number | undefined
  /** Highest p99 duration allowed in the window, in milliseconds. */
  maxP99Ms: number | undefined
  /**
   * Fewest completed requests in the window for the check to pass, so that a
   * probe notices an app that records nothing. Undefined or 0 checks nothing.
   */
  minRequests?: number | undefined
  windowSeconds: number
  stallAfterSeconds: number
}

export interface CheckStreams {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/** Figures the check measured. */
export interface CheckFigures {
  stalled: HttpTask[]
  /** Active tasks left out because their process stopped without removing them. */
  orphaned: number
  count: number
  serverErrorRate: number | undefined
  p99Ms: number | undefined
  /** How far back `past_tasks` reaches into the window, in milliseconds. */
  coveredMs: number
}

/** Counts and reasons of what a read could not decode, from `TaskSnapshot.skipped` and `skipReasons`. */
export interface CheckReadFigures {
  /** Records (and keys) the read skipped. */
  skipped: number
  /** Reasons of the keys that could not be read at all, such as "key processors: wrong key type". */
  unreadableKeys: string[]
  /** Whether the read found no readable record but skipped some. */
  nothingReadable: boolean
}

/** Reads the tracker, prints the verdict and returns the exit code. */
export async function runCheck(
  options: CheckOptions,
  streams: CheckStreams = { stdout: process.stdout, stderr: messageStream },
): Promise<number> {
  const { snapshot, stalePrefixes, wrongTypeHeartbeats, emptyPrefixNotice, displayUrl, reduced } = await readTrackerOnce(
    options,
    CHECK_READ_LIMIT,
    { readFewerWhenTooLarge: true },
  )
  const nowMs = Date.now()
  const orphaned = findOrphaned(snapshot.active, stalePrefixes)
  const running = [...snapshot.active.values()].filter((task) => !orphaned.has(task))
  const figures = { ...measure(running, snapshot.completed, options, nowMs), orphaned: orphaned.size }
  const { ok, line } = judge(figures, options, measureRead(snapshot, wrongTypeHeartbeats))
  streams.stdout.write(`${line}\n`)
  if (reduced !== undefined) {
    // A health probe gets a verdict on the newest requests rather than no verdict.
    streams.stderr.write(
      `web-top-cli: ${describeReducedRead(reduced)}; the figures leave out the requests that ended before them\n`,
    )
  }
  if (snapshot.skipped > 0) {
    streams.stderr.write(`web-top-cli: ${describeSkipped(snapshot.skipped, snapshot.skipReasons)}\n`)
  }
  if (orphaned.size > 0) {
    const notice = describeOrphaned(orphaned.size, displayUrl, options.keyPrefix, options.trackerUrlFromEnvironment)
    streams.stderr.write(`web-top-cli: ${notice}\n`)
  }
  if (wrongTypeHeartbeats.length > 0) {
    streams.stderr.write(`web-top-cli: ${describeWrongTypeHeartbeats(wrongTypeHeartbeats)}\n`)
  }
  // The verdict stays OK: an app that has served no request yet has no keys either.
  if (emptyPrefixNotice !== undefined) streams.stderr.write(`web-top-cli: ${emptyPrefixNotice}\n`)
  return ok ? 0 : 1
}

/**
 * Collects what a read skipped, and the keys of the wrong type among those
 * without task records: `last_cleared_at` and the heartbeat keys.
 */
export function measureRead(
  snapshot: TaskSnapshot,
  wrongTypeHeartbeats: readonly WrongTypeHeartbeatKey[] = [],
): CheckReadFigures {
  const readable = snapshot.active.size + snapshot.completed.length
  const heartbeatKeys = wrongTypeHeartbeats.slice(0, MAX_NAMED_HEARTBEAT_KEYS).map(({ key }) => key)
  const wrongTypeKeys = [...(snapshot.wrongTypeKeys ?? []), ...heartbeatKeys].map((key) => `key ${key}: wrong key type`)
  const unnamed = wrongTypeHeartbeats.length - heartbeatKeys.length
  if (unnamed > 0) wrongTypeKeys.push(`${countOf(unnamed, 'more heartbeat key')}: wrong key type`)
  return {
    skipped: snapshot.skipped,
    unreadableKeys: [...listUnreadableKeys(snapshot.skipReasons), ...wrongTypeKeys],
    nothingReadable: snapshot.skipped > 0 && readable === 0,
  }
}

/** Measures the active tasks and the completed tasks that ended within the window. */
export function measure(
  active: readonly HttpTask[],
  completed: readonly HttpTask[],
  options: Pick<CheckOptions, 'windowSeconds' | 'stallAfterSeconds'>,
  nowMs: number,
): Omit<CheckFigures, 'orphaned'> {
  const windowMs = options.windowSeconds * 1000
  const stallAfterMs = options.stallAfterSeconds * 1000
  const stalled = active
    .filter((task) => (getDurationMs(task, nowMs) ?? 0) >= stallAfterMs)
    .sort((a, b) => (getDurationMs(b, nowMs) ?? 0) - (getDurationMs(a, nowMs) ?? 0))

  // past_tasks keeps only the newest tasks: when the oldest one read ended
  // within the window, the figures cover only the part after it.
  const oldestMs = Math.min(...completed.map((task) => getEndedAtMs(task) ?? Infinity))
  const coveredSinceMs = Math.max(nowMs - windowMs, Number.isFinite(oldestMs) ? oldestMs : nowMs - windowMs)
  const window = new StatsWindow(windowMs, coveredSinceMs)
  for (const task of completed) window.add(task, nowMs)
  const figures = window.figures(nowMs)
  return {
    stalled,
    count: figures.count,
    serverErrorRate: figures.serverErrorRate,
    // Exact, so that a p99 at the limit is judged by its real value and not by its histogram bin.
    p99Ms: window.exactQuantile(0.99, nowMs),
    coveredMs: figures.coveredMs,
  }
}

/**
 * Formats a duration and the limit it broke. When the two would print the
 * same, because the display cuts digits (4801.49 and 4800.999 ms both as
 * `4.80s`), both print in milliseconds to the microsecond.
 */
function formatApart(valueMs: number, limitMs: number): [string, string] {
  const value = formatLatency(valueMs)
  const limit = formatLatency(limitMs)
  if (value !== limit) return [value, limit]
  return [`${valueMs.toFixed(3)}ms`, `${limitMs.toFixed(3)}ms`]
}

/** Returns the path of a stalled request, cut to `MAX_NAMED_PATH_LENGTH` characters. */
function describeStalledPath(task: HttpTask): string {
  const path = task.path ?? task.uri ?? '-'
  if (path.length <= MAX_NAMED_PATH_LENGTH) return path
  // A cut between the two halves of a surrogate pair would leave half an emoji.
  const end = isHighSurrogate(path.charCodeAt(MAX_NAMED_PATH_LENGTH - 1)) ? MAX_NAMED_PATH_LENGTH - 1 : MAX_NAMED_PATH_LENGTH
  return `${path.slice(0, end)}…`
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}

/** Returns how long a request has run, or `an unknown time` when its start time is missing or does not parse. */
function describeRunningTime(task: HttpTask): string {
  return formatDuration(getDurationMs(task, Date.now())) ?? 'an unknown time'
}

/**
 * Compares figures with the limits; returns the verdict and its one-line
 * report. A key that could not be read, or a read that skipped records and
 * found no readable one, fails the check whatever the limits. With
 * `maxP99Ms`, so does a window whose requests all lack a known duration,
 * and with `minRequests`, a window with fewer requests.
 */
export function judge(
  figures: CheckFigures,
  options: Omit<CheckOptions, keyof TrackerOptions>,
  read: CheckReadFigures = { skipped: 0, unreadableKeys: [], nothingReadable: false },
): { ok: boolean; line: string } {
  const problems = read.unreadableKeys.map((reason) => `cannot read ${sanitizeText(reason)}`)
  if (problems.length === 0 && read.nothingReadable) {
    problems.push('no readable record')
  }
  const { maxStalled, maxErrorRate, maxP99Ms } = options
  const stallAfter = formatDuration(options.stallAfterSeconds * 1000)

  if (maxStalled !== undefined && figures.stalled.length > maxStalled) {
    const named = figures.stalled
      .slice(0, MAX_NAMED_STALLED)
      .map((task) => `${task.method ?? '-'} ${describeStalledPath(task)} for ${describeRunningTime(task)}`)
      .join(', ')
    problems.push(
      `${countOf(figures.stalled.length, 'request')} running ${stallAfter} or longer (max ${maxStalled}): ${sanitizeText(named)}`,
    )
  }
  if (maxErrorRate !== undefined && (figures.serverErrorRate ?? 0) > maxErrorRate) {
    problems.push(`5xx share ${formatShare(figures.serverErrorRate)} (max ${formatShare(maxErrorRate)})`)
  }
  if (maxP99Ms !== undefined && figures.p99Ms === undefined && figures.count > 0) {
    // A window without requests passes, but one whose requests all lack a duration cannot be judged.
    problems.push(
      `p99 unknown (max ${formatLatency(maxP99Ms)}): no request of the ${figures.count} in the window ` +
        'has a known duration, as when a clock is set back during a request',
    )
  } else if (maxP99Ms !== undefined && (figures.p99Ms ?? 0) > maxP99Ms) {
    const [p99, max] = formatApart(figures.p99Ms ?? 0, maxP99Ms)
    problems.push(`p99 ${p99} (max ${max})`)
  }

  const { minRequests } = options
  if (minRequests !== undefined && figures.count < minRequests) {
    // The count itself follows in the window text.
    problems.push(`too few requests (min ${minRequests})`)
  }

  let windowText = describeWindow(figures, options.windowSeconds)
  if (read.skipped > 0) windowText += `; ${countOf(read.skipped, 'record')} skipped`
  if (figures.orphaned > 0) windowText += `; ${figures.orphaned} orphaned left out`
  if (problems.length > 0) return { ok: false, line: `FAIL: ${problems.join('; ')}; ${windowText}` }
  const summary =
    `${figures.stalled.length} stalled, 5xx ${formatShare(figures.serverErrorRate)}, ` +
    `p99 ${formatLatency(figures.p99Ms)}; ${windowText}`
  return { ok: true, line: `OK: ${summary}` }
}

function describeWindow(figures: CheckFigures, windowSeconds: number): string {
  const covered = Math.round(figures.coveredMs / 1000)
  const coverage = covered < windowSeconds ? ` (the completed requests read go back ${covered}s)` : ''
  return `${countOf(figures.count, 'request')} in the last ${windowSeconds}s${coverage}`
}
