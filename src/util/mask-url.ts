/**
 * Masks the secrets of a URL before it is logged, printed or recorded: the
 * password of its user part and the values of query and fragment parameters
 * named like credentials. The masking works on the text, so a URL that does
 * not parse, or parses other than its writer meant, is masked too. The
 * library's log lines, the CLI's messages and the recorded command line all
 * use this module, so they mask the same secrets.
 */

/** Text that replaces a secret. */
const MASK = '***'

/** The endings of parameter names that are credentials, as a regular expression source. */
const SECRET_NAME_ENDINGS =
  '(?:pass|passwd|password|passphrase|passcode|pwd|pw|auth|authorization|token|secret|key|sig|signature|credentials?)\\]?'

/**
 * A query or fragment parameter whose name ends like a credential, with its
 * value: `pass`, `passwd`, `password`, `passphrase`, `passcode`, `pwd`,
 * `pw`, `auth`, `authorization`, `token`, `secret`, `key` (`api_key`,
 * `accessKey`, `sasKey`), `sig`, `signature` and `credential`, also in
 * bracket notation (`user[password]`). Group 1 is the `?`, `&` or `#` and
 * the name up to and including the `=`. The value runs to the next `&`, so a
 * `#` inside it (`token=a#b`) does not end it. The name has one quantifier
 * followed by fixed words, so each match attempt takes time linear in the
 * length of the name. A name that only contains such a word (`keyspace`,
 * `tokens_used`) stays visible.
 */
export const SECRET_PARAMETER = new RegExp(`([?&#][\\w.~[\\]-]*${SECRET_NAME_ENDINGS}=)[^&]*`, 'gi')

/**
 * `,` before `scheme://`, where a comma-separated list of URLs (the nodes of
 * a Cluster) starts its next URL. A comma inside a password or a host list
 * (`redis+cluster://h1:7000,h2:7001`) is not followed by a scheme.
 */
const NEXT_URL = /,(?=[a-z][a-z0-9+.-]*:\/\/)/i

/**
 * Returns the URL with every secret replaced by `***`, for a message. Each
 * URL of a comma-separated list is masked on its own, and then serialised
 * as the WHATWG URL parser does when it parses (`HTTP://h` as `http://h/`),
 * so that a message shows the URL as the library reads it. A URL that does
 * not parse, and a cluster or Sentinel URL, which the library reads with its
 * own parser, stay as written apart from their masked secrets.
 */
export function maskUrl(url: string): string {
  return url
    .split(NEXT_URL)
    .map((entry) => serializeUrl(maskSecrets(entry)))
    .join(',')
}

/** Returns the URL with every secret replaced by `***` and the rest as written. */
function maskUrlAsWritten(url: string): string {
  return url.split(NEXT_URL).map(maskSecrets).join(',')
}

/**
 * Masks the password and the secret parameter values of one URL. Both are
 * found in the URL as written and masked together, so a password span that
 * runs into the query (`redis://h:1?sentinelPassword=a@b`) cannot leave the
 * tail of a parameter value after its `@` in clear.
 */
function maskSecrets(url: string): string {
  return replaceSpans(url, findSecretSpans(url))
}

/** Returns the spans of one URL's passwords and secret parameter values, sorted and merged. */
function findSecretSpans(url: string): Span[] {
  const spans = findPasswordSpans(url)
  for (const match of url.matchAll(SECRET_PARAMETER)) {
    const valueStart = match.index + (match[1]?.length ?? 0)
    spans.push({ start: valueStart, end: match.index + match[0].length })
  }
  for (const match of url.matchAll(ENCODED_PARAMETER)) {
    const name = decodeName(match[2] ?? '')
    if (name === undefined || !SECRET_NAME_END.test(name)) continue
    const valueStart = match.index + (match[1]?.length ?? 0)
    spans.push({ start: valueStart, end: match.index + match[0].length })
  }
  return mergeSpans(spans)
}

/**
 * A parameter whose name is percent-encoded in part, such as
 * `pass%77ord=…`, which URL parsers and ioredis decode to `password`.
 * Group 1 is the `?`, `&` or `#` and the name with its `=`, group 2 the name.
 * The name stops at a `?`, and its part before the first `%` contains
 * none, so a match attempt ends at the next `?`, `&`, `#` or `=` and the
 * whole search takes linear time.
 */
const ENCODED_PARAMETER = /([?&#]([^=&#?%]*%[^=&#?]*)=)[^&]*/g

/** A decoded parameter name that `SECRET_PARAMETER` masks. */
const SECRET_NAME_END = new RegExp(`${SECRET_NAME_ENDINGS}$`, 'i')

/** Returns a percent-decoded name, or undefined when it is no valid percent-encoding. */
function decodeName(name: string): string | undefined {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

/**
 * Returns the text of `url` from `start` up to `end` with the secrets that
 * `maskUrl` masks in it replaced by `***`, for a message that quotes a part
 * of a URL, such as one entry of a host list. The secrets are found in the
 * whole URL, so a part that holds only the tail of a password is masked too.
 */
export function maskUrlPart(url: string, start: number, end: number): string {
  const spans: Span[] = []
  let entryStart = 0
  for (const entry of url.split(NEXT_URL)) {
    for (const span of findSecretSpans(entry)) {
      const spanStart = entryStart + span.start
      const spanEnd = entryStart + span.end
      const overlaps = spanStart < end && (spanEnd > start || (spanEnd === spanStart && spanStart >= start))
      if (overlaps) spans.push({ start: Math.max(spanStart, start) - start, end: Math.min(spanEnd, end) - start })
    }
    entryStart += entry.length + 1
  }
  return replaceSpans(url.slice(start, end), spans)
}

/** A part of a text, from `start` up to but not including `end`. */
interface Span {
  start: number
  end: number
}

/** Returns the spans sorted by start, with overlapping and touching spans joined into one. */
function mergeSpans(spans: Span[]): Span[] {
  const merged: Span[] = []
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    const last = merged[merged.length - 1]
    if (last !== undefined && span.start <= last.end) last.end = Math.max(last.end, span.end)
    else merged.push({ ...span })
  }
  return merged
}

/** Returns the text with each span, empty ones included, replaced by `***`. */
function replaceSpans(text: string, spans: readonly Span[]): string {
  let replaced = ''
  let position = 0
  for (const span of spans) {
    replaced += text.slice(position, span.start) + MASK
    position = span.end
  }
  return replaced + text.slice(position)
}

/** Returns a masked URL as the WHATWG URL parser serialises it, or as it is when it does not parse. */
function serializeUrl(maskedUrl: string): string {
  // The library reads cluster and Sentinel URLs with its own parser, so they stay as written.
  if (!maskedUrl.includes('://') || isMultiNodeUrl(maskedUrl)) return maskedUrl
  try {
    return new URL(maskedUrl).toString()
  } catch {
    return maskedUrl
  }
}

/**
 * Characters that end a URL inside other text: whitespace, quotes, angle
 * brackets and backquotes, which URLs do not contain unencoded.
 */
const URL_END = /[\s"'<>`]/

/** Characters of a URL scheme (RFC 3986): letters, digits, `+`, `-` and `.`. */
const SCHEME_CHARACTER = /[a-z0-9+.-]/i

/**
 * Masks every `scheme://…` URL inside a text, such as a command-line
 * argument (`--dsn=postgres://u:pw@db/x`, `CONFIG={"url":"redis://u:pw@h"}`),
 * as `maskUrl` does, but keeps the rest of the text and of each URL as
 * written. A URL runs from its scheme to the next whitespace, quote, angle
 * bracket or backquote, unless one of them cuts a password short
 * (`redis://u:p w@h`, `redis://u:p'ss@h`). The search steps from one `://`
 * to the next and never goes back past a URL it has masked, so it takes
 * time linear in the length of the text.
 */
export function maskUrlsInText(text: string): string {
  let masked = ''
  let position = 0
  for (;;) {
    const separator = text.indexOf('://', position)
    if (separator === -1) break

    let start = separator
    while (start > position && SCHEME_CHARACTER.test(text[start - 1] ?? '')) start--
    const end = findPasswordEnd(text, separator + 3) ?? findUrlEnd(text, separator + 3)

    masked += text.slice(position, start) + maskUrlAsWritten(text.slice(start, end))
    position = end
  }
  return masked + text.slice(position)
}

function findUrlEnd(text: string, from: number): number {
  let end = from
  while (end < text.length && !URL_END.test(text[end] ?? '')) end++
  return end
}

/**
 * Returns the end of a URL whose password contains a character that ends a
 * URL in text, as in `redis://u:p w@h` or `redis://u:p'ss@h`. The URL up to
 * that character reads as `scheme://user:password` with no `@`, and an `@`
 * follows before the next `://`. The URL then runs past that `@`, which
 * masks the text up to it (`{"u":"redis://u:pw","m":"a@b"}` too, which is
 * safe). Returns `undefined` for any other URL. `authorityStart` is the
 * index after the `://`.
 * NOTE: a password whose text before such a character is all digits
 * (`redis://u:12'34@h`) reads as a port and stays visible, because masking
 * after every `host:port` would also hide text such as
 * `redis://h:6379 and ann@shop.test`.
 */
function findPasswordEnd(text: string, authorityStart: number): number | undefined {
  const cutAt = findUrlEnd(text, authorityStart)
  if (cutAt >= text.length) return undefined
  const authority = text.slice(authorityStart, cutAt)
  if (/[@/?#]/.test(authority) || !readsAsMalformedPassword(authority)) return undefined

  const nextUrl = text.indexOf('://', cutAt)
  const at = text.slice(cutAt, nextUrl === -1 ? text.length : nextUrl).indexOf('@')
  return at === -1 ? undefined : findUrlEnd(text, cutAt + at + 1)
}

/** Port after the host of an authority: digits only. */
const PORT = /^\d+$/

/** Returns the passwords that `maskUrl` masks: one for each URL of a comma-separated list that has one. */
export function readPasswords(url: string): string[] {
  const passwords: string[] = []
  for (const entry of url.split(NEXT_URL)) {
    for (const span of findPasswordSpans(entry)) passwords.push(entry.slice(span.start, span.end))
  }
  return passwords
}

/**
 * Returns each password of `readPasswords`, as written and percent-decoded,
 * for masking a text in which a client may have put either form.
 */
export function readPasswordForms(url: string): string[] {
  const forms: string[] = []
  for (const password of readPasswords(url)) forms.push(password, decodeOrKeep(password))
  return forms
}

/** Returns `text` percent-decoded, or as it is when an escape in it is malformed. */
export function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/**
 * Schemes of Redis and Valkey URLs, whose path is a database number, or a
 * Sentinel master name and a database number.
 */
const REDIS_SCHEME = /^(?:redis|rediss|valkey|valkeys)(?:\+(?:cluster|sentinel))?$/i

/** Schemes of URLs that list several nodes (`host:port,host:port`): Redis Cluster seeds or Sentinels. */
const MULTI_NODE_SCHEME = /^(?:redis|rediss|valkey|valkeys)\+(?:cluster|sentinel)$/i

function isMultiNodeUrl(url: string): boolean {
  const separator = url.indexOf('://')
  return separator !== -1 && MULTI_NODE_SCHEME.test(url.slice(0, separator))
}

/** Returns the password spans of one URL: one for each node of a cluster or Sentinel URL that has one. */
function findPasswordSpans(url: string): Span[] {
  if (isMultiNodeUrl(url)) return findNodePasswordSpans(url, url.indexOf('://') + 3)
  const span = findPasswordSpan(url)
  return span === undefined ? [] : [span]
}

/**
 * Returns the password spans of a cluster or Sentinel URL, whose authority
 * is a comma-separated list of nodes. Each node (`[user[:password]@]host[:port]`)
 * is read on its own, so the hosts stay visible. The list is read up to the
 * last `@` of the URL, which ends the last user part, because as in a
 * one-server Redis URL a password may contain a raw `@`, `/` or `?`. The user part of a node runs
 * to its last `@`, and its password from its first `:`. A node before that
 * last `@` that has no `@` of its own may also be a piece of a password with
 * a raw `,` (`u:12,ab@host`), so after its host, its port is masked too
 * (`127.0.0.1:***`), and one with no `:` after a `:` earlier in the URL is
 * masked whole, joined to the mask before it (`u:p,w@h` shows as `u:***@h`).
 * Nodes after the last `@` stay visible. Each node is searched once, so the
 * search takes time linear in the length of the URL.
 * NOTE: a password with a raw `,` whose pieces read as a host with a port
 * shows those hosts (`u:x,h:1@h2` shows as `u:***,h:***@h2`).
 */
function findNodePasswordSpans(url: string, start: number): Span[] {
  const userPartsEnd = url.lastIndexOf('@')
  if (userPartsEnd < start) return []

  const spans: Span[] = []
  let passwordStarted = false
  let nodeStart = start
  for (;;) {
    const comma = url.indexOf(',', nodeStart)
    const isLast = comma === -1 || comma >= userPartsEnd
    const nodeEnd = isLast ? userPartsEnd : comma
    const node = url.slice(nodeStart, nodeEnd)
    const at = isLast ? node.length : node.lastIndexOf('@')
    const userPart = at === -1 ? node : node.slice(0, at)
    // A node without user part may be an IPv6 address in brackets, whose port follows the `]`.
    const hostEnd = at === -1 && userPart.startsWith('[') ? Math.max(userPart.indexOf(']'), 0) : 0
    const colon = userPart.indexOf(':', hostEnd)

    if (colon !== -1) {
      spans.push({ start: nodeStart + colon + 1, end: nodeStart + userPart.length })
      passwordStarted = true
    } else if (passwordStarted && userPart !== '') {
      const previous = spans[spans.length - 1]
      if (previous !== undefined && previous.end === nodeStart - 1) previous.end = nodeStart + userPart.length
      else spans.push({ start: nodeStart, end: nodeStart + userPart.length })
    }

    if (isLast) return spans
    nodeStart = comma + 1
  }
}

/**
 * Returns where the password of one URL starts and ends, or `undefined` for
 * a URL without one: the text after the first `:` of the user part, up to
 * the last `@` of the user part.
 *
 * A valid URL's user part ends at the last `@` before the first `/`, `?` or
 * `#` (the authority), and a password with a raw `@` (`u:p@ss@host`) is
 * masked whole. A password with a raw `/` makes the user part run past the
 * first `/` (`u:p@ss/w@host`), so when the authority contains an `@`, the
 * user part ends at the last `@` before the first `?` or `#`. When the
 * authority has no `@` but reads as `user:password` with a password that is
 * not a port (`u:pa/ss@host`, `u:p?ss@host`), the user part ends at the last
 * `@` of the whole URL.
 * A Redis URL's path and query rarely contain a raw `@`, so there the user
 * part ends at the last `@` of the whole URL, whatever the authority reads
 * as. This masks a password that starts with digits, which reads as a port
 * (`redis://u:1234/5678@host`, `redis://:99?x@host`), and one with a raw `@`
 * and `?` (`redis://u:p@ss?w@host`).
 * NOTE: these rules also mask a path that contains `@` after a real user part
 * (`https://u:p@host/a@b` shows as `https://u:***@b`), and a Redis query
 * value with a raw `@` (`redis://h:1?name=a@b` shows as `redis://h:***@b`).
 * Both are rare, and showing too little is safer than showing a password.
 */
function findPasswordSpan(url: string): Span | undefined {
  const separator = url.indexOf('://')
  if (separator === -1) return undefined
  const start = separator + 3

  const queryAt = indexOfAny(url, '?#', start)
  const authorityEnd = indexOfAny(url, '/?#', start)
  const authority = url.slice(start, authorityEnd)

  let userPartEnd: number
  if (REDIS_SCHEME.test(url.slice(0, separator))) {
    userPartEnd = url.lastIndexOf('@')
  } else if (authority.includes('@')) {
    userPartEnd = url.lastIndexOf('@', queryAt - 1)
  } else if (readsAsMalformedPassword(authority)) {
    userPartEnd = url.lastIndexOf('@')
  } else {
    return undefined
  }

  const colon = url.indexOf(':', start)
  if (userPartEnd < start || colon === -1 || colon > userPartEnd) return undefined
  return { start: colon + 1, end: userPartEnd }
}

/**
 * Returns whether an authority without `@` reads as `user:password`, cut
 * short by a `/`, `?`, `#` or a `URL_END` character inside the password,
 * rather than as `host`, `host:port` or `[IPv6]:port`.
 */
function readsAsMalformedPassword(authority: string): boolean {
  if (authority.startsWith('[')) return false
  const colon = authority.indexOf(':')
  return colon !== -1 && !PORT.test(authority.slice(colon + 1))
}

/** Returns the index of the first of `characters` in `text` from `from` on, or the length of `text`. */
function indexOfAny(text: string, characters: string, from: number): number {
  for (let index = from; index < text.length; index++) {
    if (characters.includes(text[index] ?? '')) return index
  }
  return text.length
}
