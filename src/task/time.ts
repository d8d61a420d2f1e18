/**
 * Timestamps on the wire: ISO 8601 with an explicit offset. Writers emit
 * microseconds and `+00:00`, as Python's `datetime.isoformat()` does, so that
 * older Python readers without `Z` support parse them too.
 */

const ISO_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/** Epoch second whose text `secondPrefix` holds, so that a call within the same second reuses it. */
let cachedSecond = Number.NaN
/** `2026-12-04T15:00:00.` for `cachedSecond`. */
let secondPrefix = ''

/**
 * Formats epoch milliseconds (fractions kept to the microsecond) as ISO 8601
 * in UTC. The date and time of day are formatted once per second and the
 * six fraction digits by arithmetic, because recorders call this twice per
 * request.
 */
export function formatIsoTime(epochMs: number): string {
  const wholeMs = Math.floor(epochMs)
  const micros = Math.min(999, Math.round((epochMs - wholeMs) * 1000))
  const second = Math.floor(wholeMs / 1000)
  if (second !== cachedSecond) {
    cachedSecond = second
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20) // 2026-12-04T15:00:00.
  }
  return `${secondPrefix}${padSixDigits((wholeMs - second * 1000) * 1000 + micros)}+00:00`
}

/** `performance.timeOrigin`, read once: it is fixed for the life of the process and a getter. */
const TIME_ORIGIN_MS = performance.timeOrigin

/** Returns the current time in epoch milliseconds with sub-millisecond precision. */
export function nowMs(): number {
  return TIME_ORIGIN_MS + performance.now()
}

/**
 * Parses an ISO 8601 timestamp with 0 to 9 fractional digits and any offset
 * (`Z`, `+00:00`, `+0200`, `-05`). A timestamp without an offset is read as
 * UTC. Returns epoch milliseconds, or `undefined` for anything else.
 */
export function parseIsoTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 64) return undefined

  const match = ISO_PATTERN.exec(value.trim())
  if (match === null) return undefined

  const [, year, month, day, hour, minute, second = '0', fraction = '', offset = 'Z'] = match
  const utcMs = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
  )
  const fractionMs = fraction === '' ? 0 : Number(`0.${fraction}`) * 1000
  const result = utcMs + fractionMs - parseOffsetMinutes(offset) * 60_000
  return Number.isFinite(result) ? result : undefined
}

function parseOffsetMinutes(offset: string): number {
  if (offset.toUpperCase() === 'Z') return 0

  const sign = offset.startsWith('-') ? -1 : 1
  const digits = offset.slice(1).replace(':', '')
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
  return sign * (hours * 60 + minutes)
}

function padSixDigits(value: number): string {
  const digits = String(value)
  return digits.length >= 6 ? digits : '000000'.slice(digits.length) + digits
}
