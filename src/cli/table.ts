/**
 * Lays out and renders a table of tasks as plain lines. Column widths are
 * display widths. When the room is short, the columns with a shrink order
 * give up width first, and no line is wider than the room, so rows never wrap.
 */
import type { HttpTask } from '../task/http-task'
import { PATH_SHRINK_ORDER, type Column } from './columns'
import { sanitizeText } from '../util/sanitize'
import { paint, type Attribute, type Colour } from './style'
import { charWidth, ELLIPSIS, fitToWidth, isRegionalIndicator, textWidth } from './text-width'

/** Columns between two cells. */
const GAP = '  '

/** Maximum length kept of one field before it is measured, so a huge record costs little. */
const MAX_FIELD_LENGTH = 4096

/**
 * Share of the line down to which Path narrows before any column is left
 * out. Above it, a long path would push out IP, Worker and User agent.
 */
const PATH_MAX_SHARE = 0.4

/** Shown in a cell whose record has no value. */
export const MISSING_VALUE = '-'

export interface Cell {
  text: string
  colour: Colour | undefined
}

export interface TableOptions {
  /** Widest a line may be, in columns; `Infinity` for no limit. */
  maxWidth: number
  /** Whether to colour cells. */
  colour: boolean
  /**
   * A style for the whole line of each task, by index, such as `red` for a
   * slow request or `reverse` for the selected row. It replaces the cell colours.
   */
  rowStyles?: ReadonlyArray<Colour | Attribute | undefined> | undefined
}

/** A table ready to print: the header line (never coloured) and one line per task. */
export interface RenderedTable {
  header: string
  rows: string[]
  /** Names of the columns shown, which a hidden empty column or a narrow line leaves out. */
  columnNames: string[]
  /** Names of the columns that have a value but did not fit in `maxWidth`. */
  droppedColumnNames: string[]
}

/**
 * Renders tasks as table lines. Columns marked `hiddenWhenEmpty` are left
 * out when no task has a value for them.
 */
export function renderTable(
  tasks: readonly HttpTask[],
  columns: readonly Column[],
  nowMs: number,
  options: TableOptions,
): RenderedTable {
  const cells = tasks.map((task) => columns.map((column) => readCell(column, task, nowMs)))
  const candidates = columns
    .map((column, index) => ({ column, index }))
    .filter(({ column, index }) => !column.hiddenWhenEmpty || hasValue(cells, index))

  const { indexes, widths } = layoutColumns(
    candidates.map(({ column }) => column),
    candidates.map(({ index }) => cells.map((row) => row[index] as Cell)),
    options.maxWidth,
  )
  const visible = indexes.map((index) => candidates[index] as (typeof candidates)[number])

  const header = renderLine(
    visible.map(({ column }) => ({ text: column.name, colour: undefined })),
    visible.map(({ column }) => column),
    widths,
    false,
    true,
  )
  return {
    header,
    columnNames: visible.map(({ column }) => column.name),
    droppedColumnNames: candidates.filter((candidate) => !visible.includes(candidate)).map(({ column }) => column.name),
    rows: cells.map((row, rowIndex) => {
      const rowStyle = options.rowStyles?.[rowIndex]
      const line = renderLine(
        visible.map(({ index }) => row[index] as Cell),
        visible.map(({ column }) => column),
        widths,
        options.colour && rowStyle === undefined,
      )
      // Reverse video is no colour, so the selected row shows with NO_COLOR set too.
      return paint(line, rowStyle, options.colour || rowStyle === 'reverse')
    }),
  }
}

/** Reads, cuts and sanitises one cell. */
export function readCell(column: Column, task: HttpTask, nowMs: number): Cell {
  const value = column.value(task, nowMs)
  if (value === undefined || value === '') return { text: MISSING_VALUE, colour: undefined }

  const capped = value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}…` : value
  return { text: sanitizeText(capped), colour: column.colour?.(task, nowMs) }
}

/** Columns that fit a width: their indexes in the given order, and the width of each. */
export interface ColumnLayout {
  indexes: number[]
  widths: number[]
}

/**
 * Returns the columns that fit in `maxWidth` and their widths. Each column
 * starts at its widest cell (capped at its `maxWidth` when the room is
 * limited). When the line is too wide:
 * 1. the columns that shrink before Path give up width, in shrink order,
 *    each down to its minimum, then Path down to `PATH_MAX_SHARE` of the line;
 * 2. the columns with a drop order are left out, lowest first;
 * 3. Path, and any other column that shrinks after it, shrinks;
 * 4. trailing columns are left out, and the first one is cut.
 * Room freed by a dropped column goes back to the columns that shrank.
 */
export function layoutColumns(
  columns: readonly Column[],
  cellsByColumn: ReadonlyArray<readonly Cell[]>,
  maxWidth: number,
): ColumnLayout {
  const limited = Number.isFinite(maxWidth)
  const naturalWidths = columns.map((column, index) => {
    const widest = (cellsByColumn[index] ?? []).reduce(
      (widthSoFar, cell) => Math.max(widthSoFar, textWidth(cell.text)),
      textWidth(column.name),
    )
    return limited ? Math.min(widest, Math.max(column.maxWidth, textWidth(column.name))) : widest
  })
  const widths = new Map(naturalWidths.map((width, index) => [index, width]))
  if (!limited) return toLayout(widths)

  const excessOf = () => totalWidth([...widths.values()]) - maxWidth
  const shrinkOrder = shrinkableColumns(columns)
  shrink(columns, widths, shrinkOrder.filter(isBeforePath(columns)), excessOf)
  capPath(columns, widths, Math.floor(maxWidth * PATH_MAX_SHARE), excessOf)

  for (const index of droppableColumns(columns)) {
    if (excessOf() <= 0) break
    widths.delete(index)
  }
  shrink(columns, widths, shrinkOrder, excessOf)

  while (excessOf() > 0 && widths.size > 1) widths.delete(Math.max(...widths.keys()))
  const first = Math.min(...widths.keys())
  if (excessOf() > 0) widths.set(first, Math.max(0, (widths.get(first) as number) - excessOf()))

  // Dropping a column can free more room than was missing; the columns that
  // shrank get it back, the last to shrink first.
  for (const index of [...shrinkOrder].reverse()) {
    const width = widths.get(index)
    const spare = -excessOf()
    if (spare <= 0) break
    if (width === undefined) continue
    widths.set(index, width + Math.min(spare, (naturalWidths[index] as number) - width))
  }
  return toLayout(widths)
}

/** Takes width from the listed columns, in order, each down to its minimum, while `excessOf()` is positive. */
function shrink(
  columns: readonly Column[],
  widths: Map<number, number>,
  order: readonly number[],
  excessOf: () => number,
): void {
  for (const index of order) {
    const excess = excessOf()
    if (excess <= 0) return
    const width = widths.get(index)
    if (width === undefined) continue
    const minWidth = (columns[index] as Column).minWidth
    widths.set(index, width - Math.min(excess, Math.max(0, width - minWidth)))
  }
}

/** Narrows Path, while `excessOf()` is positive, down to `cap` or its minimum, whichever is wider. */
function capPath(columns: readonly Column[], widths: Map<number, number>, cap: number, excessOf: () => number): void {
  const index = columns.findIndex((column) => column.shrinkOrder === PATH_SHRINK_ORDER)
  const width = widths.get(index)
  if (width === undefined || excessOf() <= 0) return
  const floor = Math.max(cap, (columns[index] as Column).minWidth)
  widths.set(index, Math.max(Math.min(width, floor), width - excessOf()))
}

function isBeforePath(columns: readonly Column[]): (index: number) => boolean {
  return (index) => ((columns[index] as Column).shrinkOrder ?? 0) < PATH_SHRINK_ORDER
}

/** Returns the indexes of the columns that may be left out, in the order they go. */
function droppableColumns(columns: readonly Column[]): number[] {
  return columns
    .map((column, index) => ({ order: column.dropOrder, index }))
    .filter((entry): entry is { order: number; index: number } => entry.order !== undefined)
    .sort((a, b) => a.order - b.order)
    .map((entry) => entry.index)
}

function toLayout(widths: Map<number, number>): ColumnLayout {
  const indexes = [...widths.keys()].sort((a, b) => a - b)
  return { indexes, widths: indexes.map((index) => widths.get(index) as number) }
}

function renderLine(
  cells: readonly Cell[],
  columns: readonly Column[],
  widths: readonly number[],
  colour: boolean,
  isHeader = false,
): string {
  const parts = cells.map((cell, index) => {
    const column = columns[index] as Column
    const width = widths[index] as number
    const isLast = index === cells.length - 1
    // The last left-aligned cell is not padded, so lines carry no trailing blanks.
    let text: string
    if (isLast && column.align === 'left' && textWidth(cell.text) <= width) text = cell.text
    else if (column.cutFrom === 'start' && !isHeader) text = fitToWidth(cutStartToWidth(cell.text, width), width, column.align)
    else text = fitToWidth(cell.text, width, column.align)
    return paint(text, cell.colour, colour)
  })
  return parts.join(GAP)
}

/**
 * Cuts text to at most `maxWidth` columns by leaving out its start, which
 * `…` then replaces, as `cutToWidth` does with the end. A wide character
 * that would straddle the limit is left out whole, combining marks go with
 * the character they follow, and a flag is kept whole or left out.
 */
export function cutStartToWidth(text: string, maxWidth: number): string {
  if (maxWidth <= 0) return ''
  if (textWidth(text) <= maxWidth) return text

  const limit = maxWidth - textWidth(ELLIPSIS)
  const chars = Array.from(text)
  let start = chars.length
  let used = 0
  while (start > 0) {
    const width = charWidth(chars[start - 1] as string)
    if (used + width > limit) break
    used += width
    start--
  }
  // A combining mark without the character it follows would join the ellipsis.
  while (start < chars.length && charWidth(chars[start] as string) === 0) start++
  const keptStartsWithIndicator = isRegionalIndicator(chars[start]?.codePointAt(0) ?? 0)
  // Counted from the start of the text, an odd number of indicators before the cut leaves half a flag after it.
  let before = 0
  while (before < start && isRegionalIndicator(chars[start - 1 - before]?.codePointAt(0) ?? 0)) before++
  if (keptStartsWithIndicator && before % 2 === 1) start++
  return ELLIPSIS + chars.slice(start).join('')
}

function hasValue(cells: ReadonlyArray<readonly Cell[]>, index: number): boolean {
  return cells.some((row) => row[index]?.text !== MISSING_VALUE)
}

/** Returns the indexes of the columns that may shrink, in the order they shrink. */
function shrinkableColumns(columns: readonly Column[]): number[] {
  return columns
    .map((column, index) => ({ order: column.shrinkOrder, index }))
    .filter((entry): entry is { order: number; index: number } => entry.order !== undefined)
    .sort((a, b) => a.order - b.order)
    .map((entry) => entry.index)
}

function totalWidth(widths: readonly number[]): number {
  return widths.reduce((sum, width) => sum + width, 0) + GAP.length * Math.max(0, widths.length - 1)
}
