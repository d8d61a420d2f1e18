/**
 * Masking the secrets that a URL carries: the user info before its host,
 * and the values of query parameters named like credentials. It serves the
 * request URL and the headers whose value is a URL, such as Referer.
 */
import { REDACTED, type RedactionRules } from './redact'

/**
 * Header names (lower case) whose value is a URL. A page at
 * `/reset?token=…` sends that URL as the Referer of every request it makes,
 * and a redirect can put a token in its Location.
 */
export const URL_HEADERS: ReadonlySet<string> = new Set([
  'referer',
  'location',
  'content-location',
  'x-original-url',
  'x-forwarded-uri',
  'x-rewrite-url',
])

/** `scheme://user:password@` at the start of an absolute URL. */
const USER_INFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i

/**
 * Replaces the user info of an absolute URL (`https://user:password@host/`)
 * by `[REDACTED]`. A path (`/users/7`), the usual request target, is
 * returned at once, because the recorder calls this for every request.
 */
export function maskUserInfo(url: string): string {
  if (url.startsWith('/')) return url
  return url.replace(USER_INFO, `$1${REDACTED}@`)
}

/**
 * Masks the user info and the secret query parameters of a URL. A fragment
 * written as parameters (`#access_token=…`, as OAuth redirects send it) is
 * masked the same way.
 */
export function redactUrl(url: string, rules: RedactionRules): string {
  const hashAt = url.indexOf('#')
  const beforeFragment = hashAt === -1 ? url : url.slice(0, hashAt)
  const queryAt = beforeFragment.indexOf('?')
  let redacted = maskUserInfo(queryAt === -1 ? beforeFragment : beforeFragment.slice(0, queryAt))
  if (queryAt !== -1) redacted += `?${formatQuery(beforeFragment.slice(queryAt + 1), rules)}`
  if (hashAt !== -1) {
    const fragment = url.slice(hashAt + 1)
    redacted += `#${fragment.includes('=') ? formatQuery(fragment, rules) : fragment}`
  }
  return redacted
}

/** Rewrites a query string with the values of secret parameters masked. */
export function formatQuery(query: string, rules: RedactionRules): string {
  return query
    .split('&')
    .map((pair) => {
      const separator = pair.indexOf('=')
      const rawName = separator === -1 ? pair : pair.slice(0, separator)
      return rules.isSecretParam(safeDecode(rawName)) ? `${rawName}=${REDACTED}` : pair
    })
    .join('&')
}

/** Decodes a form-encoded name, or returns it as it is when it is not valid percent-encoding. */
function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return value
  }
}
