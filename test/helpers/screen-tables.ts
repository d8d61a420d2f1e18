/**
 * Reads the request tables of a `web-top-cli live` screen, or of `recent`
 * output, as captured text.
 */
import { expect } from 'vitest'

/** Returns the lines between the active table's column header and the completed table's title. */
export function activeTableLines(screen: string): string[] {
  const lines = screen.split('\n')
  const start = lines.findIndex((line) => line.startsWith('Active HTTP requests')) + 2
  const end = lines.findIndex((line) => line.startsWith('Completed HTTP responses'))
  return lines.slice(start, end === -1 ? undefined : end)
}

/** Returns the header and rows of the completed table on a live screen. */
export function completedLinesOf(screen: string): string[] {
  const lines = screen.split('\n')
  const title = lines.findIndex((line) => line.startsWith('Completed HTTP responses'))
  expect(title, 'the completed table title').toBeGreaterThanOrEqual(0)
  const rest = lines.slice(title + 1)
  const end = rest.findIndex((line) => line.trim() === '')
  return end < 0 ? rest : rest.slice(0, end)
}

/**
 * Returns the Duration cell of the row of `path`, from table lines whose
 * first line is the header. Duration is right-aligned and exactly as wide
 * as its name, so the cell is under the header word.
 */
export function durationOf(lines: readonly string[], path: string): string | undefined {
  const column = lines[0]?.indexOf('Duration') ?? -1
  expect(column, 'the Duration column').toBeGreaterThanOrEqual(0)
  const row = lines.find((line) => line.includes(`${path} `))
  return row?.slice(column, column + 'Duration'.length).trim()
}
