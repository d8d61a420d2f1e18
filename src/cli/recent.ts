/**
 * The `recent` command: one table (or JSON) of the active requests, longest
 * running first, then the completed ones, most recent first. Active requests
 * of a process whose heartbeat expired are marked ORPHANED, as in `live`.
 */
import type { HttpTask } from '../task/http-task'
import type { Column } from './columns'
import { createTaskFilter, type TaskFilterOptions } from './filters'
import { CUT_NOTICE, stringifyForTerminal } from './json-output'
import { createStateColumn, type RowMark } from './live-tables'
import { describeOrphaned, describeWrongTypeHeartbeats, findOrphaned } from './orphans'
import type { TrackerOptions } from './options'
import { countCompletedSkipped, readTrackerOnce } from './read-once'
import { describeSkipped, describeWrongTypeKeys } from './skipped'
import { paint, shouldUseColour } from './style'
import { renderTable } from './table'
import { selectTasks, type TaskMode } from './task-order'
import { messageStream } from './standard-streams'

/** Most completed tasks read when no `--limit` is given. */
export const RECENT_COMPLETED_LIMIT = 10_000

/** Output formats: a table, one JSON array, or one JSON record per line. */
export type RecentFormat = 'table' | 'json' | 'ndjson'

export interface RecentOptions extends TrackerOptions {
  mode: TaskMode
  /** Most rows printed; all when undefined. */
  limit: number | undefined
  columns: readonly Column[]
  format: RecentFormat
  /** Only the tasks that pass these filters are printed (and counted toward the limit). */
  filter?: TaskFilterOptions | undefined
}

export interface RecentStreams {
  stdout: { isTTY?: boolean; columns?: number; write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/** The tasks that `recent` prints for one key prefix. */
export interface RecentRead {
  /** Active tasks first, then completed ones, filtered and limited. */
  tasks: HttpTask[]
  /** "N records skipped (...)" when the tracker could not decode some records. */
  skippedNotice: string | undefined
  /**
   * The active tasks among `tasks` whose recording process stopped without
   * removing them: its heartbeat expired. `live` marks them ORPHANED too.
   */
  orphaned: ReadonlySet<HttpTask>
  /** A note on heartbeat keys of the wrong type, from `describeWrongTypeHeartbeats`. */
  heartbeatNotice: string | undefined
  /** A note on other keys of the wrong type, such as `last_cleared_at`, from `describeWrongTypeKeys`. */
  wrongTypeKeyNotice: string | undefined
  /** Time of the read, in epoch milliseconds, against which durations are measured. */
  nowMs: number
  /** The tracker URL, password masked, as notices name it. */
  displayUrl: string
  /** A note that no app records under the key prefix, from `describeEmptyPrefix`. */
  emptyPrefixNotice: string | undefined
  /** A note that the tracker stores more completed requests than were read, from `describeUnreadCompleted`. */
  unreadNotice: string | undefined
}

/**
 * Reads the tracker once and prints the requests. Returns the exit code, and
 * throws a `CliError` when the tracker cannot be reached or read.
 */
export async function runRecent(
  options: RecentOptions,
  streams: RecentStreams = { stdout: process.stdout, stderr: messageStream },
): Promise<number> {
  const read = await readRecentTasks(options)
  let cut = false
  const onCut = () => {
    cut = true
  }
  let droppedNotice: string | undefined
  if (options.format === 'json') {
    streams.stdout.write(`${stringifyForTerminal(read.tasks, 2, onCut)}\n`)
  } else if (options.format === 'ndjson') {
    for (const task of read.tasks) streams.stdout.write(`${stringifyForTerminal(task, undefined, onCut)}\n`)
  } else {
    const colour = shouldUseColour(streams.stdout)
    // A terminal that reports no width (0 columns, as some `docker exec -t`
    // sessions do at first) counts as piped output: lines wrap, but no column is lost.
    const terminalWidth = streams.stdout.isTTY === true ? streams.stdout.columns : undefined
    const maxWidth = terminalWidth !== undefined && terminalWidth > 0 ? terminalWidth : Infinity
    const marks = new Map<HttpTask, RowMark>([...read.orphaned].map((task) => [task, 'ORPHANED']))
    const columns = [createStateColumn(marks), ...options.columns]
    const rowStyles = read.tasks.map((task) => (read.orphaned.has(task) ? 'magenta' : undefined))
    const table = renderTable(read.tasks, columns, read.nowMs, { maxWidth, colour, rowStyles })
    streams.stdout.write([paint(table.header, 'bold', colour), ...table.rows].join('\n') + '\n')
    droppedNotice = describeDroppedColumns(table.droppedColumnNames, maxWidth)
  }

  if (cut) streams.stderr.write(`web-top-cli: ${CUT_NOTICE}\n`)
  if (read.skippedNotice !== undefined) streams.stderr.write(`web-top-cli: ${read.skippedNotice}\n`)
  if (read.orphaned.size > 0) {
    const notice = describeOrphaned(read.orphaned.size, read.displayUrl, options.keyPrefix, options.trackerUrlFromEnvironment)
    streams.stderr.write(`web-top-cli: ${notice}\n`)
  }
  if (read.heartbeatNotice !== undefined) streams.stderr.write(`web-top-cli: ${read.heartbeatNotice}\n`)
  if (read.wrongTypeKeyNotice !== undefined) streams.stderr.write(`web-top-cli: ${read.wrongTypeKeyNotice}\n`)
  if (read.emptyPrefixNotice !== undefined) streams.stderr.write(`web-top-cli: ${read.emptyPrefixNotice}\n`)
  if (read.unreadNotice !== undefined) streams.stderr.write(`web-top-cli: ${read.unreadNotice}\n`)
  if (droppedNotice !== undefined) streams.stderr.write(`web-top-cli: ${droppedNotice}\n`)
  return 0
}

/**
 * Returns a note naming the columns that a terminal `maxWidth` columns wide
 * left out of the table, or undefined when none was. Columns hidden because
 * no row has a value are not among `dropped`.
 */
function describeDroppedColumns(dropped: readonly string[], maxWidth: number): string | undefined {
  if (dropped.length === 0) return undefined
  return (
    `the terminal is ${maxWidth} columns wide, so the table leaves out ${dropped.join(', ')}; ` +
    'widen the terminal or name fewer columns in --columns'
  )
}

/**
 * Reads the tracker once and returns the tasks to print. Throws a
 * `CliError` when the tracker cannot be reached or read.
 */
export async function readRecentTasks(options: RecentOptions): Promise<RecentRead> {
  const filtered = options.filter !== undefined && Object.values(options.filter).some((value) => value !== undefined)
  // With a filter, the limit counts matching tasks, so more have to be read.
  let completedLimit = options.limit ?? RECENT_COMPLETED_LIMIT
  if (filtered) completedLimit = Math.max(RECENT_COMPLETED_LIMIT, options.limit ?? 0)
  if (options.mode === 'active') completedLimit = 0
  // With a filter, --limit does not lower the read below RECENT_COMPLETED_LIMIT.
  const readLessAdvice = filtered ? undefined : `read fewer with a --limit below ${completedLimit}`
  const { snapshot, stalePrefixes, wrongTypeHeartbeats, emptyPrefixNotice, displayUrl, moreCompleted } = await readTrackerOnce(
    options,
    completedLimit,
    { readLessAdvice },
  )

  const nowMs = Date.now()
  const matches = createTaskFilter(options.filter ?? {})
  const selected = selectTasks(snapshot, options.mode).filter((task) => matches(task, nowMs))
  const tasks = options.limit === undefined ? selected : selected.slice(0, options.limit)
  const skippedNotice =
    snapshot.skipped > 0 ? describeSkipped(snapshot.skipped, snapshot.skipReasons) : undefined
  const printed = new Set(tasks)
  const orphaned = new Set([...findOrphaned(snapshot.active, stalePrefixes)].filter((task) => printed.has(task)))
  // Rows cut by --limit are the rows requested, so only a shorter listing gets the note.
  const limitReached = options.limit !== undefined && tasks.length >= options.limit
  const active = new Set(snapshot.active.values())
  const activeRows = selected.filter((task) => active.has(task)).length
  const unreadNotice =
    moreCompleted === undefined || limitReached
      ? undefined
      : describeUnreadCompleted({
          readCount: completedLimit,
          total: moreCompleted.total,
          filtered,
          activeRows,
          skipped: countCompletedSkipped(snapshot),
          printedCompleted: tasks.length - activeRows,
        })
  const heartbeatNotice = wrongTypeHeartbeats.length > 0 ? describeWrongTypeHeartbeats(wrongTypeHeartbeats) : undefined
  const wrongTypeKeyNotice = describeWrongTypeKeys(snapshot.wrongTypeKeys)
  return {
    tasks,
    skippedNotice,
    orphaned,
    heartbeatNotice,
    wrongTypeKeyNotice,
    nowMs,
    displayUrl,
    emptyPrefixNotice,
    unreadNotice,
  }
}

/** A read that left out the oldest completed requests, as `describeUnreadCompleted` reports it. */
interface UnreadCompleted {
  /** Completed records read, the skipped ones included. */
  readCount: number
  /** Completed requests the tracker stores, when it reports the number. */
  total: number | undefined
  /** Whether a filter chose the rows among those read. */
  filtered: boolean
  /** Active rows printed, which count toward --limit too. */
  activeRows: number
  /** Completed records read that could not be decoded. */
  skipped: number
  /** Completed rows printed. */
  printedCompleted: number
}

/**
 * Returns the note for a read that left out the oldest completed requests:
 * how many were read, of how many, and the --limit that reads them all.
 * When some records read were skipped, the note gives their number, and
 * without a filter the number of rows left, so that it claims no row that
 * was not printed.
 */
function describeUnreadCompleted(read: UnreadCompleted): string {
  const { readCount, total, filtered, activeRows, skipped, printedCompleted } = read
  const count = readCount.toLocaleString('en-US')
  const requests =
    total === undefined
      ? `the ${count} most recent completed requests`
      : `the ${count} most recent of ${total.toLocaleString('en-US')} completed requests`
  let note: string
  if (filtered) note = `searched ${requests}`
  else note = skipped > 0 ? `read ${requests}` : `showing ${requests}`
  if (skipped > 0) note += ` and skipped ${skipped.toLocaleString('en-US')} of them`
  if (skipped > 0 && !filtered) {
    const verb = printedCompleted === 1 ? 'is' : 'are'
    note += `, so ${printedCompleted.toLocaleString('en-US')} ${verb} shown`
  }
  if (total === undefined) {
    return `${note}, and the tracker stores more; pass a --limit above ${readCount + activeRows} to read more`
  }
  return `${note}; pass --limit ${total + activeRows} to read more`
}
