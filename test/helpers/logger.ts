/** A logger for tests that keeps every line web-top writes to it. */
import type { Logger } from '../../src/index'

export interface LogLine {
  message: string
  fields: Record<string, unknown>
}

/** Creates a logger that keeps every line, as `message` plus its fields, in `lines`. */
export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  return {
    lines,
    warn: (fields, message) => lines.push({ message, fields }),
    error: (fields, message) => lines.push({ message, fields }),
  }
}
