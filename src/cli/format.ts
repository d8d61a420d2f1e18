/**
 * Text forms of durations and sizes, short enough for a table cell.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const

/**
 * Formats a duration in milliseconds: `0.12s` below 10 s, `12.3s` below a
 * minute, then `4m05s`, `2h07m` and `3d04h`. Digits past the last shown are
 * cut, not rounded, so a value shown is never more than the duration and
 * agrees with `--min-duration`. Returns `undefined` for no value.
 */
export function formatDuration(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined

  const us = Math.round(ms * 1000)
  if (us < 10_000_000) return cutToDigits(us, SECOND_US, 2) + 's'
  if (us < 60_000_000) return cutToDigits(us, SECOND_US, 1) + 's'

  const wholeSeconds = Math.floor(us / SECOND_US)
  if (wholeSeconds < 3600) return `${Math.floor(wholeSeconds / 60)}m${pad2(wholeSeconds % 60)}s`

  const wholeMinutes = Math.floor(wholeSeconds / 60)
  if (wholeMinutes < 24 * 60) return `${Math.floor(wholeMinutes / 60)}h${pad2(wholeMinutes % 60)}m`

  const wholeHours = Math.floor(wholeMinutes / 60)
  return `${Math.floor(wholeHours / 24)}d${pad2(wholeHours % 24)}h`
}

/**
 * Formats how long a request took or has run: `0.42ms`, `12.3ms` and
 * `420ms` below a second, then as `formatDuration`, cut as it does. Most
 * requests of a web server take a few milliseconds, which `formatDuration`
 * prints as `0.00s`. Returns `undefined` for no value.
 */
export function formatRequestDuration(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined
  const us = Math.round(ms * 1000)
  if (us < 10_000) return cutToDigits(us, MILLISECOND_US, 2) + 'ms'
  if (us < 100_000) return cutToDigits(us, MILLISECOND_US, 1) + 'ms'
  if (us < 1_000_000) return cutToDigits(us, MILLISECOND_US, 0) + 'ms'
  return formatDuration(ms)
}

const MILLISECOND_US = 1_000
const SECOND_US = 1_000_000

/**
 * Prints whole microseconds `us` in a unit of `unitUs` microseconds with
 * `digits` decimals, dropping the digits after them. Counting in whole
 * microseconds, the finest unit of a record's time, keeps `0.29` ms, stored
 * as 0.28999…, from printing as `0.28`.
 */
function cutToDigits(us: number, unitUs: number, digits: 0 | 1 | 2): string {
  const scale = 10 ** digits
  return (Math.floor(us / (unitUs / scale)) / scale).toFixed(digits)
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
