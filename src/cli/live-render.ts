/**
 * Builds one frame of the live view as lines of text, sized to the
 * terminal: the title and meters, the recording processes, then the
 * tables, the route board, the detail pane or the help, and a footer.
 */
import type { HttpTask } from '../task/http-task'
import type { HeartbeatReport } from '../trackers/heartbeat'
import type { Column } from './columns'
import { renderDetailLines } from './detail'
import { findStatusFilterMistake } from './filters'
import { renderGrid } from './grid'
import {
  buildProcessRows,
  formatClock,
  PROCESS_COLUMNS,
  renderMeters,
  type SourceStatus,
  type StyledLine,
} from './live-header'
import type { ViewSettings } from './live-input'
import { planTables } from './live-layout'
import {
  activeRowStyle,
  buildRouteRows,
  createStateColumn,
  groupRows,
  orderActiveRows,
  orderCompletedRows,
  ROUTE_COLUMNS,
  type ActiveItem,
  type ActiveRow,
  type ActiveRowOrder,
  type RowMark,
  type Thresholds,
} from './live-tables'
import { sanitizeText } from '../util/sanitize'
import { describeSkipped } from './skipped'
import type { GroupFigures, WindowFigures } from './stats'
import { paint, type Colour } from './style'
import { renderTable } from './table'
import { cutToWidth, fitToWidth, textWidth, wrapWords } from './text-width'

const FOOTER_GAP = '  '

/**
 * Fewest rows the tables should get: two titles, two column headers and
 * three request rows. The meters and processes give way to them.
 */
const MIN_BODY_ROWS = 7

/** At most this share of the screen's rows shows recording processes. */
const PROCESS_ROWS_SHARE = 0.25

export const KEY_HELP: ReadonlyArray<readonly [string, string]> = [
  ['q, Ctrl-C', 'quit'],
  ['p', 'pause: freeze the screen, keep counting'],
  ['s', 'sort by the next column (the default order after the last)'],
  ['r', 'reverse the order'],
  ['/', 'filter by path, IP, method, status (404, 5xx, 400-499), host or user agent (Enter applies, Esc clears)'],
  ['h', 'group the active requests by host, by process, or not at all (groups with a STALLED request first)'],
  ['t', 'show the route board instead of the completed requests, or back'],
  ['Up, Down, PgUp, PgDn', 'select a request'],
  ['Home, End', 'select the first or the last request'],
  ['Enter', 'show every field of the selected request and a curl command; the arrows, PgUp, PgDn, Home and End scroll it, Esc closes it'],
  ['Esc', 'clear the selection, so that the tables follow new requests again, or else clear the filter'],
  ['?', 'show or close this help'],
]

const FOOTER_KEYS =
  'q quit  p pause  s sort  r reverse  / filter  h group  t routes  ↑↓ select  Enter detail  ? help'

/** The keys for an 80-column terminal, which cuts `FOOTER_KEYS` before the help key. */
const SHORT_FOOTER_KEYS = 'q quit  p pause  s sort  r rev  / filter  h group  t routes  ↑↓ Enter  ? help'

/** The keys of the record (detail) view. */
const DETAIL_FOOTER_KEYS = 'Esc close  ↑↓ PgUp PgDn Home End scroll  q quit'

/** Data the view shows, taken from the live state (or frozen while paused). */
export interface LiveData {
  nowMs: number
  active: ActiveItem[]
  completed: HttpTask[]
  figures: WindowFigures
  routes: Map<string, GroupFigures>
  /** Route of a method and path among the window's requests (`StatsWindow.routeOfPath`). */
  routeOfPath?: ((methodPath: string) => string | undefined) | undefined
  hosts: number
  processes: number
  heartbeats: HeartbeatReport
  /** Active tasks of each stale processor id prefix. */
  orphansByPrefix: Map<string, number>
  lastUpdateMs: number | undefined
  skipped: number
  skipReasons: string[]
  /** Messages of `task_updates` that could not be decoded, since the view started. */
  skippedUpdates: number
  updateSkipReasons: string[]
}

export interface FrameInput {
  data: LiveData
  settings: ViewSettings
  source: SourceStatus
  /** Tracker URL with its secrets masked. */
  trackerUrl: string
  /** Terminal width in columns, or `Infinity` when the output is not a terminal. */
  width: number
  /** Terminal height in lines, or `Infinity` when the output is not a terminal. */
  height: number
  activeColumns: readonly Column[]
  completedColumns: readonly Column[]
  /** Most completed tasks kept; a count that reaches it is shown with `+`. */
  completedLimit: number
  thresholds: Thresholds
  colour: boolean
  /** Whether keys are read, and so shown in the footer. */
  interactive: boolean
  /** Messages for the status line: read errors, reconnections, warnings. */
  notices: readonly StyledLine[]
}

/** One frame: its lines, and the selectable rows for the keys that act on them. */
export interface Frame {
  lines: string[]
  /** Returns the keys of the selectable rows, top to bottom. */
  listRowKeys(): string[]
  findTask(rowKey: string): HttpTask | undefined
  /** Returns the columns that `s` steps through, in order. */
  listSortColumns(): string[]
  pageSize: number
}

/** Returns the lines of one frame, none wider than `width` and at most `height` of them. */
export function renderLiveFrame(input: FrameInput): Frame {
  const bottom = renderFooter(input)
  const top = fitTopSections(input, bottom.length)
  const room = input.height - top.length - bottom.length
  const body = renderBody(input, room)
  const shown = body.lines.slice(0, Math.max(0, room))
  // On a terminal the footer sits on the last rows, as in top and htop.
  const padding = Number.isFinite(room) ? Array<string>(Math.max(0, room - shown.length)).fill('') : []
  const lines = [...top, ...shown, ...padding, ...bottom]
  return { ...body, lines: lines.slice(0, input.height) }
}

/**
 * Returns the title, the meters and the recording processes, leaving out
 * the processes and then the meters when the body would get fewer than
 * `MIN_BODY_ROWS` rows, so a short terminal still shows some requests.
 */
function fitTopSections(input: FrameInput, footerRows: number): string[] {
  const title = styleLine(renderTitle(input), 'reverse', input)
  const meters = renderMeters({
    figures: input.data.figures,
    hosts: input.data.hosts,
    processes: input.data.processes,
    active: input.data.active.length,
    source: input.source,
    lastUpdateMs: input.data.lastUpdateMs,
    nowMs: input.data.nowMs,
    width: input.width,
  }).map((line) => styleLine(line.text, line.colour, input))
  const candidates = [[title, ...meters, ...renderProcesses(input)], [title, ...meters], [title]]
  const fits = (top: string[]) => input.height - top.length - footerRows >= MIN_BODY_ROWS
  return candidates.find(fits) ?? [title]
}

function renderTitle(input: FrameInput): string {
  const paused = input.settings.paused ? '  PAUSED' : ''
  const url = sanitizeText(input.trackerUrl)
  return `web-top  ${url}  ${formatClock(input.data.nowMs)}${paused}`
}

function renderProcesses(input: FrameInput): string[] {
  const { heartbeats, orphansByPrefix, nowMs } = input.data
  const count = heartbeats.live.length + heartbeats.stalePrefixes.length
  if (count === 0) return []

  const rows = buildProcessRows(heartbeats, orphansByPrefix, nowMs)
  const maxRows = Number.isFinite(input.height)
    ? Math.max(1, Math.floor(input.height * PROCESS_ROWS_SHARE) - 2)
    : rows.length
  const cut = rows.length > maxRows
  // Gone processes leave entries behind that need a prune, so a table too
  // short for every row shows them before the live ones.
  const liveCount = heartbeats.live.length
  const ordered = cut ? [...rows.slice(liveCount), ...rows.slice(0, liveCount)] : rows
  const grid = renderGrid(PROCESS_COLUMNS, ordered.slice(0, maxRows), input.width, input.colour)
  const shown = cut ? `, ${maxRows} shown, gone first` : ''
  const gone = heartbeats.stalePrefixes.length
  const title = `Recording processes (${heartbeats.live.length} up, ${gone} gone${shown})`
  return [
    styleLine(title, 'bold', input),
    styleLine(grid.header, 'dim', input),
    ...grid.rows,
  ]
}

interface Body {
  lines: string[]
  listRowKeys(): string[]
  findTask(rowKey: string): HttpTask | undefined
  listSortColumns(): string[]
  pageSize: number
}

function renderBody(input: FrameInput, room: number): Body {
  const { settings } = input
  const empty = { listRowKeys: () => [], findTask: () => undefined, listSortColumns: () => [], pageSize: Math.max(1, room) }
  // A page of the help is the key lines between its title and its last line.
  if (settings.showHelp) return { ...empty, lines: renderHelp(input, room), pageSize: Math.max(1, room - 2) }
  if (settings.detail !== undefined) {
    // Completed rows have keys that start with `c:`, and a completed record may lack its end time.
    const completed = settings.selectedKey?.startsWith('c:') === true
    const detailLines = renderDetailLines(settings.detail, input.data.nowMs, input.width, completed)
    const scroll = Math.min(settings.detailScroll, Math.max(0, detailLines.length - room))
    settings.detailScroll = scroll
    return { ...empty, lines: detailLines.slice(scroll).map((line) => cutLine(line, input)) }
  }
  return renderTables(input, room)
}

function renderTables(input: FrameInput, room: number): Body {
  const { data, settings } = input
  const activeOrder = orderActiveRows(
    data.active,
    input.activeColumns,
    settings,
    input.thresholds,
    data.nowMs,
  )
  const completedRows = orderCompletedRows(data.completed, input.completedColumns, settings, data.nowMs)
  const showRoutes = settings.showRoutes
  const routeRows = showRoutes ? buildRouteRows(data.routes, data.active.map((item) => item.task), data.completed, data.routeOfPath) : []
  const lowerCount = showRoutes ? routeRows.length : completedRows.length

  // Without grouping the table shows a slice of the order, so only the rows
  // on screen are sorted. Grouping needs every row.
  const grouped = settings.grouping !== 'none'
  const activeEntries = grouped ? groupRows(activeOrder.all(), settings.grouping) : undefined
  const activeCount = activeEntries?.length ?? activeOrder.count
  const lowerSelected = !showRoutes && settings.selectedKey?.startsWith('c:') === true
  const plan = planTables(room, activeCount, lowerCount, lowerSelected)
  const { activeRows: activeRoom, lowerRows: lowerRoom } = plan
  const selectedIndex =
    activeEntries === undefined
      ? activeOrder.indexOf(settings.selectedKey)
      : activeEntries.findIndex((entry) => 'rowKey' in entry && entry.rowKey === settings.selectedKey)
  if (selectedIndex === -1 && !showRoutes) followEndedSelection(settings, completedRows)
  const activeStart = scrollStart(selectedIndex, activeRoom)
  const shownActive =
    activeEntries === undefined
      ? activeOrder.slice(activeStart, activeStart + activeRoom)
      : dropTrailingTitle(activeEntries.slice(activeStart, activeStart + activeRoom))

  const lines: string[] = []
  if (plan.active) {
    const activeTable = renderActiveTable(input, shownActive)
    lines.push(
      styleLine(activeTitle(input, activeOrder, data.active.length, shownActive, activeTable.columnNames), 'bold', input),
      ...activeTable.lines.slice(plan.headers ? 0 : 1),
    )
  }
  if (plan.lower && showRoutes) {
    const grid = renderGrid(ROUTE_COLUMNS, routeRows.slice(0, lowerRoom), input.width, input.colour)
    const seconds = Math.round(data.figures.windowMs / 1000)
    const title = sectionTitle(`Routes in the last ${seconds}s`, String(routeRows.length), lowerRoom, routeRows.length)
    lines.push(
      styleLine(title, 'bold', input),
      ...(plan.headers ? [styleLine(grid.header, 'dim', input)] : []),
      ...grid.rows,
    )
  } else if (plan.lower) {
    const completedIndex = completedRows.findIndex((row) => row.rowKey === settings.selectedKey)
    const completedStart = scrollStart(completedIndex, lowerRoom)
    const shown = completedRows.slice(completedStart, completedStart + lowerRoom)
    const table = renderTable(
      shown.map((row) => row.task),
      input.completedColumns,
      data.nowMs,
      {
        maxWidth: input.width,
        colour: input.colour,
        rowStyles: shown.map((row) => (row.rowKey === settings.selectedKey ? 'reverse' : undefined)),
      },
    )
    const count = describeCompletedCount(completedRows.length, data.completed.length, input.completedLimit)
    const title = sectionTitle('Completed HTTP responses', count, shown.length, completedRows.length)
    lines.push(
      styleLine(sortNote(title, input, input.completedColumns, table.columnNames), 'bold', input),
      ...(plan.headers ? [styleLine(table.header, 'dim', input)] : []),
      ...table.rows,
    )
  }

  // Every selectable row is needed only on a key press, so the full order
  // and the row look-up are built then, from this frame's data. Grouped
  // rows are selected in the order they are shown, group by group.
  let selectable: Array<{ rowKey: string; task: HttpTask }> | undefined
  const listActive = () =>
    activeEntries === undefined ? activeOrder.all() : activeEntries.filter((entry): entry is ActiveRow => 'rowKey' in entry)
  const listSelectable = () => (selectable ??= showRoutes ? listActive() : [...listActive(), ...completedRows])
  let tasks: Map<string, HttpTask> | undefined
  return {
    lines,
    listRowKeys: () => listSelectable().map((row) => row.rowKey),
    findTask: (rowKey) => {
      tasks ??= new Map(listSelectable().map((row) => [row.rowKey, row.task]))
      return tasks.get(rowKey)
    },
    listSortColumns: () => listSortColumns(input),
    pageSize: Math.max(1, activeRoom),
  }
}

/**
 * Moves the selection from an active request that has ended to its
 * completed row, so that Enter still opens it. Active rows are keyed
 * `a:<task key>`, completed rows `c:<task key>#<end time>`.
 */
function followEndedSelection(settings: ViewSettings, completedRows: ReadonlyArray<{ rowKey: string }>): void {
  const selected = settings.selectedKey
  if (selected === undefined || !selected.startsWith('a:')) return
  const completedPrefix = `c:${selected.slice(2)}#`
  const ended = completedRows.find((row) => row.rowKey.startsWith(completedPrefix))
  if (ended !== undefined) settings.selectedKey = ended.rowKey
}

/** Renders the active table's header and rows, and returns them with the names of the columns shown. */
function renderActiveTable(
  input: FrameInput,
  entries: ReadonlyArray<{ title: string } | ActiveRow>,
): { lines: string[]; columnNames: string[] } {
  const rows = entries.filter((entry): entry is ActiveRow => 'rowKey' in entry)
  const marks = new Map<HttpTask, RowMark>(rows.map((row) => [row.task, row.mark]))
  const table = renderTable(
    rows.map((row) => row.task),
    [createStateColumn(marks), ...input.activeColumns],
    input.data.nowMs,
    {
      maxWidth: input.width,
      colour: input.colour,
      rowStyles: rows.map((row) => activeRowStyle(row, row.rowKey === input.settings.selectedKey)),
    },
  )
  const lines = [styleLine(table.header, 'dim', input)]
  let next = 0
  for (const entry of entries) {
    if ('rowKey' in entry) lines.push(table.rows[next++] as string)
    // A group title contains a host name or process label from a record, which may contain escape sequences.
    else lines.push(styleLine(sanitizeText(entry.title), 'bold', input))
  }
  return { lines, columnNames: table.columnNames }
}

/** Returns an entry list without its last entry when that is a group title, which would have no row under it. */
function dropTrailingTitle(entries: Array<{ title: string } | ActiveRow>): Array<{ title: string } | ActiveRow> {
  const last = entries.at(-1)
  return last !== undefined && !('rowKey' in last) ? entries.slice(0, -1) : entries
}

/**
 * Returns the active table's title. Like the request count, the STALLED
 * count covers every request that matches the filter, on screen or not.
 */
function activeTitle(
  input: FrameInput,
  order: ActiveRowOrder,
  total: number,
  shown: ReadonlyArray<{ title: string } | ActiveRow>,
  shownColumnNames: readonly string[],
): string {
  const matching = order.count
  const rowsShown = shown.filter((entry) => 'rowKey' in entry).length
  const stalled = order.stalledCount
  const count = matching === total ? String(total) : `${matching} of ${total}`
  let title = sectionTitle('Active HTTP requests', count, rowsShown, matching)
  if (stalled > 0) title += `  ${stalled} STALLED`
  if (input.settings.grouping !== 'none') title += `  grouped by ${input.settings.grouping}`
  return sortNote(title, input, input.activeColumns, shownColumnNames)
}

/**
 * Adds the sort order to a table's title. A table without the sort column
 * among its columns keeps its own order, which only `r` reverses. A table
 * sorted by a column that the width left out adds `(hidden)`.
 */
function sortNote(
  title: string,
  input: FrameInput,
  columns: readonly Column[],
  shownColumnNames: readonly string[],
): string {
  const { sortColumn, sortReversed } = input.settings
  if (sortColumn === undefined || !columns.some((column) => column.name === sortColumn)) {
    return sortReversed ? `${title}  order reversed` : title
  }
  const hidden = shownColumnNames.includes(sortColumn) ? '' : ' (hidden)'
  return `${title}  sorted by ${sortColumn}${sortReversed ? ' (reversed)' : ''}${hidden}`
}

/**
 * Returns the completed table's count: like the active table's, `M of N`
 * under a filter. The view keeps only the newest `completedLimit`, and the
 * count of a full list states that.
 */
function describeCompletedCount(matching: number, total: number, completedLimit: number): string {
  const totalText = total >= completedLimit ? `newest ${total} kept` : String(total)
  if (matching === total) return totalText
  return total >= completedLimit ? `${matching} of the ${totalText}` : `${matching} of ${total}`
}

function sectionTitle(title: string, count: string, rowsShown: number, total: number): string {
  return rowsShown < total ? `${title} (${count}, ${rowsShown} shown)` : `${title} (${count})`
}

/**
 * Returns the columns that `s` steps through: the configured ones, Duration
 * first, shown or not. A column hidden because no request has a value
 * (Cty) is left out, unless the tables are sorted by it. The list does not
 * depend on what the screen shows, because sorting changes that: sorted by
 * Cty, the requests without a country come first and hide the column.
 */
function listSortColumns(input: FrameInput): string[] {
  const { settings, data } = input
  const columns = [...input.activeColumns, ...input.completedColumns]
  const names = [...new Set(columns.map((column) => column.name))]
  const hasValue = (column: Column) => {
    const filled = (task: HttpTask) => (column.value(task, data.nowMs) ?? '') !== ''
    return data.active.some((item) => filled(item.task)) || data.completed.some(filled)
  }
  const offered = names.filter((name) => {
    const column = columns.find((candidate) => candidate.name === name) as Column
    return name === settings.sortColumn || !column.hiddenWhenEmpty || hasValue(column)
  })
  // Duration first: it is what a top-like view is most often sorted by.
  return offered.includes('Duration') ? ['Duration', ...offered.filter((name) => name !== 'Duration')] : offered
}

/** Returns the first row to show so that the selected row (if any) is on screen. */
function scrollStart(selectedIndex: number, room: number): number {
  if (selectedIndex < 0 || !Number.isFinite(room) || room <= 0) return 0
  return Math.max(0, selectedIndex - room + 1)
}

/** Nouns of the notice of undecodable updates. */
const UPDATE_NOUNS = ['message on task_updates', 'messages on task_updates'] as const

/** Returns the status line (if any) and the key line, each one row cut to the width. */
function renderFooter(input: FrameInput): string[] {
  const lines: string[] = []
  const parts: StyledLine[] = [...input.notices]
  const { settings, data } = input
  if (settings.filterText !== '') {
    const mistake = findStatusFilterMistake(settings.filterText)
    const note = mistake === undefined ? '' : ` (${mistake.replace(/\.$/, '')}; matched as text)`
    parts.unshift({ text: `Filter: ${settings.filterText}${note}`, colour: 'yellow' })
  }
  // A selected row keeps its table scrolled to it, so new requests stay out of view until Esc.
  if (input.interactive && settings.selectedKey !== undefined && settings.detail === undefined) {
    parts.push({ text: 'Row selected, Esc to follow new requests' })
  }
  if (data.skipped > 0) parts.push({ text: describeSkipped(data.skipped, data.skipReasons), colour: 'yellow' })
  if (data.skippedUpdates > 0) {
    const text = describeSkipped(data.skippedUpdates, data.updateSkipReasons, UPDATE_NOUNS)
    parts.push({ text, colour: 'yellow' })
  }
  if (parts.length > 0) lines.push(joinParts(parts, input))

  if (!input.interactive) return lines
  if (settings.filterDraft !== undefined) {
    lines.push(cutLine(`Filter: ${sanitizeText(settings.filterDraft)}_  (Enter applies, Esc clears)`, input))
  } else if (settings.detail !== undefined) {
    lines.push(cutLine(DETAIL_FOOTER_KEYS, input))
  } else {
    const keys = textWidth(FOOTER_KEYS) <= input.width ? FOOTER_KEYS : SHORT_FOOTER_KEYS
    lines.push(cutLine(keys, input))
  }
  return lines
}

/**
 * Joins the status parts into one row, with `…` where the width cuts it,
 * so that a long read error never takes rows from the tables. The parts
 * keep their order, so a cut drops the last ones. Output that is not a
 * terminal has an infinite width and gets every part whole.
 */
function joinParts(parts: readonly StyledLine[], input: FrameInput): string {
  let row = ''
  let room = input.width
  for (const [index, part] of parts.entries()) {
    const piece = (index === 0 ? '' : FOOTER_GAP) + sanitizeText(part.text)
    const shown = cutToWidth(piece, room)
    row += paint(shown, part.colour, input.colour)
    if (shown !== piece) break
    room -= textWidth(shown)
  }
  return row
}

/**
 * Returns the help for `room` rows. Help longer than that shows a slice of
 * the keys from `settings.helpScroll`, with the lines shown in its title.
 */
function renderHelp(input: FrameInput, room: number): string[] {
  const keyLines = renderKeyHelp(input.width)
  if (!Number.isFinite(room) || keyLines.length + 3 <= room) {
    return [styleLine('Keys', 'bold', input), ...keyLines, '', cutLine('Press any other key to close the help; q quits.', input)]
  }
  const shown = Math.max(1, room - 2)
  const start = Math.min(input.settings.helpScroll, Math.max(0, keyLines.length - shown))
  input.settings.helpScroll = start
  const end = Math.min(keyLines.length, start + shown)
  return [
    styleLine(`Keys (lines ${start + 1}-${end} of ${keyLines.length})`, 'bold', input),
    ...keyLines.slice(start, end),
    cutLine('↑↓ PgUp PgDn Home End scroll, other keys close', input),
  ]
}

/** Narrowest room for a key's meaning beside the keys; on a narrower screen the meaning goes below them. */
const MIN_HELP_TEXT_WIDTH = 30

/**
 * Renders the lines of `KEY_HELP`, each meaning wrapped at spaces to
 * `width` columns, so that an 80-column terminal shows all of it.
 */
export function renderKeyHelp(width: number): string[] {
  const keysWidth = Math.max(...KEY_HELP.map(([keys]) => textWidth(keys)))
  const beside = width - keysWidth - 4 >= MIN_HELP_TEXT_WIDTH
  const indent = beside ? ' '.repeat(keysWidth + 4) : '    '
  const meaningWidth = Math.max(1, width - indent.length)
  const lines: string[] = []
  for (const [keys, meaning] of KEY_HELP) {
    const rows = wrapWords(meaning, meaningWidth)
    if (!beside) {
      lines.push(cutToWidth(`  ${keys}`, width), ...rows.map((row) => indent + row))
      continue
    }
    const [first = '', ...rest] = rows
    lines.push(`  ${fitToWidth(keys, keysWidth)}  ${first}`, ...rest.map((row) => indent + row))
  }
  return lines
}

function cutLine(text: string, input: FrameInput): string {
  return Number.isFinite(input.width) ? cutToWidth(text, input.width) : text
}

/** Cuts a line to the width and, for the reversed title on a terminal, pads it to the full width. */
function styleLine(
  text: string,
  style: 'reverse' | 'bold' | 'dim' | Colour | undefined,
  input: FrameInput,
): string {
  if (!Number.isFinite(input.width)) return paint(text, style, input.colour)
  const padded = input.colour && style === 'reverse'
  const fitted = padded ? fitToWidth(text, input.width) : cutToWidth(text, input.width)
  return paint(fitted, style, input.colour)
}
