/**
 * Builds one frame of the live view as lines of text: a header, the active
 * requests (longest running first), the completed ones (most recent first)
 * and a footer, sized to the terminal.
 */
import type { TaskSnapshot } from '../trackers/tracker'
import type { Column } from './columns'
import { sanitizeText } from './sanitize'
import { describeSkipped } from './skipped'
import { paint } from './style'
import { renderTable } from './table'
import { sortActiveTasks } from './task-order'
import { cutToWidth, fitToWidth, textWidth } from './text-width'

/** Lines of a frame that are not table rows: header, two titles, two column headers, footer. */
const FIXED_LINES = 6

const FOOTER_GAP = '  '

export interface LiveFrameInput {
  /** The last snapshot read, if any read has worked yet. */
  snapshot: TaskSnapshot
  /** Message of the last read if it failed. The frame then shows the previous snapshot. */
  readError: string | undefined
  /** A warning to show in the footer, if any. */
  notice?: string | undefined
  /** Tracker URL with its password masked. */
  trackerUrl: string
  nowMs: number
  /** Terminal width in columns, or `Infinity` when the output is not a terminal. */
  width: number
  /** Terminal height in lines, or `Infinity` when the output is not a terminal. */
  height: number
  activeColumns: readonly Column[]
  completedColumns: readonly Column[]
  /** Most completed tasks read; a count that reaches it is shown with `+`. */
  completedLimit: number
  colour: boolean
  /** Whether to show the keys (only when keys are read). */
  showKeys: boolean
}

/** Returns the lines of one frame, none wider than `width` and at most `height` of them. */
export function renderLiveFrame(input: LiveFrameInput): string[] {
  const { snapshot, width, colour } = input
  const active = sortActiveTasks(snapshot.active)
  const completed = snapshot.completed
  const room = input.height - FIXED_LINES
  const [activeRoom, completedRoom] = shareRows(room, active.length, completed.length)
  const tableOptions = { maxWidth: width, colour }

  const activeTable = renderTable(
    active.slice(0, activeRoom),
    input.activeColumns,
    input.nowMs,
    tableOptions,
  )
  const completedTable = renderTable(
    completed.slice(0, completedRoom),
    input.completedColumns,
    input.nowMs,
    tableOptions,
  )
  const completedCount =
    completed.length >= input.completedLimit ? `${completed.length}+` : String(completed.length)
  const activeCount = String(active.length)
  const activeTitle = sectionTitle('Active HTTP requests', activeCount, activeRoom, active.length)
  const completedTitle = sectionTitle(
    'Completed HTTP responses',
    completedCount,
    completedRoom,
    completed.length,
  )

  const lines = [
    styleLine(renderHeader(input, active.length, completedCount), 'reverse', input),
    styleLine(activeTitle, 'bold', input),
    styleLine(activeTable.header, 'dim', input),
    ...activeTable.rows,
    styleLine(completedTitle, 'bold', input),
    styleLine(completedTable.header, 'dim', input),
    ...completedTable.rows,
  ]
  const footer = renderFooter(input)
  if (footer !== '') lines.push(footer)
  return lines.slice(0, input.height)
}

/**
 * Splits the rows left for tables between active and completed tasks: each
 * gets half, and a table that needs less gives the rest to the other.
 */
export function shareRows(
  room: number,
  activeCount: number,
  completedCount: number,
): [number, number] {
  if (!Number.isFinite(room)) return [activeCount, completedCount]
  const available = Math.max(0, room)
  const half = Math.ceil(available / 2)
  const activeRows = Math.min(activeCount, Math.max(half, available - completedCount))
  return [activeRows, Math.min(completedCount, available - activeRows)]
}

function renderHeader(input: LiveFrameInput, activeCount: number, completedCount: string): string {
  const time = new Date(input.nowMs).toTimeString().slice(0, 8)
  const url = sanitizeText(input.trackerUrl)
  return `web-top  ${url}  ${activeCount} active  ${completedCount} completed  ${time}`
}

function sectionTitle(title: string, count: string, rowsShown: number, total: number): string {
  return rowsShown < total ? `${title} (${count}, ${rowsShown} shown)` : `${title} (${count})`
}

/** Returns the footer, cut to the width before it is coloured, or '' when it is empty. */
function renderFooter(input: LiveFrameInput): string {
  const parts: Array<{ text: string; colour?: 'red' | 'yellow' }> = []
  if (input.showKeys) parts.push({ text: 'q: quit' })
  if (input.readError !== undefined) {
    const text = `Read failed, showing the last data: ${sanitizeText(input.readError)}`
    parts.push({ text, colour: 'red' })
  }
  const { skipped, skipReasons } = input.snapshot
  if (skipped > 0) parts.push({ text: describeSkipped(skipped, skipReasons), colour: 'yellow' })
  if (input.notice !== undefined) parts.push({ text: sanitizeText(input.notice), colour: 'yellow' })

  let room = input.width
  const painted: string[] = []
  for (const part of parts) {
    if (room <= 0) break
    const text = cutToWidth(part.text, room)
    painted.push(paint(text, part.colour, input.colour))
    room -= textWidth(text) + FOOTER_GAP.length
  }
  return painted.join(FOOTER_GAP)
}

/** Cuts a line to the width and, on a terminal, pads it to the full width before styling it. */
function styleLine(text: string, style: 'reverse' | 'bold' | 'dim', input: LiveFrameInput): string {
  if (!Number.isFinite(input.width)) return paint(text, style, input.colour)
  const padded = input.colour && style === 'reverse'
  const fitted = padded ? fitToWidth(text, input.width) : cutToWidth(text, input.width)
  return paint(fitted, style, input.colour)
}
