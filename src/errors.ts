import { escapeJsonForTerminal } from './util/sanitize'
import { maskUrl } from './util/mask-url'

/** Stable code of every error the package throws for a bad option. */
export const INVALID_OPTION = 'WEB_TOP_INVALID_OPTION'

/** Stable code of the error thrown for a tracker URL that cannot be used. */
export const INVALID_TRACKER_URL = 'WEB_TOP_INVALID_TRACKER_URL'

export type WebTopErrorCode = typeof INVALID_OPTION | typeof INVALID_TRACKER_URL

export type WebTopError = (TypeError | RangeError) & { code: WebTopErrorCode }

/** Returns true for errors thrown by this package. */
export function isWebTopError(error: unknown): error is WebTopError {
  return (
    error instanceof Error &&
    ((error as { code?: unknown }).code === INVALID_OPTION ||
      (error as { code?: unknown }).code === INVALID_TRACKER_URL)
  )
}

/** Builds the `TypeError` for an option of the wrong type. */
export function invalidOptionType(name: string, expected: string, received: unknown): WebTopError {
  const error = new TypeError(
    `web-top: The \`${name}\` option must be ${expected} (received ${describe(received)})`,
  )
  return Object.assign(error, { code: INVALID_OPTION } as const)
}

/** Builds the `RangeError` for an option outside its range. */
export function invalidOptionRange(name: string, expected: string, received: unknown): WebTopError {
  const error = new RangeError(
    `web-top: The \`${name}\` option must be ${expected} (received ${describe(received)})`,
  )
  return Object.assign(error, { code: INVALID_OPTION } as const)
}

/** Builds the `TypeError` for a misuse that no single option value explains, such as a mount without the call. */
export function invalidUsage(message: string, options?: ErrorOptions): WebTopError {
  return Object.assign(new TypeError(`web-top: ${message}`, options), { code: INVALID_OPTION } as const)
}

/** Builds the error for a tracker URL that names no supported backend. */
export function invalidTrackerUrl(url: string, reason: string): WebTopError {
  const error = new TypeError(`web-top: Invalid tracker URL ${quote(url)}: ${reason}`)
  return Object.assign(error, { code: INVALID_TRACKER_URL } as const)
}

/**
 * Returns `value` when it is a whole number of at least 1. Throws a
 * `TypeError` for a non-number and a `RangeError` for any other number.
 */
export function requireCount(name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidOptionType(name, 'a number', value)
  if (!Number.isInteger(value) || value < 1) {
    throw invalidOptionRange(name, 'a whole number of at least 1', value)
  }
  // Larger values lose precision, and Redis rejects them in LTRIM once Lua writes them as 1e+17.
  if (!Number.isSafeInteger(value)) {
    throw invalidOptionRange(name, `a whole number of at most ${Number.MAX_SAFE_INTEGER}`, value)
  }
  return value
}

/** Builds the `RangeError` for an environment variable whose value cannot be used. */
export function invalidEnvironmentValue(
  name: string,
  expected: string,
  received: string,
): WebTopError {
  const error = new RangeError(
    `web-top: The ${name} environment variable must be ${expected} (received ${describe(received)})`,
  )
  return Object.assign(error, { code: INVALID_OPTION } as const)
}

/**
 * Builds the `TypeError` for an options argument that is not an object,
 * such as `topMiddleware(null)`, or is a built-in one such as a Map. `conversion` explains how an object came
 * from the string `received`, when it did.
 */
export function invalidOptionsArgument(received: unknown, conversion?: string): WebTopError {
  const description = describeBuiltIn(received)
  // Only a built-in object needs "plain" to say what is wrong with it.
  const expected = description === describe(received) ? 'an object' : 'a plain object'
  let message = `web-top: The options must be ${expected} or left out (received ${description}${conversion ?? ''})`
  if (typeof received === 'string') message += "; to set the tracker URL, pass it as { trackerUrl: '...' }"
  return Object.assign(new TypeError(message), { code: INVALID_OPTION } as const)
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    // A string given where an object belongs is often a tracker URL, whose password must not be shown.
    const text = value.includes('://') ? maskUrl(value) : value
    return quote(text.length > 80 ? `${text.slice(0, 80)}…` : text)
  }
  if (typeof value === 'function') return 'a function'
  // `String(10n)` is "10", which reads as the number that would have been accepted.
  if (typeof value === 'bigint') return `${value}n`
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

/**
 * Describes a built-in object by its type (`a Map`, `a Date`), which
 * `describe()` would call just an object, and any other value as `describe()` does.
 */
function describeBuiltIn(value: unknown): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return describe(value)
  const type = Object.prototype.toString.call(value).slice('[object '.length, -1)
  if (type === 'Object') return describe(value)
  return `${/^[AEIOU]/.test(type) ? 'an' : 'a'} ${type}`
}

/**
 * Returns `text` as a JSON string, with the characters that `JSON.stringify`
 * leaves raw but that would break or hide part of a log line (C1 controls,
 * U+2028, U+2029, bidirectional formatting) escaped as the CLI escapes them.
 */
function quote(text: string): string {
  return escapeJsonForTerminal(JSON.stringify(text))
}
