/**
 * The columns of the request tables: what each shows, how wide it may be and
 * how it is coloured. Names and defaults follow the Python web-top.
 */
import {
  getAgoMs,
  getResponseBodyLength,
  getCountry,
  getDurationMs,
  getOriginalIp,
  getProcessLabel,
  getRoute,
  getStatusCode,
  getUserAgent,
} from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { formatBytes, formatDuration, formatRequestDuration } from './format'
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
  /**
   * On a narrow terminal, the columns with a drop order are left out, the
   * lowest order first, before Path is cut. Columns without one stay.
   */
  dropOrder?: number | undefined
  /** Whether the column is left out when no row has a value in it. */
  hiddenWhenEmpty: boolean
  /**
   * End of a value too wide for the column that is cut: its end (the
   * default) or its start, for a value whose end distinguishes rows.
   */
  cutFrom?: 'end' | 'start'
  /** Returns the cell text, or `undefined` when the record has no value. */
  value(task: HttpTask, nowMs: number): string | undefined
  /** Returns the colour of the cell on a terminal. */
  colour?(task: HttpTask, nowMs: number): Colour | undefined
}

const fixed = { shrinkOrder: undefined, hiddenWhenEmpty: false } as const

/** Shrink order of Path: every other column that shrinks gives up its width first. */
export const PATH_SHRINK_ORDER = 3

/** Letters of a country code, which map to the regional indicator symbols of its flag. */
const COUNTRY_CODE = /^[A-Z]{2}$/
const REGIONAL_INDICATOR_A = 0x1f1e6

export const COLUMNS: readonly Column[] = [
  {
    name: 'Cty',
    align: 'left',
    minWidth: 2,
    maxWidth: 8,
    shrinkOrder: undefined,
    dropOrder: 6,
    hiddenWhenEmpty: true,
    value: (task) => formatCountry(getCountry(task)),
  },
  {
    name: 'IP',
    align: 'left',
    minWidth: 7,
    maxWidth: 39,
    ...fixed,
    dropOrder: 11,
    value: (task) => getOriginalIp(task),
  },
  {
    name: 'Host',
    align: 'left',
    minWidth: 6,
    maxWidth: 30,
    shrinkOrder: 2,
    dropOrder: 8,
    hiddenWhenEmpty: false,
    value: (task) => task.host_name ?? undefined,
  },
  {
    name: 'Process',
    align: 'left',
    minWidth: 6,
    maxWidth: 40,
    shrinkOrder: 2,
    dropOrder: 7,
    hiddenWhenEmpty: false,
    // `host/pid/thread`: the Host column shows the host, and the pid distinguishes the processes of a host.
    cutFrom: 'start',
    value: (task) => getProcessLabel(task),
  },
  {
    name: 'Worker',
    align: 'left',
    minWidth: 6,
    maxWidth: 24,
    shrinkOrder: 2,
    dropOrder: 5,
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
    name: 'Route',
    align: 'left',
    minWidth: 6,
    maxWidth: 40,
    shrinkOrder: 2,
    dropOrder: 9,
    hiddenWhenEmpty: false,
    value: (task) => getRoute(task),
  },
  {
    name: 'Path',
    align: 'left',
    minWidth: 8,
    maxWidth: 80,
    shrinkOrder: PATH_SHRINK_ORDER,
    hiddenWhenEmpty: false,
    value: (task) => task.path ?? task.uri ?? undefined,
  },
  {
    name: 'Duration',
    align: 'right',
    minWidth: 8,
    maxWidth: 8,
    ...fixed,
    value: (task, nowMs) => formatRequestDuration(getDurationMs(task, nowMs)),
    colour: (task, nowMs) => durationColour(getDurationMs(task, nowMs)),
  },
  {
    name: 'Ago',
    align: 'right',
    minWidth: 6,
    maxWidth: 8,
    ...fixed,
    dropOrder: 10,
    value: (task, nowMs) => formatDuration(getAgoMs(task, nowMs)),
  },
  {
    name: 'Resp',
    align: 'right',
    minWidth: 4,
    maxWidth: 4,
    ...fixed,
    value: (task) => getStatusCode(task)?.toString(),
    colour: (task) => statusColour(getStatusCode(task)),
  },
  {
    name: 'Status text',
    align: 'left',
    minWidth: 6,
    maxWidth: 32,
    shrinkOrder: 1,
    dropOrder: 4,
    hiddenWhenEmpty: false,
    value: (task) => task.status_message ?? undefined,
    colour: (task) => statusColour(getStatusCode(task)),
  },
  {
    name: 'Length',
    align: 'right',
    minWidth: 6,
    maxWidth: 10,
    ...fixed,
    dropOrder: 3,
    value: (task) => formatBytes(getResponseBodyLength(task)),
  },
  {
    name: 'Tags',
    align: 'left',
    minWidth: 8,
    maxWidth: 80,
    shrinkOrder: 1,
    dropOrder: 2,
    hiddenWhenEmpty: false,
    value: (task) => formatTags(task.tags),
  },
  {
    name: 'User agent',
    align: 'left',
    minWidth: 10,
    maxWidth: 200,
    shrinkOrder: 1,
    dropOrder: 1,
    hiddenWhenEmpty: false,
    value: (task) => getUserAgent(task),
  },
]

export const DEFAULT_ACTIVE_COLUMNS = 'Cty, IP, Worker, Method, Path, Duration, User agent'
export const DEFAULT_COMPLETED_COLUMNS =
  'Cty, IP, Method, Path, Duration, Ago, Resp, Length, User agent'
export const DEFAULT_RECENT_COLUMNS = DEFAULT_COMPLETED_COLUMNS

/**
 * Name of the column that `recent` and `live` put first by themselves,
 * shown when a row is marked (STALLED, slow or ORPHANED).
 */
export const STATE_COLUMN_NAME = 'State'

/**
 * Resolves a comma-separated list of column names. Names compare without
 * case, spaces, hyphens or underscores, so `user-agent` names `User agent`.
 * State is accepted and left out, because the tables add it by themselves.
 * Throws an `Error` naming the unknown column and listing the valid ones,
 * or naming a column listed twice.
 */
export function parseColumnList(list: string): Column[] {
  const listed = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  const names = listed.filter((name) => normalizeName(name) !== normalizeName(STATE_COLUMN_NAME))
  if (names.length === 0 && listed.length > 0) {
    throw new Error(
      `The list names no column but ${STATE_COLUMN_NAME}, which is added by itself when a row is STALLED, ` +
        `slow or ORPHANED. Valid columns: ${listColumnNames()}`,
    )
  }
  if (names.length === 0) {
    throw new Error(`The list names no column. Valid columns: ${listColumnNames()}`)
  }

  const columns = names.map((name) => {
    const normalizedName = normalizeName(name)
    const column = COLUMNS.find((candidate) => normalizeName(candidate.name) === normalizedName)
    if (column === undefined) {
      throw new Error(`Unknown column ${JSON.stringify(name)}. Valid columns: ${listColumnNames()}`)
    }
    return column
  })
  const repeated = columns.find((column, index) => columns.indexOf(column) !== index)
  if (repeated !== undefined) {
    throw new Error(`The column ${JSON.stringify(repeated.name)} is listed more than once; list each column once.`)
  }
  return columns
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

/**
 * Returns the flag and the code of a two-letter country (`🇫🇮 FI`); other
 * values, such as Cloudflare's `XX` and `T1`, are shown as they are.
 */
export function formatCountry(code: string | undefined): string | undefined {
  if (code === undefined) return undefined
  const upper = code.trim().toUpperCase()
  if (!COUNTRY_CODE.test(upper) || upper === 'XX') return code
  const flag = String.fromCodePoint(
    ...[...upper].map((letter) => REGIONAL_INDICATOR_A + letter.charCodeAt(0) - 65),
  )
  return `${flag} ${upper}`
}

/** Formats tags as `name=value` pairs, sorted by name, separated by commas. */
export function formatTags(tags: Record<string, string> | null | undefined): string | undefined {
  if (tags == null) return undefined
  const entries = Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  if (entries.length === 0) return undefined
  return entries.map(([name, value]) => `${name}=${value}`).join(',')
}

function listColumnNames(): string {
  return COLUMNS.map((column) => column.name).join(', ')
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '')
}
