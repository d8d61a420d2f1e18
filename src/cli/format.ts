/**
 * Text forms of durations and sizes, short enough for a table cell.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const

/**
 * Formats a duration in milliseconds: `0.12s` below 10 s, `12.3s` below a
 * minute, then `4m05s`, `2h07m` and `3d04h`. Returns `undefined` for no value.
 */
export function formatDuration(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined

  const seconds = ms / 1000
  if (seconds < 9.995) return `${seconds.toFixed(2)}s`
  if (seconds < 59.95) return `${seconds.toFixed(1)}s`

  // 59.96 s is past the one-decimal form above, so it counts as a whole minute.
  const wholeSeconds = Math.max(60, Math.floor(seconds))
  if (wholeSeconds < 3600) return `${Math.floor(wholeSeconds / 60)}m${pad2(wholeSeconds % 60)}s`

  const wholeMinutes = Math.floor(wholeSeconds / 60)
  if (wholeMinutes < 24 * 60) return `${Math.floor(wholeMinutes / 60)}h${pad2(wholeMinutes % 60)}m`

  const wholeHours = Math.floor(wholeMinutes / 60)
  return `${Math.floor(wholeHours / 24)}d${pad2(wholeHours % 24)}h`
}

/**
 * Formats how long a request took or has run: `0.42ms`, `12.3ms` and
 * `420ms` below a second, then as `formatDuration`. Most requests of a web
 * server take a few milliseconds, which `formatDuration` prints as `0.00s`.
 * Returns `undefined` for no value.
 */
export function formatRequestDuration(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined
  // The bounds keep rounding in the same form: 9.996 would print as 10.00ms, 999.6 as 1000ms.
  if (ms < 9.995) return `${ms.toFixed(2)}ms`
  if (ms < 99.95) return `${ms.toFixed(1)}ms`
  if (ms < 999.5) return `${Math.round(ms)}ms`
  return formatDuration(ms)
}

/** Formats a byte count with binary units: `512 B`, `4.2 KiB`, `419 KiB`, `12 MiB`. */
export function formatBytes(bytes: number | undefined): string | undefined {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return undefined
  if (bytes < 1024) return `${Math.round(bytes)} B`

  let value = bytes
  let unit = 0
  while (unit < BYTE_UNITS.length - 1 && roundForDisplay(value) >= 1024) {
    value /= 1024
    unit++
  }
  const rounded = roundForDisplay(value)
  return `${rounded < 10 ? rounded.toFixed(1) : rounded.toFixed(0)} ${BYTE_UNITS[unit]}`
}

/** Rounds to one decimal below 10 and to an integer above, as the value is shown. */
function roundForDisplay(value: number): number {
  return value < 9.95 ? Math.round(value * 10) / 10 : Math.round(value)
}

function pad2(value: number): string {
  return String(value).padStart(2, '0')
}

/** Returns `1 request`, `2 requests`: the count and the noun, with an `s` unless the count is 1. */
export function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
