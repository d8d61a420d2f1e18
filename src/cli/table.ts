/**
 * Lays out and renders a table of tasks as plain lines. Column widths are
 * display widths. When the room is short, the columns with a shrink order
 * give up width first, and no line is wider than the room, so rows never wrap.
 */
import type { HttpTask } from '../task/http-task'
import type { Column } from './columns'
import { sanitizeText } from './sanitize'
import { paint, type Colour } from './style'
import { fitToWidth, textWidth } from './text-width'

/** Columns between two cells. */
const GAP = '  '

/** Maximum length kept of one field before it is measured, so a huge record costs little. */
const MAX_FIELD_LENGTH = 4096

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
}

/** A table ready to print: the header line (never coloured) and one line per task. */
export interface RenderedTable {
  header: string
  rows: string[]
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

  const widths = layoutColumns(
    candidates.map(({ column }) => column),
    candidates.map(({ index }) => cells.map((row) => row[index] as Cell)),
    options.maxWidth,
  )
  const visible = candidates.slice(0, widths.length)

  const header = renderLine(
    visible.map(({ column }) => ({ text: column.name, colour: undefined })),
    visible.map(({ column }) => column),
    widths,
    false,
  )
  return {
    header,
    rows: cells.map((row) =>
      renderLine(
        visible.map(({ index }) => row[index] as Cell),
        visible.map(({ column }) => column),
        widths,
        options.colour,
      ),
    ),
  }
}

/** Reads, cuts and sanitises one cell. */
export function readCell(column: Column, task: HttpTask, nowMs: number): Cell {
  const value = column.value(task, nowMs)
  if (value === undefined || value === '') return { text: MISSING_VALUE, colour: undefined }

  const capped = value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}…` : value
  return { text: sanitizeText(capped), colour: column.colour?.(task, nowMs) }
}

/**
 * Returns the width of each column that fits in `maxWidth`. Each column
 * starts at its widest cell (capped at its `maxWidth` when the room is
 * limited). When the line is too wide, the columns with a shrink order give
 * up width in that order, each down to its minimum, then trailing columns
 * are dropped.
 * The result may be shorter than `columns` by the dropped ones.
 */
export function layoutColumns(
  columns: readonly Column[],
  cellsByColumn: ReadonlyArray<readonly Cell[]>,
  maxWidth: number,
): number[] {
  const limited = Number.isFinite(maxWidth)
  const widths = columns.map((column, index) => {
    const widest = (cellsByColumn[index] ?? []).reduce(
      (widthSoFar, cell) => Math.max(widthSoFar, textWidth(cell.text)),
      textWidth(column.name),
    )
    return limited ? Math.min(widest, Math.max(column.maxWidth, textWidth(column.name))) : widest
  })
  if (!limited) return widths

  const naturalWidths = [...widths]
  let excess = totalWidth(widths) - maxWidth
  for (const index of shrinkableColumns(columns)) {
    if (excess <= 0) break
    const column = columns[index] as Column
    const width = widths[index] as number
    const reduction = Math.min(excess, Math.max(0, width - column.minWidth))
    widths[index] = width - reduction
    excess -= reduction
  }
  while (excess > 0 && widths.length > 1) {
    excess -= (widths.pop() as number) + GAP.length
  }
  if (excess > 0) widths[0] = Math.max(0, (widths[0] as number) - excess)

  // Dropping a column can free more room than was missing; the columns that
  // shrank get it back, the last to shrink first.
  let spare = -excess
  for (const index of shrinkableColumns(columns).reverse()) {
    if (spare <= 0 || index >= widths.length) continue
    const growth = Math.min(spare, (naturalWidths[index] as number) - (widths[index] as number))
    widths[index] = (widths[index] as number) + growth
    spare -= growth
  }
  return widths
}

function renderLine(
  cells: readonly Cell[],
  columns: readonly Column[],
  widths: readonly number[],
  colour: boolean,
): string {
  const parts = cells.map((cell, index) => {
    const column = columns[index] as Column
    const width = widths[index] as number
    const isLast = index === cells.length - 1
    // The last left-aligned cell is not padded, so lines carry no trailing blanks.
    const text =
      isLast && column.align === 'left' && textWidth(cell.text) <= width
        ? cell.text
        : fitToWidth(cell.text, width, column.align)
    return paint(text, cell.colour, colour)
  })
  return parts.join(GAP)
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
