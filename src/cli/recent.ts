/**
 * The `recent` command: one table (or JSON) of the active requests, longest
 * running first, then the completed ones, most recent first.
 */
import type { Column } from './columns'
import { connectTracker, readTracker } from './connect'
import { escapeJsonForTerminal } from './sanitize'
import { describeSkipped } from './skipped'
import { paint, shouldUseColour } from './style'
import { renderTable } from './table'
import { selectTasks, type TaskMode } from './task-order'

/** Most completed tasks read when no `--limit` is given. */
export const RECENT_COMPLETED_LIMIT = 10_000

export interface RecentOptions {
  trackerUrl: string
  keyPrefix: string | undefined
  mode: TaskMode
  /** Most rows printed; all when undefined. */
  limit: number | undefined
  columns: readonly Column[]
  /** Prints the records as one JSON array instead of a table. */
  json: boolean
}

export interface RecentStreams {
  stdout: { isTTY?: boolean; columns?: number; write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/**
 * Reads the tracker once and prints the requests. Returns the exit code, and
 * throws a `CliError` when the tracker cannot be reached or read.
 */
export async function runRecent(
  options: RecentOptions,
  streams: RecentStreams = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix)
  const completedLimit = options.mode === 'active' ? 0 : (options.limit ?? RECENT_COMPLETED_LIMIT)
  let snapshot
  try {
    snapshot = await readTracker(connection, completedLimit)
  } finally {
    await connection.close()
  }

  const tasks = selectTasks(snapshot, options.mode, options.limit)
  if (options.json) {
    streams.stdout.write(`${escapeJsonForTerminal(JSON.stringify(tasks, null, 2))}\n`)
  } else {
    const colour = shouldUseColour(streams.stdout)
    const maxWidth = streams.stdout.isTTY === true ? (streams.stdout.columns ?? 80) : Infinity
    const table = renderTable(tasks, options.columns, Date.now(), { maxWidth, colour })
    streams.stdout.write([paint(table.header, 'bold', colour), ...table.rows].join('\n') + '\n')
  }

  if (snapshot.skipped > 0) {
    const notice = describeSkipped(snapshot.skipped, snapshot.skipReasons)
    streams.stderr.write(`web-top-cli: ${notice}\n`)
  }
  return 0
}
