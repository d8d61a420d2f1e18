/**
 * Masking the secrets that a URL carries: the user info before its host,
 * and the values of query parameters named like credentials. It serves the
 * request URL and the headers whose value is a URL, such as Referer.
 */
import { NAME_VALUE_SEPARATOR, REDACTED, type RedactionRules } from './redact'

/**
 * Header names (lower case) whose value is or contains a URL. A page at
 * `/reset?token=…` sends that URL as the Referer of every request it makes,
 * and a redirect can put a token in its Location or Refresh
 * (`0; url=…`). A Link header lists URLs in angle brackets. Proxies pass the
 * original request target on in the others: IIS (`X-Original-URL`,
 * `X-Rewrite-URL`), Traefik (`X-Forwarded-Uri`), nginx setups
 * (`X-Original-URI`, `X-Request-URI`) and Envoy (`X-Envoy-Original-Path`).
 */
export const URL_HEADERS: ReadonlySet<string> = new Set([
  'referer',
  'location',
  'content-location',
  'x-original-url',
  'x-original-uri',
  'x-forwarded-uri',
  'x-rewrite-url',
  'x-request-uri',
  'x-envoy-original-path',
  'refresh',
  'link',
])

/**
 * A Refresh value split as browsers read it (HTML's shared declarative
 * refresh steps): the delay, an optional `;` or `,`, an optional `url=`,
 * then the URL, quoted or not. `0; url=/next`, `0, /next` and `0 url=/next`
 * all name `/next`. The pattern is anchored and always matches, so it never
 * backtracks.
 */
const REFRESH_PARTS = /^(\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?)(['"]?)(.*)$/is

/**
 * The parameters of a Link value that carry URLs: `anchor`, and
 * `imagesrcset`, a list of URLs with size descriptors that browsers fetch
 * from preload headers. Their values are quoted or single tokens.
 */
const LINK_URL_PARAMS = /(\b(?:anchor|imagesrcset)\s*=\s*)("[^"]*"?|'[^']*'?|[^;,\s]*)/gi

/**
 * Masks the secrets of the URLs in the value of a header of `URL_HEADERS`,
 * given its lower-case name: the URL of a Refresh value, each URL of a Link
 * value, and the whole value of the others.
 */
export function redactHeaderUrl(lowerCaseName: string, value: string, rules: RedactionRules): string {
  if (lowerCaseName === 'refresh') return redactRefresh(value, rules)
  if (lowerCaseName === 'link') {
    const withReferences = redactLinkReferences(value, rules)
    // Each URL of the parameter, split at whitespace and commas, is masked; descriptors such as `2x` stay as they are.
    return withReferences.replace(LINK_URL_PARAMS, (_, head: string, param: string) =>
      head + param.replace(/[^\s,"']+/g, (url) => redactUrl(url, rules)),
    )
  }
  return redactUrl(value, rules)
}

/**
 * Masks each `<…>` reference of a Link value. A reference runs to the first
 * `>`, as browsers read it, and the search stops at a `<` with no `>` after
 * it, so a value of many `<` takes linear time.
 */
function redactLinkReferences(value: string, rules: RedactionRules): string {
  let redacted = ''
  let position = 0
  for (;;) {
    const open = value.indexOf('<', position)
    if (open === -1) break
    const close = value.indexOf('>', open + 1)
    if (close === -1) break
    redacted += `${value.slice(position, open + 1)}${redactUrl(value.slice(open + 1, close), rules)}>`
    position = close + 1
  }
  return redacted + value.slice(position)
}

function redactRefresh(value: string, rules: RedactionRules): string {
  const [, head = '', quote = '', rest = ''] = REFRESH_PARTS.exec(value) ?? []
  if (rest === '') return value
  const closed = quote !== '' && rest.endsWith(quote)
  const url = closed ? rest.slice(0, -1) : rest
  return `${head}${quote}${redactUrl(url, rules)}${closed ? quote : ''}`
}

/**
 * `scheme://user:password@` at the start of an absolute URL, or
 * `//user:password@` at the start of a scheme-relative one, after any
 * whitespace, which URL parsers strip before they parse. WHATWG URL
 * parsers read `\` as `/` for `http` and `https`, and after such a scheme
 * take one slash or several (`http:/user:password@host/`,
 * `http:///user:password@host/`), so the pattern takes those forms too.
 * The user info ends at the last `@` before the first `/`, `\`, `?` or
 * `#`, as URL parsers read it, so a password with a raw `@`
 * (`user:p@ss@host`) is masked whole.
 */
const USER_INFO = /^(\s*(?:[a-z][a-z0-9+.-]*:[\\/]+|[\\/]{2,}))[^/\\?#]*@/i

/**
 * Replaces the user info of an absolute or scheme-relative URL
 * (`https://user:password@host/`, `//user:password@host/`) by
 * `[REDACTED]`. A path with one leading slash (`/users/7`), the usual
 * request target, is returned at once, because the recorder calls this
 * for every request.
 */
export function maskUserInfo(url: string): string {
  const second = url.charCodeAt(1)
  if (url.charCodeAt(0) === SLASH && second !== SLASH && second !== BACKSLASH) return url
  return url.replace(USER_INFO, `$1${REDACTED}@`)
}

const SLASH = 0x2f
const BACKSLASH = 0x5c

/**
 * A `;name=value` path parameter (RFC 3986, section 3.3), which ends at the
 * next `;`, `/`, `?` or `#`.
 */
const PATH_PARAM = /;([^;=/?#]*)=([^;/?#]*)/g

/**
 * Masks the values of path parameters named like secrets by the query
 * parameter rules, such as the session id that Java servlet containers
 * write into URLs (`/cart;jsessionid=1A2B`). Returns a path without `;` at
 * once, because the recorder calls this for every request.
 */
export function maskPathParams(path: string, rules: Pick<RedactionRules, 'isSecretParam'>): string {
  if (!path.includes(';')) return path
  return path.replace(PATH_PARAM, (param: string, name: string) =>
    rules.isSecretParam(safeDecode(name)) ? `;${name}=${REDACTED}` : param,
  )
}

/**
 * Masks the user info, the secret path parameters and the secret query parameters of a URL. A fragment
 * written as parameters (`#access_token=…`, as OAuth redirects send it) is
 * masked the same way. With `maxLength`, for a URL that is cut to that
 * length afterwards, the pairs past it are left out, so that a client's
 * long query costs no more than that.
 */
export function redactUrl(url: string, rules: RedactionRules, maxLength = Infinity): string {
  return redactNestedUrl(url, rules, maxLength, 0)
}

/**
 * Max depth of nested URLs that are masked, counted from the request
 * target or header value. Each level costs a pass over the rest of the text, and
 * deeper levels a stack frame each, so a crafted target of thousands of
 * `?a=` would overflow the stack. A value nested deeper is stored as
 * `[REDACTED]`. A login link that returns to a page that returns to
 * another is three levels deep.
 */
const MAX_URL_NESTING = 8

/** `redactUrl` for a URL found `depth` levels deep in query values. */
function redactNestedUrl(url: string, rules: RedactionRules, maxLength: number, depth: number): string {
  const hashAt = url.indexOf('#')
  const beforeFragment = hashAt === -1 ? url : url.slice(0, hashAt)
  const queryAt = beforeFragment.indexOf('?')
  let redacted = maskPathParams(maskUserInfo(queryAt === -1 ? beforeFragment : beforeFragment.slice(0, queryAt)), rules)
  if (queryAt !== -1 && redacted.length < maxLength) {
    redacted += `?${formatQuery(beforeFragment.slice(queryAt + 1), rules, maxLength - redacted.length - 1, depth)}`
  }
  if (hashAt !== -1 && redacted.length < maxLength) {
    const fragment = url.slice(hashAt + 1)
    const budget = maxLength - redacted.length - 1
    redacted += `#${fragment.includes('=') ? formatQuery(fragment, rules, budget, depth) : fragment}`
  }
  return redacted
}

/**
 * Rewrites a query string with the values of secret parameters masked. A
 * value that is itself a URL (`?next=https%3A%2F%2Fuser%3Apw%40host%2F`) gets
 * its secrets masked as `redactUrl` masks them. Stops after the pair that
 * makes the result longer than `maxLength`. Each pair is masked whole
 * before any cut, so a cut never shows part of a secret. `depth` counts the
 * URLs that contain the query, as `redactParamValue` counts them.
 */
export function formatQuery(query: string, rules: RedactionRules, maxLength = Infinity, depth = 0): string {
  let formatted = ''
  let start = 0
  while (start <= query.length) {
    const end = query.indexOf('&', start)
    const pair = query.slice(start, end === -1 ? query.length : end)
    formatted += (start === 0 ? '' : '&') + formatPair(pair, rules, depth)
    if (end === -1 || formatted.length > maxLength) break
    start = end + 1
  }
  return formatted
}

function formatPair(pair: string, rules: RedactionRules, depth: number): string {
  const separator = pair.indexOf('=')
  const rawName = separator === -1 ? pair : pair.slice(0, separator)
  if (rules.isSecretParam(safeDecode(rawName))) return `${redactParamName(rawName)}=${REDACTED}`
  if (separator === -1 || !ENCODED_URL.test(pair)) return pair

  const value = safeDecode(pair.slice(separator + 1))
  const redacted = redactParamValue(value, rules, depth + 1)
  return redacted === value ? pair : `${rawName}=${encodeQueryValue(redacted)}`
}

/**
 * Replaces the text after the first `=`, raw or percent-encoded, of a
 * secret parameter's name (raw or decoded) with `[REDACTED]`. A client
 * that encodes a whole pair sends `token%3DSECRET` as a name with no value.
 * NOTE: only `=` ends the name part, so `token:SECRET` or `token SECRET`
 * is stored whole.
 */
export function redactParamName(name: string): string {
  const separator = NAME_VALUE_SEPARATOR.exec(name)
  if (separator === null) return name
  return `${name.slice(0, separator.index + separator[0].length)}${REDACTED}`
}

/** A `%` not followed by two hex digits, on which `decodeURIComponent` throws. */
const MALFORMED_ESCAPE = /%(?![\da-f]{2})/i

/**
 * Text, raw or percent-encoded, that a query value which is a URL with
 * user info or parameters contains: two slashes or backslashes, `:/`,
 * `?`, `#` or `;`. So it may be absolute (`https://…`, `https:\\…`),
 * scheme-relative (`//host/…`) or relative (`/reset?token=…`,
 * `/cart;jsessionid=…`).
 */
const ENCODED_URL = /[\\/][\\/]|%2f%2f|%5c|(?::|%3a)(?:\/|%2f)|[?#;]|%3f|%23|%3b/i

/**
 * Masks the secrets of a decoded query parameter value when it may be a
 * URL that carries some (`MAYBE_URL`), such as the `/oauth/callback?code=…`
 * of a `returnTo` parameter. Returns any
 * other value as it is. `depth` counts the URLs the value sits in, the
 * request target being the first.
 */
export function redactParamValue(value: string, rules: RedactionRules, depth = 1): string {
  if (!MAYBE_URL.test(value)) return value
  return depth > MAX_URL_NESTING ? REDACTED : redactNestedUrl(value, rules, Infinity, depth)
}

/** The text of `ENCODED_URL` in a decoded value. */
const MAYBE_URL = /[\\/][\\/]|:[\\/]|[?#;]/

/**
 * Percent-encodes a query value, but leaves the characters that read as
 * themselves in a URL (`:`, `/`, `?`, `=`, `@`, `[`, `]`) as they are, so that
 * `https://[REDACTED]@host/` stays readable in the stored URI.
 */
function encodeQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/%(?:3A|2F|3F|3D|40|5B|5D)/g, (escape) => decodeURIComponent(escape))
}

/** Decodes a form-encoded name, or returns it as it is when it is not valid percent-encoding. */
function safeDecode(value: string): string {
  if (!value.includes('%')) return value.includes('+') ? value.replace(/\+/g, ' ') : value
  // decodeURIComponent would throw, and a throw costs microseconds: a query of thousands of bad escapes took milliseconds.
  if (MALFORMED_ESCAPE.test(value)) return value
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return value
  }
}
