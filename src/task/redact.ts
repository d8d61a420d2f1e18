/**
 * Redaction and size caps applied to what a request puts in its record.
 * A record is written to a shared store and shown in terminals, so secrets
 * are masked by default and every variable-length part has a cap.
 */

/** Value stored in place of a secret. */
export const REDACTED = '[REDACTED]'

/** Suffix appended to a value that was cut at its cap. */
export const TRUNCATED = '…[truncated]'

/** Header names (lower case) whose values are always masked unless allowed. */
export const DEFAULT_SECRET_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-amz-security-token',
  'x-goog-api-key',
  'x-top-web-api-key',
]

/** Header names that look like credentials even when not listed. */
const SECRET_HEADER_PATTERN =
  /(^|-)(api-?key|access-?key|token|secret|password|passwd|auth|session|signature|jwt|credentials?)($|-)/i

/**
 * Query parameter names that look like credentials. `auth` and `otp` count
 * only as whole words of the name, so `author` and `footprint` stay readable.
 */
const SECRET_PARAM_PATTERN =
  /(token|passw(or)?d|passwd|pwd|secret|(^|[-_.])key$|api[-_.]?key|apikey|(^|[-_.])auth($|[-_.])|session|sig(nature)?$|credential|private|(^|[-_.])otp($|[-_.])|(^|[-_.])jwt($|[-_.])|^code$|code_verifier)/i

/** Limits on the variable-length parts of one record. */
export interface SizeLimits {
  /** Longest path, URI or query value kept, in characters. */
  maxUrlLength: number
  /** Longest header value kept, in characters. */
  maxHeaderValueLength: number
  /** Most header pairs kept per direction. */
  maxHeaders: number
  /** Max number of query parameter values kept. Each value of a repeated name counts. */
  maxParams: number
}

export const DEFAULT_SIZE_LIMITS: Readonly<SizeLimits> = Object.freeze({
  maxUrlLength: 2048,
  maxHeaderValueLength: 1024,
  maxHeaders: 64,
  maxParams: 64,
})

/** Decides which header and parameter values are masked. */
export interface RedactionRules {
  isSecretHeader(lowerCaseName: string): boolean
  isSecretParam(name: string): boolean
}

export interface RedactionOptions {
  /** Further header names to mask. */
  redactHeaders?: readonly string[]
  /** Header names to keep in clear even though they are masked by default. */
  allowHeaders?: readonly string[]
  /** Further query parameter names to mask. */
  redactParams?: readonly string[]
  /** Query parameter names to keep in clear even though they look like secrets. */
  allowParams?: readonly string[]
}

/** Builds the redaction rules once, at setup. */
export function createRedactionRules(options: RedactionOptions = {}): RedactionRules {
  const secretHeaders = new Set(DEFAULT_SECRET_HEADERS)
  for (const name of options.redactHeaders ?? []) secretHeaders.add(name.toLowerCase())

  const allowedHeaders = new Set((options.allowHeaders ?? []).map((name) => name.toLowerCase()))
  const secretParams = new Set((options.redactParams ?? []).map((name) => name.toLowerCase()))
  const allowedParams = new Set((options.allowParams ?? []).map((name) => name.toLowerCase()))

  return {
    isSecretHeader(lowerCaseName) {
      if (allowedHeaders.has(lowerCaseName)) return false
      return secretHeaders.has(lowerCaseName) || SECRET_HEADER_PATTERN.test(lowerCaseName)
    },
    isSecretParam(name) {
      const lowerCaseName = name.toLowerCase()
      if (allowedParams.has(lowerCaseName)) return false
      return secretParams.has(lowerCaseName) || SECRET_PARAM_PATTERN.test(lowerCaseName)
    },
  }
}

/** Cuts a string to `maxLength` characters and marks the cut. */
export function truncate(value: string, maxLength: number): string {
  if (value.length <= maxLength) return value
  return value.slice(0, maxLength) + TRUNCATED
}
