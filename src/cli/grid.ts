/**
 * A plain grid of text cells for the small tables of the live view (process
 * meters, route board): each column as wide as its widest cell, trailing
 * columns left out when the line would be wider than the room.
 */
import { sanitizeText } from '../util/sanitize'
import { paint, type Colour } from './style'
import { cutToWidth, fitToWidth, textWidth } from './text-width'

const GAP = '  '

export interface GridColumn {
  name: string
  align: 'left' | 'right'
  /** Widest the column grows. */
  maxWidth: number
}

export interface GridCell {
  text: string
  colour?: Colour | undefined
}

/** Renders the header line and one line per row, none wider than `maxWidth`. */
export function renderGrid(
  columns: readonly GridColumn[],
  rows: ReadonlyArray<ReadonlyArray<GridCell>>,
  maxWidth: number,
  colour: boolean,
): { header: string; rows: string[] } {
  const safeRows = rows.map((row) => row.map((cell) => ({ ...cell, text: sanitizeText(cell.text) })))
  const widths = columns.map((column, index) =>
    Math.min(
      Math.max(column.maxWidth, textWidth(column.name)),
      safeRows.reduce((widest, row) => Math.max(widest, textWidth(row[index]?.text ?? '')), textWidth(column.name)),
    ),
  )

  let visible = columns.length
  while (visible > 1 && lineWidth(widths.slice(0, visible)) > maxWidth) visible--

  const renderLine = (cells: readonly GridCell[], painted: boolean) => {
    const parts = columns.slice(0, visible).map((column, index) => {
      const cell = cells[index] ?? { text: '' }
      const width = widths[index] as number
      const isLast = index === visible - 1
      const text =
        isLast && column.align === 'left' ? cutToWidth(cell.text, width) : fitToWidth(cell.text, width, column.align)
      return paint(text, cell.colour, painted)
    })
    return parts.join(GAP)
  }

  const cutLine = (line: string, plainWidth: number) =>
    plainWidth <= maxWidth ? line : cutToWidth(line, maxWidth)
  const header = renderLine(
    columns.map((column) => ({ text: column.name })),
    false,
  )
  return {
    header: cutLine(header, textWidth(header)),
    rows: safeRows.map((row) => {
      const plain = renderLine(row, false)
      return textWidth(plain) <= maxWidth ? renderLine(row, colour) : cutToWidth(plain, maxWidth)
    }),
  }
}

function lineWidth(widths: readonly number[]): number {
  return widths.reduce((sum, width) => sum + width, 0) + GAP.length * Math.max(0, widths.length - 1)
}
