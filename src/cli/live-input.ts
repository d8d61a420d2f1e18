/**
 * Keys of the live view: turns terminal input into key names and applies
 * each key to the view's settings (sort, filter, grouping, selection, panes).
 */
import { hasEnded, type HttpTask } from '../task/http-task'
import { getCompletedRowKey } from './live-tables'

/** Grouping of the active table: none, by recording host or by recording process. */
export type Grouping = 'none' | 'host' | 'process'

const GROUPINGS: readonly Grouping[] = ['none', 'host', 'process']

/** Settings the user chose on screen. */
export interface ViewSettings {
  /** The screen is frozen; updates are still counted. */
  paused: boolean
  /** Column the tables are sorted by; the default order when undefined. */
  sortColumn: string | undefined
  sortReversed: boolean
  /** The filter in force (`/`), empty for none. */
  filterText: string
  /** The filter being typed, until Enter or Esc. */
  filterDraft: string | undefined
  grouping: Grouping
  /** The route board replaces the completed table. */
  showRoutes: boolean
  showHelp: boolean
  /** Index of the first help line shown, when the help is longer than the screen. */
  helpScroll: number
  /**
   * The record shown in the detail pane. For an active request,
   * `followDetail` replaces it with each newer copy and with the completed
   * record once the request ends.
   */
  detail: HttpTask | undefined
  detailScroll: number
  /** Row key of the selected row, if any. */
  selectedKey: string | undefined
}

/** Facts about the screen that keys act on. */
export interface KeyContext {
  /** Keys of the selectable rows, top to bottom. */
  rowKeys: readonly string[]
  /** Returns the record of a row. */
  findTask(rowKey: string): HttpTask | undefined
  /** Columns `s` cycles through. */
  sortColumns: readonly string[]
  /** Rows moved by Page Up and Page Down. */
  pageSize: number
}

/**
 * Outcome of a key: `quit` ends the view, `suspend` stops the process for
 * the shell's job control, as Ctrl-Z does, and `changed` requests a redraw.
 */
export type KeyResult = 'quit' | 'suspend' | 'changed' | 'unchanged'

export function createViewSettings(): ViewSettings {
  return {
    paused: false,
    sortColumn: undefined,
    sortReversed: false,
    filterText: '',
    filterDraft: undefined,
    grouping: 'none',
    showRoutes: false,
    showHelp: false,
    helpScroll: 0,
    detail: undefined,
    detailScroll: 0,
    selectedKey: undefined,
  }
}

/**
 * Splits terminal input into keys: printable characters as they are, and
 * `up`, `down`, `left`, `right`, `pageup`, `pagedown`, `home`, `end`,
 * `enter`, `escape`, `backspace`, `tab`, `ctrl-c` and `ctrl-z`. Unknown escape
 * sequences are skipped whole.
 */
export function parseKeys(data: string): string[] {
  const keys: string[] = []
  let index = 0
  while (index < data.length) {
    const char = String.fromCodePoint(data.codePointAt(index) ?? 0)
    if (char !== '\x1b') {
      keys.push(nameOf(char))
      index += char.length
      continue
    }
    const sequence = readEscapeSequence(data, index)
    if (sequence.key !== undefined) keys.push(sequence.key)
    index = sequence.end
  }
  return keys
}

/** Applies one key to the settings. */
export function handleKey(settings: ViewSettings, key: string, context: KeyContext): KeyResult {
  if (key === 'ctrl-c') return 'quit'
  // Raw mode reads Ctrl-Z as a key, so the terminal sends no SIGTSTP.
  if (key === 'ctrl-z') return 'suspend'
  if (settings.filterDraft !== undefined) return editFilter(settings, key)
  if (settings.showHelp) return handleHelpKey(settings, key, context)
  if (settings.detail !== undefined) return handleDetailKey(settings, key, context)

  switch (key) {
    case 'q':
    case 'Q':
      return 'quit'
    case 'p':
      settings.paused = !settings.paused
      return 'changed'
    case 's':
      settings.sortColumn = nextSortColumn(settings.sortColumn, context.sortColumns)
      return 'changed'
    case 'r':
      settings.sortReversed = !settings.sortReversed
      return 'changed'
    case '/':
      settings.filterDraft = ''
      return 'changed'
    case 'h':
      settings.grouping = GROUPINGS[(GROUPINGS.indexOf(settings.grouping) + 1) % GROUPINGS.length] as Grouping
      return 'changed'
    case 't':
      settings.showRoutes = !settings.showRoutes
      return 'changed'
    case '?':
      settings.showHelp = true
      return 'changed'
    case 'escape':
      // The selection goes first, then the filter in force.
      if (settings.selectedKey !== undefined) settings.selectedKey = undefined
      else if (settings.filterText !== '') settings.filterText = ''
      else return 'unchanged'
      return 'changed'
    case 'enter':
      return openDetail(settings, context)
    default:
      return moveSelection(settings, key, context)
  }
}

function editFilter(settings: ViewSettings, key: string): KeyResult {
  const draft = settings.filterDraft ?? ''
  if (key === 'enter') {
    settings.filterText = draft.trim()
    settings.filterDraft = undefined
  } else if (key === 'escape') {
    settings.filterText = ''
    settings.filterDraft = undefined
  } else if (key === 'backspace') {
    settings.filterDraft = [...draft].slice(0, -1).join('')
  } else if ([...key].length === 1 && key >= ' ') {
    settings.filterDraft = draft + key
  } else {
    return 'unchanged'
  }
  return 'changed'
}

/** Scrolls the help with the arrows, PgUp, PgDn, Home and End. `q` quits, and any other key closes the help. */
function handleHelpKey(settings: ViewSettings, key: string, context: KeyContext): KeyResult {
  if (key === 'q') return 'quit'
  const step = findScrollStep(key, context.pageSize)
  if (step === undefined) {
    settings.showHelp = false
    settings.helpScroll = 0
    return 'changed'
  }
  // The render clamps the scroll to the help's length, which depends on the screen size.
  settings.helpScroll = Math.max(0, settings.helpScroll + step)
  return 'changed'
}

/** Scrolls the record with the arrows, PgUp, PgDn, Home and End. `q` quits, and Esc or Enter closes the record. */
function handleDetailKey(settings: ViewSettings, key: string, context: KeyContext): KeyResult {
  if (key === 'q') return 'quit'
  if (key === 'escape' || key === 'enter') {
    settings.detail = undefined
    settings.detailScroll = 0
    return 'changed'
  }
  const step = findScrollStep(key, context.pageSize)
  if (step === undefined) return 'unchanged'
  // The render clamps the scroll to the record's length, which depends on the screen size.
  settings.detailScroll = Math.max(0, settings.detailScroll + step)
  return 'changed'
}

function openDetail(settings: ViewSettings, context: KeyContext): KeyResult {
  const key = settings.selectedKey ?? context.rowKeys[0]
  const task = key === undefined ? undefined : context.findTask(key)
  if (task === undefined) return 'unchanged'
  settings.selectedKey = key
  settings.detail = task
  settings.detailScroll = 0
  return 'changed'
}

/**
 * Replaces the record in the detail pane of an active request with the
 * newest copy that `findLatestTask` returns for its task key. When that copy
 * has ended, the selection moves to its completed row (`c:<completed key>`),
 * as the table's selection does. A completed record stays as it is, and so
 * does the shown record when no copy is found. Returns whether the pane
 * changed.
 */
export function followDetail(
  settings: ViewSettings,
  findLatestTask: (taskKey: string) => HttpTask | undefined,
): boolean {
  const selected = settings.selectedKey
  if (settings.detail === undefined || selected === undefined || !selected.startsWith('a:')) return false
  const latest = findLatestTask(selected.slice(2))
  if (latest === undefined || latest === settings.detail) return false
  settings.detail = latest
  if (hasEnded(latest)) settings.selectedKey = getCompletedRowKey(latest)
  return true
}

/**
 * Returns the rows that a movement key moves by: one for the arrows, a page
 * for PgUp and PgDn, and an infinite step for Home and End, which callers
 * clamp to the first or last row. Returns undefined for other keys.
 */
function findScrollStep(key: string, pageSize: number): number | undefined {
  switch (key) {
    case 'up':
      return -1
    case 'down':
      return 1
    case 'pageup':
      return -pageSize
    case 'pagedown':
      return pageSize
    case 'home':
      return -Infinity
    case 'end':
      return Infinity
    default:
      return undefined
  }
}

function moveSelection(settings: ViewSettings, key: string, context: KeyContext): KeyResult {
  const step = findScrollStep(key, context.pageSize)
  const rows = context.rowKeys
  if (step === undefined || rows.length === 0) return 'unchanged'

  const current = settings.selectedKey === undefined ? -1 : rows.indexOf(settings.selectedKey)
  let next: number
  // With no row selected, every key but End selects the top row.
  if (current === -1) next = step === Infinity ? rows.length - 1 : 0
  // Home and End move by an infinite step, which the clamp turns into the first or last row.
  else next = Math.min(rows.length - 1, Math.max(0, current + step))
  settings.selectedKey = rows[next]
  return 'changed'
}

function nextSortColumn(current: string | undefined, columns: readonly string[]): string | undefined {
  if (columns.length === 0) return undefined
  if (current === undefined) return columns[0]
  const index = columns.indexOf(current)
  return index === -1 || index === columns.length - 1 ? undefined : columns[index + 1]
}

function readEscapeSequence(data: string, start: number): { key: string | undefined; end: number } {
  const next = data[start + 1]
  if (next === undefined || next === '\x1b') return { key: 'escape', end: start + 1 }
  if (next !== '[' && next !== 'O') return { key: 'escape', end: start + 1 }

  // CSI and SS3: parameters, then one final byte from @ to ~.
  let end = start + 2
  while (end < data.length && !/[@-~]/.test(data[end] as string)) end++
  const body = data.slice(start + 2, end + 1)
  return { key: ESCAPE_KEYS[body], end: end + 1 }
}

const ESCAPE_KEYS: Record<string, string> = {
  A: 'up',
  B: 'down',
  C: 'right',
  D: 'left',
  H: 'home',
  F: 'end',
  '1~': 'home',
  '4~': 'end',
  '5~': 'pageup',
  '6~': 'pagedown',
}

function nameOf(char: string): string {
  if (char === '\r' || char === '\n') return 'enter'
  if (char === '\x7f' || char === '\b') return 'backspace'
  if (char === '\x03') return 'ctrl-c'
  if (char === '\x1a') return 'ctrl-z'
  if (char === '\t') return 'tab'
  return char
}
