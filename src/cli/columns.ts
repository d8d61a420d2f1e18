/**
 * The columns of the request tables: what each shows, how wide it may be and
 * how it is coloured. Names and defaults follow the Python web-top.
 */
import {
  getAgoMs,
  getContentLength,
  getCountry,
  getDurationMs,
  getOriginalIp,
  getUserAgent,
} from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { formatBytes, formatDuration } from './format'
import type { Colour } from './style'

/** A duration below this many milliseconds is shown green. */
export const FAST_DURATION_MS = 1_000
/** Durations from `FAST_DURATION_MS` up to this many milliseconds are yellow, longer ones red. */
export const SLOW_DURATION_MS = 5_000

export interface Column {
  /** Name in the table header and on the command line. */
  name: string
  align: 'left' | 'right'
  /** Narrowest width the column shrinks to when the terminal is too narrow. */
  minWidth: number
  /** Widest the column grows on a terminal; unlimited when the output is not a terminal. */
  maxWidth: number
  /**
   * When a row does not fit, the columns with a shrink order give up width,
   * the lowest order first, each down to its `minWidth`. Columns without one keep their width.
   */
  shrinkOrder: number | undefined
  /** Whether the column is left out when no row has a value in it. */
  hiddenWhenEmpty: boolean
  /** Returns the cell text, or `undefined` when the record has no value. */
  value(task: HttpTask, nowMs: number): string | undefined
  /** Returns the colour of the cell on a terminal. */
  colour?(task: HttpTask, nowMs: number): Colour | undefined
}

const fixed = { shrinkOrder: undefined, hiddenWhenEmpty: false } as const

export const COLUMNS: readonly Column[] = [
  {
    name: 'Cty',
    align: 'left',
    minWidth: 3,
    maxWidth: 3,
    shrinkOrder: undefined,
    hiddenWhenEmpty: true,
    value: (task) => getCountry(task),
  },
  {
    name: 'IP',
    align: 'left',
    minWidth: 7,
    maxWidth: 39,
    ...fixed,
    value: (task) => getOriginalIp(task),
  },
  {
    name: 'Worker',
    align: 'left',
    minWidth: 6,
    maxWidth: 24,
    shrinkOrder: 2,
    hiddenWhenEmpty: false,
    value: (task) => task.processor_name ?? undefined,
  },
  {
    name: 'Method',
    align: 'left',
    minWidth: 6,
    maxWidth: 10,
    ...fixed,
    value: (task) => task.method ?? undefined,
  },
  {
    name: 'Path',
    align: 'left',
    minWidth: 8,
    maxWidth: 80,
    shrinkOrder: 3,
    hiddenWhenEmpty: false,
    value: (task) => task.path ?? task.uri ?? undefined,
  },
  {
    name: 'Duration',
    align: 'right',
    minWidth: 8,
    maxWidth: 8,
    ...fixed,
    value: (task, nowMs) => formatDuration(getDurationMs(task, nowMs)),
    colour: (task, nowMs) => durationColour(getDurationMs(task, nowMs)),
  },
  {
    name: 'Ago',
    align: 'right',
    minWidth: 6,
    maxWidth: 7,
    ...fixed,
    value: (task, nowMs) => formatDuration(getAgoMs(task, nowMs)),
  },
  {
    name: 'Resp',
    align: 'right',
    minWidth: 4,
    maxWidth: 4,
    ...fixed,
    value: (task) => (task.status_code == null ? undefined : String(task.status_code)),
    colour: (task) => statusColour(task.status_code),
  },
  {
    name: 'Length',
    align: 'right',
    minWidth: 6,
    maxWidth: 10,
    ...fixed,
    value: (task) => formatBytes(getContentLength(task)),
  },
  {
    name: 'User agent',
    align: 'left',
    minWidth: 10,
    maxWidth: 200,
    shrinkOrder: 1,
    hiddenWhenEmpty: false,
    value: (task) => getUserAgent(task),
  },
]

export const DEFAULT_ACTIVE_COLUMNS = 'Cty, IP, Worker, Method, Path, Duration, User agent'
export const DEFAULT_COMPLETED_COLUMNS =
  'Cty, IP, Method, Path, Duration, Ago, Resp, Length, User agent'
export const DEFAULT_RECENT_COLUMNS = DEFAULT_COMPLETED_COLUMNS

/**
 * Resolves a comma-separated list of column names. Names compare without
 * case, spaces, hyphens or underscores, so `user-agent` names `User agent`.
 * Throws an `Error` naming the unknown column and listing the valid ones.
 */
export function parseColumnList(list: string): Column[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  if (names.length === 0) {
    throw new Error(`The list names no column. Valid columns: ${listColumnNames()}`)
  }

  return names.map((name) => {
    const normalizedName = normalizeName(name)
    const column = COLUMNS.find((candidate) => normalizeName(candidate.name) === normalizedName)
    if (column === undefined) {
      throw new Error(`Unknown column ${JSON.stringify(name)}. Valid columns: ${listColumnNames()}`)
    }
    return column
  })
}

/** Returns the colour of a duration: green when fast, yellow when slow, red beyond. */
export function durationColour(ms: number | undefined): Colour | undefined {
  if (ms === undefined) return undefined
  if (ms < FAST_DURATION_MS) return 'green'
  return ms < SLOW_DURATION_MS ? 'yellow' : 'red'
}

/** Returns the colour of an HTTP status: 2xx green, 3xx cyan, 4xx yellow, 5xx red. */
export function statusColour(status: number | null | undefined): Colour | undefined {
  if (status == null) return undefined
  if (status >= 200 && status < 300) return 'green'
  if (status >= 300 && status < 400) return 'cyan'
  if (status >= 400 && status < 500) return 'yellow'
  if (status >= 500 && status < 600) return 'red'
  return 'magenta'
}

function listColumnNames(): string {
  return COLUMNS.map((column) => column.name).join(', ')
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '')
}
