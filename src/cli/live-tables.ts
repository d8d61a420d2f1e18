/**
 * The request tables of the live view: which rows the active and completed
 * tables show, in which order, with which marks, and the route board.
 */
import {
  getAgoMs,
  getCompletedKey,
  getResponseBodyLength,
  getDurationMs,
  getProcessName,
  getRoute,
  getTaskKey,
} from '../task/derived'
import { hasEnded, type HttpTask } from '../task/http-task'
import { isBeyondClockSkew, parseIsoTime } from '../task/time'
import { STATE_COLUMN_NAME, type Column } from './columns'
import { createTextFilter } from './filters'
import type { GridCell, GridColumn } from './grid'
import { formatLatency, formatShare } from './live-header'
import type { Grouping } from './live-input'
import type { GroupFigures } from './stats'
import { getMethodPathKey, UNKNOWN_ROUTE } from './stats'
import { selectFirst } from './select-first'
import type { Attribute, Colour } from './style'

/** Returns the row key of a completed task in the live view: `c:<task key>#<end time>`. */
export function getCompletedRowKey(task: HttpTask): string {
  return `c:${getCompletedKey(task)}`
}

/** Marks of an active request that needs attention. */
export type RowMark = 'STALLED' | 'ORPHANED' | 'slow' | undefined

/** An active request as the table shows it. */
export interface ActiveRow {
  rowKey: string
  task: HttpTask
  mark: RowMark
}

/** An active task as the view keeps it. */
export interface ActiveItem {
  task: HttpTask
  orphaned: boolean
  /** `readRecordFacts(task)`, when the caller has it, so that the table does not look it up again. */
  facts?: RecordFacts
}

export interface RowOrder {
  sortColumn: string | undefined
  sortReversed: boolean
  filterText: string
}

export interface Thresholds {
  slowAfterMs: number
  stallAfterMs: number
}

/**
 * Returns the active rows to show: filtered, sorted (the longest running
 * first by default), stalled requests pinned at the top.
 */
export function orderActiveRows(
  items: readonly ActiveItem[],
  columns: readonly Column[],
  order: RowOrder,
  thresholds: Thresholds,
  nowMs: number,
): ActiveRowOrder {
  return new ActiveRowOrder(items, columns, order, thresholds, nowMs)
}

/**
 * `slice` sorts every row only when its end is at least this share of the
 * rows. Below it, a heap selection of the rows up to the end costs fewer
 * comparisons than a full sort.
 */
const FULL_SORT_SHARE = 0.25

/**
 * The active rows that match the filter, in the order of the table:
 * stalled requests first, then by the sort key (reversed with
 * `sortReversed`), and rows with equal keys in the order of the items. The
 * order is computed on request: `slice` selects only the rows up to its
 * end, and the full order is sorted on the first call of `all()`.
 */
export class ActiveRowOrder {
  readonly #tasks: HttpTask[] = []
  readonly #marks: RowMark[] = []
  /** Compares two positions in `#tasks`. It is a strict total order, because ties fall back to the position. */
  readonly #compare: (a: number, b: number) => number
  #all: ActiveRow[] | undefined

  constructor(
    items: readonly ActiveItem[],
    columns: readonly Column[],
    order: RowOrder,
    thresholds: Thresholds,
    nowMs: number,
  ) {
    const matches = createTextFilter(order.filterText)
    const sortKey = createSortKey(order.sortColumn, columns, nowMs)
    const tasks = this.#tasks
    const marks = this.#marks
    const keys: SortKey[] = []
    for (const item of items) {
      const { task } = item
      if (!matches(task)) continue
      // One look-up of the record's facts serves both the mark and the default order.
      const startMs = (item.facts ?? readRecordFacts(task)).startMs
      tasks.push(task)
      marks.push(markOf(item, durationSince(task, startMs, nowMs), thresholds))
      keys.push(sortKey === undefined ? startKeyOf(startMs) : sortKey(task))
    }
    const direction = order.sortReversed ? -1 : 1
    this.#compare = (a, b) => {
      const pinned = Number(marks[b] === 'STALLED') - Number(marks[a] === 'STALLED')
      if (pinned !== 0) return pinned
      return compareSortKeys(keys[a], keys[b], direction) || a - b
    }
  }

  /** Number of rows: the active tasks that match the filter. */
  get count(): number {
    return this.#tasks.length
  }

  /** Number of rows marked STALLED, on screen or not. */
  get stalledCount(): number {
    return this.#marks.filter((mark) => mark === 'STALLED').length
  }

  /** Returns the rows at positions `start` up to `end` (exclusive) of the order. */
  slice(start: number, end: number): ActiveRow[] {
    const last = Math.min(end, this.count)
    if (start >= last) return []
    if (this.#all !== undefined || last >= this.count * FULL_SORT_SHARE) return this.all().slice(start, last)
    return selectFirst(this.count, last, this.#compare)
      .slice(start)
      .map((position) => this.#row(position))
  }

  /** Returns the position in the order of the row with `rowKey`, or -1 when no row has it. */
  indexOf(rowKey: string | undefined): number {
    if (rowKey === undefined) return -1
    if (this.#all !== undefined) return this.#all.findIndex((row) => row.rowKey === rowKey)
    const position = this.#tasks.findIndex((task) => readActiveRowKey(task) === rowKey)
    if (position === -1) return -1
    let rowsBefore = 0
    for (let other = 0; other < this.#tasks.length; other++) {
      if (this.#compare(other, position) < 0) rowsBefore++
    }
    return rowsBefore
  }

  /** Returns every row in order. */
  all(): ActiveRow[] {
    if (this.#all === undefined) {
      const positions = Array.from({ length: this.count }, (_, position) => position)
      this.#all = positions.sort(this.#compare).map((position) => this.#row(position))
    }
    return this.#all
  }

  #row(position: number): ActiveRow {
    const task = this.#tasks[position] as HttpTask
    return { rowKey: readActiveRowKey(task), task, mark: this.#marks[position] }
  }
}

/**
 * Returns the completed rows to show: filtered, most recent first unless
 * sorted by a column. Rows with equal sort keys stay most recent first.
 */
export function orderCompletedRows(
  tasks: readonly HttpTask[],
  columns: readonly Column[],
  order: RowOrder,
  nowMs: number,
): Array<{ rowKey: string; task: HttpTask }> {
  const matches = createTextFilter(order.filterText)
  const rows = tasks
    .filter((task) => matches(task))
    .map((task) => ({ rowKey: getCompletedRowKey(task), task }))
  const sortKey = createSortKey(order.sortColumn, columns, nowMs)
  if (sortKey === undefined) {
    if (order.sortReversed) rows.reverse()
    return rows
  }
  const direction = order.sortReversed ? -1 : 1
  const keyed = rows.map((row) => ({ row, key: sortKey(row.task) }))
  keyed.sort((a, b) => compareSortKeys(a.key, b.key, direction))
  return keyed.map((entry) => entry.row)
}

/** Returns the name of the group a row belongs to, or undefined when rows are not grouped. */
export function groupOf(task: HttpTask, grouping: Grouping): string | undefined {
  if (grouping === 'host') return task.host_name ?? '(no host)'
  if (grouping === 'process') return getProcessName(task) ?? '(no process)'
  return undefined
}

/**
 * Orders rows by group, keeping their order inside each group, and returns
 * them with the title of each group before its first row. Groups with a
 * STALLED row come first, so that stalled requests stay pinned on top as
 * they are without grouping. Groups are otherwise sorted by name.
 */
export function groupRows<T extends { task: HttpTask; mark?: RowMark }>(
  rows: readonly T[],
  grouping: Grouping,
): Array<{ title: string } | T> {
  if (grouping === 'none') return [...rows]
  const groups = new Map<string, T[]>()
  for (const row of rows) {
    const name = groupOf(row.task, grouping) as string
    const members = groups.get(name)
    if (members === undefined) groups.set(name, [row])
    else members.push(row)
  }
  const hasStalled = (name: string) => (groups.get(name) as T[]).some((row) => row.mark === 'STALLED')
  const names = [...groups.keys()].sort((a, b) => Number(hasStalled(b)) - Number(hasStalled(a)) || compareNames(a, b))
  return names.flatMap((name) => {
    const members = groups.get(name) as T[]
    return [{ title: `${grouping === 'host' ? 'Host' : 'Process'} ${name} (${members.length})` }, ...members]
  })
}

function compareNames(a: string, b: string): number {
  if (a === b) return 0
  return a < b ? -1 : 1
}

/** The State column of the active table: shown only when some row has a mark. */
export const STATE_COLUMN: Column = {
  name: STATE_COLUMN_NAME,
  align: 'left',
  minWidth: 5,
  maxWidth: 8,
  shrinkOrder: undefined,
  hiddenWhenEmpty: true,
  value: () => undefined,
}

/** Returns the State column for a set of rows: their marks, coloured. */
export function createStateColumn(marks: ReadonlyMap<HttpTask, RowMark>): Column {
  return {
    ...STATE_COLUMN,
    value: (task) => marks.get(task),
    colour: (task) => (marks.get(task) === 'slow' ? 'yellow' : 'red'),
  }
}

/** Returns the style of an active row: reversed when selected, red when slow or stalled. */
export function activeRowStyle(row: ActiveRow, selected: boolean): Colour | Attribute | undefined {
  if (selected) return 'reverse'
  if (row.mark === 'ORPHANED') return 'magenta'
  return row.mark === undefined ? undefined : 'red'
}

export const ROUTE_COLUMNS: readonly GridColumn[] = [
  { name: 'Route', align: 'left', maxWidth: 48 },
  { name: 'In flight', align: 'right', maxWidth: 9 },
  { name: 'Req/s', align: 'right', maxWidth: 8 },
  { name: 'p50', align: 'right', maxWidth: 8 },
  { name: 'p95', align: 'right', maxWidth: 8 },
  { name: 'p99', align: 'right', maxWidth: 8 },
  { name: '5xx', align: 'right', maxWidth: 6 },
  { name: '4xx', align: 'right', maxWidth: 6 },
  { name: 'Count', align: 'right', maxWidth: 8 },
]

/** Row of the route board for requests in flight whose route is not known yet. */
export const PENDING_ROUTE = '(route not known yet)'

/**
 * Returns one row per route pattern seen in the window or in flight, the
 * busiest first: in-flight count, rate, percentiles and error shares.
 * Express names the route of a request only once routing is done. So an
 * active request without a route counts under the route of a completed
 * request with the same method and path, found by `routeOfPath` among the
 * window's requests or else in `completed`, and otherwise under
 * `PENDING_ROUTE`. That keeps it apart from the completed requests without
 * a route (404s).
 */
export function buildRouteRows(
  routes: ReadonlyMap<string, GroupFigures>,
  active: readonly HttpTask[],
  completed: readonly HttpTask[] = [],
  routeOfPath: (methodPath: string) => string | undefined = () => undefined,
): GridCell[][] {
  let knownRoutes: Map<string, string> | undefined
  const inFlight = new Map<string, number>()
  for (const task of active) {
    let route = getRoute(task)
    if (route === undefined) {
      const methodPath = getMethodPathKey(task)
      route = routeOfPath(methodPath)
      if (route === undefined) {
        knownRoutes ??= mapPathsToRoutes(completed)
        route = knownRoutes.get(methodPath) ?? PENDING_ROUTE
      }
    }
    inFlight.set(route, (inFlight.get(route) ?? 0) + 1)
  }
  const names = new Set([...routes.keys(), ...inFlight.keys()])
  const entries = [...names].map((name) => ({ name, figures: routes.get(name), inFlight: inFlight.get(name) ?? 0 }))
  entries.sort(
    (a, b) =>
      (b.figures?.count ?? 0) - (a.figures?.count ?? 0) ||
      b.inFlight - a.inFlight ||
      (a.name < b.name ? -1 : 1),
  )
  return entries.map(({ name, figures, inFlight: count }) => [
    { text: name },
    { text: String(count) },
    { text: figures === undefined ? '-' : figures.ratePerSecond.toFixed(2) },
    { text: formatLatency(figures?.p50Ms) },
    { text: formatLatency(figures?.p95Ms) },
    { text: formatLatency(figures?.p99Ms) },
    {
      text: formatShare(figures?.serverErrorRate),
      colour: (figures?.serverErrorRate ?? 0) > 0 ? 'red' : undefined,
    },
    { text: formatShare(figures?.clientErrorRate) },
    { text: String(figures?.count ?? 0) },
  ])
}

/** Facts about a record that every frame needs for each active row. */
export interface RecordFacts {
  rowKey: string
  /** Start time in epoch ms, `NaN` when unreadable. */
  startMs: number
  /** `getProcessName` of the record (host and pid), for the header's count of processes. */
  processName: string | undefined
}

/**
 * Facts by record. The live view sorts and marks every active task on each
 * frame, and between two reads the records are the same objects, so each
 * start time is parsed and each row key built once.
 */
const recordFacts = new WeakMap<HttpTask, RecordFacts>()

/** Returns the facts of a record, built once per record object. */
export function readRecordFacts(task: HttpTask): RecordFacts {
  let facts = recordFacts.get(task)
  if (facts === undefined) {
    facts = {
      rowKey: `a:${getTaskKey(task)}`,
      startMs: parseIsoTime(task.started_at) ?? Number.NaN,
      processName: getProcessName(task),
    }
    recordFacts.set(task, facts)
  }
  return facts
}

function readActiveRowKey(task: HttpTask): string {
  return readRecordFacts(task).rowKey
}

function readStartMs(task: HttpTask): number {
  return readRecordFacts(task).startMs
}

/** Returns how long an active task has run, from its cached start time. */
function readDurationMs(task: HttpTask, nowMs: number): number | undefined {
  return durationSince(task, readStartMs(task), nowMs)
}

/** Returns how long a task has run, given its start time in epoch ms (`NaN` when unreadable). */
function durationSince(task: HttpTask, startMs: number, nowMs: number): number | undefined {
  if (hasEnded(task)) return getDurationMs(task, nowMs)
  if (Number.isNaN(startMs) || isBeyondClockSkew(startMs, nowMs)) return undefined
  return Math.max(0, nowMs - startMs)
}

function markOf(item: ActiveItem, durationMs: number | undefined, thresholds: Thresholds): RowMark {
  if (item.orphaned) return 'ORPHANED'
  const duration = durationMs ?? 0
  if (duration >= thresholds.stallAfterMs) return 'STALLED'
  return duration >= thresholds.slowAfterMs ? 'slow' : undefined
}

/** Returns the default order's key: the start time, with unreadable ones last. */
function startKeyOf(startMs: number): number {
  return Number.isNaN(startMs) ? Number.POSITIVE_INFINITY : startMs
}

/** A row's sort key. Undefined is an unknown duration, which sorts last in either direction. */
type SortKey = number | string | undefined

/**
 * Order of text cells: digit runs compare as numbers, so `10.0.0.9` comes
 * before `10.0.0.10`, `node:9` before `node:10` and `/users/9` before
 * `/users/10`.
 */
const TEXT_ORDER = new Intl.Collator(undefined, { numeric: true })

/** Compares two sort keys, `direction` -1 for the reversed order. Equal keys return 0. */
function compareSortKeys(a: SortKey, b: SortKey, direction: 1 | -1): number {
  if (a === undefined || b === undefined) return Number(a === undefined) - Number(b === undefined)
  if (typeof a === 'string' && typeof b === 'string') return direction * TEXT_ORDER.compare(a, b)
  if (a === b) return 0
  return direction * (a < b ? -1 : 1)
}

/**
 * Returns the sort key of a column, read once per row before sorting:
 * numbers for measured columns, the cell text otherwise. Duration sorts
 * the longest first, as top does, so its key is negated. An unknown
 * duration has no key, so it stays after the known ones in either
 * direction. The other numbers sort the smallest first, and a missing
 * value counts as -1.
 */
function createSortKey(
  name: string | undefined,
  columns: readonly Column[],
  nowMs: number,
): ((task: HttpTask) => SortKey) | undefined {
  if (name === undefined) return undefined
  const numeric: Record<string, (task: HttpTask) => number | undefined> = {
    Ago: (task) => getAgoMs(task, nowMs),
    Resp: (task) => task.status_code ?? undefined,
    Length: (task) => getResponseBodyLength(task),
  }
  if (name === 'Duration') {
    return (task) => {
      const durationMs = readDurationMs(task, nowMs)
      return durationMs === undefined ? undefined : -durationMs
    }
  }
  const measure = numeric[name]
  if (measure !== undefined) return (task) => measure(task) ?? -1
  const column = columns.find((candidate) => candidate.name === name)
  if (column === undefined) return undefined
  return (task) => column.value(task, nowMs) ?? ''
}

/** Maps `METHOD path` of completed requests to their route, the newest first. */
function mapPathsToRoutes(completed: readonly HttpTask[]): Map<string, string> {
  const routes = new Map<string, string>()
  for (const task of completed) {
    const route = getRoute(task)
    const key = getMethodPathKey(task)
    if (route !== undefined && !routes.has(key)) routes.set(key, route)
  }
  return routes
}
