/**
 * Which requests a listing shows: the `--path`, `--status`, `--method`,
 * `--host` and `--min-duration` options of `recent`, `tail` and `live`,
 * and the free-text filter of the live view.
 */
import { getDurationMs, getOriginalIp, getRequestHost, getStatusCode, getUserAgent } from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { roundToMicroseconds } from '../task/time'

export interface TaskFilterOptions {
  /** A substring of the path, or a glob with `*` and `?` that must match the whole path. */
  path?: string | undefined
  /** Status codes, classes and ranges, as parsed by `parseStatusFilter`. */
  status?: StatusFilter | undefined
  /** Methods, compared without case. */
  methods?: readonly string[] | undefined
  /** A substring of the recording host (`host_name`) or of the request's Host header. */
  host?: string | undefined
  /** Shortest duration shown, in milliseconds. */
  minDurationMs?: number | undefined
}

/** Returns whether a task passes the filter; `nowMs` measures active tasks. */
export type TaskPredicate = (task: HttpTask, nowMs: number) => boolean

/** A status filter: a list of ranges, any of which may match. */
export interface StatusFilter {
  /** The text it was parsed from, for messages. */
  text: string
  ranges: ReadonlyArray<readonly [number, number]>
}

/** Builds the predicate of the filter options; tasks pass every option that is set. */
export function createTaskFilter(options: TaskFilterOptions): TaskPredicate {
  const checks: TaskPredicate[] = []
  if (options.path !== undefined && options.path !== '') {
    const matchPath = createPathMatcher(options.path)
    checks.push((task) => matchPath(task.path ?? task.uri ?? ''))
  }
  const status = options.status
  if (status !== undefined) checks.push((task) => matchStatus(status, task.status_code))
  if (options.methods !== undefined && options.methods.length > 0) {
    const methods = new Set(options.methods.map((method) => method.toUpperCase()))
    checks.push((task) => methods.has((task.method ?? '').toUpperCase()))
  }
  if (options.host !== undefined && options.host !== '') {
    const host = options.host.toLowerCase()
    checks.push((task) =>
      [task.host_name, getRequestHost(task)].some((value) => (value ?? '').toLowerCase().includes(host)),
    )
  }
  const minDurationMs = options.minDurationMs
  if (minDurationMs !== undefined) {
    checks.push((task, nowMs) => (getDurationMs(task, nowMs) ?? -1) >= minDurationMs)
  }
  return (task, nowMs) => checks.every((check) => check(task, nowMs))
}

/** Returns true when no filter option is set. */
export function isEmptyFilter(options: TaskFilterOptions): boolean {
  return Object.values(options).every((value) => value === undefined || value === '')
}

/**
 * Returns a matcher for a path filter. A filter with `*` (any characters)
 * or `?` (one character) is a glob that must match the whole path; any
 * other filter matches a path that contains it. A character is a Unicode
 * code point, as in shell globs, so `?` matches 🎉, which UTF-16 stores as
 * two code units. An emoji of several code points, such as a flag, takes
 * one `?` for each.
 */
export function createPathMatcher(filter: string): (path: string) => boolean {
  if (!/[*?]/.test(filter)) return (path) => path.includes(filter)
  const pattern = Array.from(filter)
  return (path) => matchGlob(pattern, Array.from(path))
}

/**
 * Returns whether `text` matches the glob `pattern`, both as code points.
 * After a mismatch it retries only from the last `*`, one character further,
 * so a time in proportion to the product of the two lengths is the worst
 * case. A regular expression with `.*` for each `*` tries every way to
 * split the text among the stars: `*a*a*a*b` against a path of 2,000 `a`
 * ran for over a minute.
 */
function matchGlob(pattern: readonly string[], text: readonly string[]): boolean {
  let patternIndex = 0
  let textIndex = 0
  let starIndex = -1
  let starTextIndex = 0

  while (textIndex < text.length) {
    const char = pattern[patternIndex]
    if (char === '*') {
      starIndex = patternIndex++
      starTextIndex = textIndex
    } else if (char !== undefined && (char === '?' || char === text[textIndex])) {
      patternIndex++
      textIndex++
    } else if (starIndex !== -1) {
      patternIndex = starIndex + 1
      textIndex = ++starTextIndex
    } else {
      return false
    }
  }
  while (pattern[patternIndex] === '*') patternIndex++
  return patternIndex === pattern.length
}

/**
 * Lowest and highest status code a filter takes: those that Node lets a
 * server send, and that the reader shows (it shows any other as `-`).
 */
const MIN_STATUS = 100
const MAX_STATUS = 999

/**
 * Parses a status filter: a comma-separated list of codes (`404`), classes
 * (`5xx`) and ranges (`400-499`), with codes from 100 to 999. Throws an
 * `Error` naming the part that matches none of these forms.
 */
export function parseStatusFilter(text: string): StatusFilter {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
  if (parts.length === 0) throw new Error('Expected a status such as 404, 5xx or 400-499.')
  return { text, ranges: parts.map(parseStatusPart) }
}

function parseStatusPart(part: string): [number, number] {
  const statusClass = /^([1-9])xx$/i.exec(part)
  if (statusClass !== null) {
    const first = Number(statusClass[1]) * 100
    return [first, first + 99]
  }
  if (/^\d{3}$/.test(part)) {
    requireStatusCode(part, part)
    return [Number(part), Number(part)]
  }
  const range = /^(\d{3})-(\d{3})$/.exec(part)
  if (range !== null) {
    const [first, last] = [range[1] as string, range[2] as string]
    requireStatusCode(first, part)
    requireStatusCode(last, part)
    if (Number(first) > Number(last)) {
      throw new Error(`Invalid status range ${JSON.stringify(part)}: its first code is greater than its last.`)
    }
    return [Number(first), Number(last)]
  }
  throw new Error(
    `Invalid status ${JSON.stringify(part)}: expected a code (404), a class (5xx) or a range (400-499).`,
  )
}

/** Throws an `Error` naming `part` when `code` is outside MIN_STATUS to MAX_STATUS. */
function requireStatusCode(code: string, part: string): void {
  const value = Number(code)
  if (value < MIN_STATUS || value > MAX_STATUS) {
    throw new Error(`Invalid status ${JSON.stringify(part)}: status codes are from ${MIN_STATUS} to ${MAX_STATUS}.`)
  }
}

export function matchStatus(filter: StatusFilter, status: number | null | undefined): boolean {
  if (typeof status !== 'number') return false
  return filter.ranges.some(([first, last]) => status >= first && status <= last)
}

/**
 * Maximum of the duration options (--max-p99, --min-duration, --window,
 * --slow-after, --stall-after): 365 days, in seconds. A larger value is
 * most likely a mistake, such as milliseconds given where seconds are
 * expected, and the error names the limit.
 */
export const MAX_DURATION_SECONDS = 365 * 24 * 60 * 60

const MAX_DURATION_MINUTES = MAX_DURATION_SECONDS / 60

/** Units of a duration option, in milliseconds: the units in which the tables show durations. */
const DURATION_UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

type DurationUnit = keyof typeof DURATION_UNIT_MS

/** Units from the largest to the smallest, the order in which a duration such as `2h07m` names them. */
const DURATION_UNIT_ORDER: readonly DurationUnit[] = ['d', 'h', 'm', 's', 'ms']

const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)/giy

/**
 * Parses a duration given in milliseconds (`250`, `250ms`), seconds
 * (`1.5s`), minutes (`2m`), hours (`1h`) or days (`1d`), or as the tables
 * show one, with larger units first (`2h07m`, `4m05s`, `3d04h`). Returns
 * milliseconds, rounded to whole microseconds as durations are. Throws an
 * `Error` for anything else, a negative value or more than 365 days.
 */
export function parseDurationMs(text: string): number {
  const ms = sumDurationParts(text.trim())
  if (ms === undefined || ms > MAX_DURATION_SECONDS * 1000) {
    // The first sentence is the message of earlier versions, which scripts may match.
    throw new Error(
      'Expected a duration such as 250 (milliseconds), 250ms, 1.5s or 2m, ' +
        `up to 365 days (${MAX_DURATION_MINUTES}m). The units are ms, s, m, h and d, ` +
        'and several may follow each other from the largest, as in 2h07m.',
    )
  }
  return ms
}

/** Returns the milliseconds of a trimmed duration text, or undefined when it is not one. */
function sumDurationParts(text: string): number | undefined {
  if (/^(\d+(?:\.\d+)?|\.\d+)$/.test(text)) return roundToMicroseconds(Number(text))
  DURATION_PART.lastIndex = 0
  let total = 0
  let previousRank = -1
  while (DURATION_PART.lastIndex < text.length) {
    const match = DURATION_PART.exec(text)
    if (match === null) return undefined
    const unit = (match[2] as string).toLowerCase() as DurationUnit
    const rank = DURATION_UNIT_ORDER.indexOf(unit)
    // Each unit once, from the largest: `7m2h` and `1m1m` are more likely typing mistakes than durations.
    if (rank <= previousRank) return undefined
    previousRank = rank
    total += Number(match[1]) * DURATION_UNIT_MS[unit]
    while (text[DURATION_PART.lastIndex] === ' ') DURATION_PART.lastIndex++
  }
  return previousRank === -1 ? undefined : roundToMicroseconds(total)
}

/**
 * Returns a predicate for the live view's free-text filter: a task passes
 * when its path, client IP, method, status, recording host, Host header or
 * user agent contains the text, without regard to case. Text that
 * `parseStatusFilter` reads also passes the tasks whose status it matches,
 * as `--status` does. A class, a range or a list (`5xx`, `400-499`,
 * `404,410`) matches by status alone, because no one searches a path for
 * it. A single code (`404`) matches paths and addresses that contain it too,
 * since `127` or `500` may be part of an address or a path.
 */
export function createTextFilter(text: string): (task: HttpTask) => boolean {
  const wanted = text.toLowerCase()
  if (wanted === '') return () => true
  const status = tryParseStatusFilter(text)
  if (status !== undefined && !/^\s*\d{3}\s*$/.test(text)) {
    return (task) => matchStatus(status, getStatusCode(task))
  }
  return (task) => {
    const statusCode = getStatusCode(task)
    if (status !== undefined && matchStatus(status, statusCode)) return true
    return [
      task.path ?? task.uri,
      getOriginalIp(task),
      task.method,
      statusCode === undefined ? undefined : String(statusCode),
      task.host_name,
      getRequestHost(task),
      getUserAgent(task),
    ].some((value) => value != null && value.toLowerCase().includes(wanted))
  }
}

/**
 * Returns why `text`, written like a status filter, is not a valid one,
 * such as the reversed range `599-500` or the open range `200-`, or
 * undefined for any other text. Each comma-separated part must look like a
 * code, a class or a range of three-digit codes, so that a date
 * (`2024-01-05`) or a phone number (`555-1234`) gets no hint. The live
 * filter matches such text as text, which finds nothing, so the view shows
 * why.
 */
export function findStatusFilterMistake(text: string): string | undefined {
  const parts = text.split(',').map((part) => part.trim())
  if (!parts.every((part) => STATUS_LIKE_PART.test(part)) || !/[-xX,]/.test(text)) return undefined
  try {
    parseStatusFilter(text)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

/** A part of a status filter as a user writes one, valid or not: `404`, `5xx`, `400-499`, `599-500`, `200-`. */
const STATUS_LIKE_PART = /^(?:\d{3}|\d[xX]{2}|\d{3}-\d{0,3}|\d{0,3}-\d{3})$/

/** Returns the status filter parsed from `text`, or `undefined` when `text` is not one. */
function tryParseStatusFilter(text: string): StatusFilter | undefined {
  try {
    return parseStatusFilter(text)
  } catch {
    return undefined
  }
}
