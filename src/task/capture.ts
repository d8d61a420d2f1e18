/**
 * Builds the request part and the response part of an HTTP task from
 * Node's `IncomingMessage` and `ServerResponse`. Knows no framework.
 *
 * The recorder calls a `CaptureEncoder`, which writes each part directly as
 * JSON fields, so a request costs no intermediate objects and no
 * `JSON.stringify` of them. `captureRequest()` and `captureResponse()`
 * return the same parts as objects.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { Http2ServerResponse } from 'node:http2'
import type { HeaderPair } from './http-task'
import { REDACTED, truncate, type RedactionRules, type SizeLimits } from './redact'
import { hostOfTarget, maskHostUserInfo, pathOfTarget, withoutUserInfo } from './request-target'
import { maskPathParams, maskUserInfo, redactHeaderUrl, redactParamName, redactParamValue, redactUrl, URL_HEADERS } from './url-redact'
import {
  findSingleValueIndex,
  joinFieldValues,
  joinHeaderBlockValues,
  joinRawHeaderValues,
  SINGLE_VALUE_HEADERS,
} from './single-value-headers'
import { encodeNullableString, encodeString, flattenString } from './wire'

/**
 * Maximum length of a header name, in characters. Names have no limit
 * option of their own, and `maxHeaderValueLength` is often set low for values only.
 */
const MAX_HEADER_NAME_LENGTH = 256

/** Name of the header pair that replaces the headers cut at `maxHeaders`. Its value counts them. */
export const TRUNCATED_HEADERS_NAME = 'X-Web-Top-Truncated'

/**
 * Most header names per direction whose encoding an encoder keeps, so that
 * clients sending ever new names cannot grow it without bound. Names past
 * it are encoded on every request.
 */
const MAX_CACHED_HEADER_NAMES = 500

const NON_ASCII = /[^\x00-\x7f]/
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Returns a header value as text. Node's HTTP parser turns each byte of a
 * header into one character (latin1), and writes response headers the same
 * way, so a value sent as UTF-8 arrives as several characters per letter.
 * Such a value is decoded as UTF-8 when its bytes are valid UTF-8; any
 * other value, and one that already has characters above U+00FF (given by
 * the app or by Fastify's `inject()`), is kept as it is.
 */
export function decodeHeaderValue(value: string): string {
  if (!NON_ASCII.test(value)) return value
  for (let index = 0; index < value.length; index++) {
    if (value.charCodeAt(index) > 0xff) return value
  }
  try {
    return strictUtf8.decode(Buffer.from(value, 'latin1'))
  } catch {
    return value
  }
}

export interface CaptureSettings {
  /** When false, request and response headers are not stored. */
  captureHeaders: boolean
  rules: RedactionRules
  limits: SizeLimits
}

/** Fields of a task known when the request arrives. */
export interface RequestPart {
  protocol: string
  host: string | null
  method: string | null
  path: string
  params: Record<string, string | string[]> | null
  uri: string
  client_ip_address: string | null
  request_headers: HeaderPair[] | null
}

/** Fields of a task known when the response is sent. */
export interface ResponsePart {
  status_code: number | null
  status_message: string | null
  response_headers: HeaderPair[] | null
}

export interface RequestFacts {
  /** Client address resolved by the framework behind a trusted proxy; the TCP peer otherwise. */
  clientIp?: string | undefined
  /** Protocol resolved by the framework behind a trusted proxy. */
  protocol?: string | undefined
  /** URL before any framework rewrote `req.url` (Express `originalUrl`). */
  url?: string | undefined
}

/** A header name seen before, with what its pairs are encoded from. */
interface KnownHeader {
  /** The name as recorded: upper-cased for a request header, as sent for a response header. */
  name: string
  secret: boolean
  /** True for `Host`, and for HTTP/2's `:authority`, which takes its place. */
  isHost: boolean
  /**
   * True for an HTTP/2 pseudo-header (`:method`, `:path`, …). Their values
   * are recorded in the task's own fields, so they are left out of the
   * header list, as HTTP/1.1 has no such headers.
   */
  pseudo: boolean
  /** Lower-case name of a header whose value contains a URL (`URL_HEADERS`), whose secrets are masked, else null. */
  urlHeader: string | null
  /** Index of the name in `SINGLE_VALUE_HEADERS`, whose repeats are stored as one pair, else -1. */
  singleValueIndex: number
  /**
   * The last raw value seen and its encoded pair `["NAME","value"]`, also
   * with a leading comma. Clients send the same values request after
   * request, so one entry saves most encodings. Both texts are flat
   * strings, so that a record built from them has few parts to copy when
   * it is written.
   */
  lastValue: string | undefined
  lastPair: string
  lastPairAfterComma: string
}

/** Captures what the request line, socket and headers tell, as an object. */
export function captureRequest(
  req: IncomingMessage,
  settings: CaptureSettings,
  facts: RequestFacts = {},
): RequestPart {
  return JSON.parse(`{${new CaptureEncoder(settings).encodeRequest(req, facts)}}`) as RequestPart
}

/**
 * Captures the status line and headers that the response sent, as an
 * object. Before the headers are sent (or on a response that keeps no
 * header block), it captures the status and headers set so far.
 */
export function captureResponse(res: ServerResponse, settings: CaptureSettings): ResponsePart {
  return JSON.parse(`{${new CaptureEncoder(settings).encodeResponse(res)}}`) as ResponsePart
}

/**
 * Writes the request and response parts of tasks as JSON fields without
 * braces, ready to splice into a record. It keeps the encoding of each
 * header name and of the last value seen for it, so one encoder should
 * serve every request of a recorder.
 */
export class CaptureEncoder {
  readonly settings: CaptureSettings
  readonly #requestHeaders = new Map<string, KnownHeader>()
  readonly #responseHeaders = new Map<string, KnownHeader>()
  /**
   * The raw name and the known header at each position of the last
   * request's and the last response's headers. Clients and apps send their
   * headers in the same order each time, so most lookups end here, without
   * hashing the name for the map.
   */
  readonly #requestNamesByPosition: string[] = []
  readonly #requestHeadersByPosition: KnownHeader[] = []
  readonly #responseNamesByPosition: string[] = []
  readonly #responseHeadersByPosition: KnownHeader[] = []
  #lastStatusLine = ''
  #lastStatusFields = ''
  /** The first Host value that the last `#encodeRequestHeaders()` call met, if any. */
  #hostSeen: string | undefined
  /**
   * Per index of `SINGLE_VALUE_HEADERS`, the number of the last header
   * list that contained that header, so that a repeat is found without
   * allocating anything per request.
   */
  readonly #singleValueListNumbers: number[] = SINGLE_VALUE_HEADERS.map(() => 0)
  #headerListNumber = 0

  constructor(settings: CaptureSettings) {
    this.settings = settings
  }

  /** Encodes the request part: `"protocol":…,"request_headers":[…]`. */
  encodeRequest(req: IncomingMessage, facts: RequestFacts = {}): string {
    const rawUrl = facts.url ?? req.url ?? '/'
    const url = this.#encodeUrl(rawUrl)
    const protocol = facts.protocol ?? (isEncrypted(req) ? 'https' : 'http')
    const clientIp = normalizeIp(facts.clientIp ?? req.socket?.remoteAddress)
    const headers = this.settings.captureHeaders ? this.#encodeRequestHeaders(req) : 'null'
    // With headers captured, Host comes from the same pass over the raw
    // headers, which spares a read of `req.headers` (request-end.ts explains
    // what reads of Express's objects cost).
    const host = hostOfTarget(rawUrl) ?? this.#readHostHeader(req)
    const maxHostLength = this.settings.limits.maxHeaderValueLength

    return (
      `"protocol":${encodeString(protocol)}` +
      `,"host":${host === undefined ? 'null' : encodeString(truncate(host, maxHostLength))}` +
      `,"method":${encodeNullableString(req.method)}` +
      `,${url}` +
      `,"client_ip_address":${encodeNullableString(clientIp)}` +
      `,"request_headers":${headers}`
    )
  }

  /**
   * Returns the Host header, or `:authority`, without any user info before
   * the host, which belongs in no Host header and may carry a password.
   */
  #readHostHeader(req: IncomingMessage): string | undefined {
    const host = this.settings.captureHeaders ? this.#hostSeen : readHost(req)
    return host === undefined ? undefined : withoutUserInfo(host)
  }

  /**
   * Encodes the response part: `"status_code":…,"response_headers":[…]`,
   * from the header block the response sent, or from the status and the
   * headers set so far when it sent none.
   */
  encodeResponse(res: ServerResponse): string {
    const block = readSentHeaderBlock(res)
    if (block !== undefined) return this.#encodeHeaderBlock(block)

    const statusCode = res.statusCode
    // HTTP/2 has no reason phrase, and reading it makes Node 20 print an UnsupportedWarning.
    const reason = res instanceof Http2ServerResponse ? undefined : res.statusMessage
    const status = Number.isInteger(statusCode)
      ? `"status_code":${statusCode},"status_message":${encodeString(formatStatus(statusCode, reason))}`
      : '"status_code":null,"status_message":null'
    const headers = this.settings.captureHeaders
      ? JSON.stringify(captureSetHeaders(res, this.settings))
      : 'null'
    return `${status},"response_headers":${headers}`
  }

  /**
   * Encodes `"path":…,"params":…,"uri":…`, with secret parameters masked.
   * Browsers and HTTP libraries leave the fragment out, but a raw request
   * target can carry one (`/callback#access_token=…`), so the path and the
   * parameters end before it and the URI keeps it masked. For a target in
   * absolute form (`http://host/users/7?q=1`, as sent to proxies), the path
   * is the part after the authority and the URI is the whole target. A
   * path in scheme-relative form (`//user:password@host/`) has its user
   * info masked, as URL parsers read it.
   */
  #encodeUrl(rawUrl: string): string {
    const { limits, rules } = this.settings
    const fragmentStart = rawUrl.indexOf('#')
    const beforeFragment = fragmentStart === -1 ? rawUrl : rawUrl.slice(0, fragmentStart)
    const queryStart = beforeFragment.indexOf('?')
    const target = queryStart === -1 ? beforeFragment : beforeFragment.slice(0, queryStart)
    const path = maskPathParams(maskUserInfo(pathOfTarget(target)), rules)
    const query = queryStart === -1 ? '' : beforeFragment.slice(queryStart + 1)
    const encodedPath = encodeString(truncate(path, limits.maxUrlLength))
    if (query === '' && fragmentStart === -1 && path === target) {
      return `"path":${encodedPath},"params":null,"uri":${encodedPath}`
    }

    const params = query === '' ? 'null' : JSON.stringify(captureParams(query, this.settings))
    const uri = encodeString(truncate(redactUrl(rawUrl, rules, limits.maxUrlLength), limits.maxUrlLength))
    return `"path":${encodedPath},"params":${params},"uri":${uri}`
  }

  /**
   * Encodes the request headers up to `maxHeaders`, without HTTP/2
   * pseudo-headers, and sets `#hostSeen` to the first Host value, read
   * from `req.headers` when the cap cut it off. When a single-value
   * header repeats, it encodes the list again with `joinedValues`, the
   * joined value of each such header, which goes in the pair of its first line.
   */
  #encodeRequestHeaders(req: IncomingMessage, joinedValues?: ReadonlyArray<string | undefined>): string {
    const rawHeaders = req.rawHeaders
    const { maxHeaders } = this.settings.limits
    const listNumber = ++this.#headerListNumber
    let json = '['
    let count = 0
    let index = 0
    this.#hostSeen = undefined

    for (; index + 1 < rawHeaders.length; index += 2) {
      const known = this.#findRequestHeader(rawHeaders[index] as string, index >> 1)
      let value = rawHeaders[index + 1] as string
      if (known.isHost && this.#hostSeen === undefined) this.#hostSeen = value
      if (known.pseudo) continue
      if (known.singleValueIndex !== -1) {
        if (this.#markSeen(known.singleValueIndex, listNumber)) {
          if (joinedValues === undefined) return this.#encodeRequestHeaders(req, joinRawHeaderValues(rawHeaders))
          continue
        }
        value = joinedValues?.[known.singleValueIndex] ?? value
      }
      if (count === maxHeaders) break

      this.#encodePair(known, value)
      json += count === 0 ? known.lastPair : known.lastPairAfterComma
      count++
    }
    if (index + 1 < rawHeaders.length) {
      const pair: HeaderPair = [TRUNCATED_HEADERS_NAME.toUpperCase(), `${(rawHeaders.length - index) / 2} headers`]
      json += `${count === 0 ? '' : ','}${JSON.stringify(pair)}`
      this.#hostSeen ??= readHost(req)
    }
    return `${json}]`
  }

  /** Encodes `HTTP/1.1 200 OK\r\nName: value\r\n…\r\n\r\n` as the response part. */
  #encodeHeaderBlock(block: string): string {
    const statusLineEnd = block.indexOf('\r\n')
    const statusLine = statusLineEnd === -1 ? block : block.slice(0, statusLineEnd)
    const status = this.#encodeStatusLine(statusLine)
    if (!this.settings.captureHeaders) return `${status},"response_headers":null`
    return `${status},"response_headers":${this.#encodeHeaderLines(block, statusLineEnd + 2)}`
  }

  /** Encodes the status fields of a status line. Most responses repeat the previous one's. */
  #encodeStatusLine(statusLine: string): string {
    if (statusLine === this.#lastStatusLine) return this.#lastStatusFields

    const codeStart = statusLine.indexOf(' ') + 1
    const statusCode = Number(statusLine.slice(codeStart, codeStart + 3))
    const reason = statusLine.slice(codeStart + 4)
    const fields = Number.isInteger(statusCode)
      ? `"status_code":${statusCode},"status_message":${encodeString(formatStatus(statusCode, reason))}`
      : '"status_code":null,"status_message":null'
    this.#lastStatusLine = statusLine
    this.#lastStatusFields = flattenString(fields)
    return this.#lastStatusFields
  }

  /**
   * Encodes the header lines of a response head from `start` on, up to
   * `maxHeaders`. Repeats of a single-value header are joined as
   * `#encodeRequestHeaders()` joins them.
   */
  #encodeHeaderLines(block: string, start: number, joinedValues?: ReadonlyArray<string | undefined>): string {
    const { maxHeaders } = this.settings.limits
    const listNumber = ++this.#headerListNumber
    let json = '['
    let count = 0
    let lineStart = start

    while (lineStart > 1 && lineStart < block.length) {
      const lineEnd = block.indexOf('\r\n', lineStart)
      if (lineEnd === -1 || lineEnd === lineStart) break

      const colon = block.indexOf(':', lineStart)
      if (colon !== -1 && colon < lineEnd) {
        const known = this.#findResponseHeader(block, lineStart, colon, count)
        let value = block.slice(colon + 1, lineEnd)
        if (known.singleValueIndex !== -1) {
          if (this.#markSeen(known.singleValueIndex, listNumber)) {
            if (joinedValues === undefined) return this.#encodeHeaderLines(block, start, joinHeaderBlockValues(block, start))
            lineStart = lineEnd + 2
            continue
          }
          value = joinedValues?.[known.singleValueIndex] ?? value
        }
        if (count >= maxHeaders) {
          const pair: HeaderPair = [TRUNCATED_HEADERS_NAME, `${countLines(block, lineStart)} headers`]
          json += `,${JSON.stringify(pair)}`
          break
        }
        this.#encodePair(known, value)
        json += count === 0 ? known.lastPair : known.lastPairAfterComma
        count++
      }
      lineStart = lineEnd + 2
    }
    return `${json}]`
  }

  /** Marks a single-value header as seen in the list numbered `listNumber`, and returns true when it was seen there before. */
  #markSeen(singleValueIndex: number, listNumber: number): boolean {
    const seenBefore = this.#singleValueListNumbers[singleValueIndex] === listNumber
    this.#singleValueListNumbers[singleValueIndex] = listNumber
    return seenBefore
  }

  #findRequestHeader(name: string, position: number): KnownHeader {
    const previous = this.#requestHeadersByPosition[position]
    if (previous !== undefined && name === this.#requestNamesByPosition[position]) return previous

    const known = this.#requestHeaders.get(name) ?? this.#learnHeader(this.#requestHeaders, name, true)
    this.#requestNamesByPosition[position] = name
    this.#requestHeadersByPosition[position] = known
    return known
  }

  /** Finds the header whose name spans `lineStart` to `colon` in the block, first by its position. */
  #findResponseHeader(block: string, lineStart: number, colon: number, position: number): KnownHeader {
    const previousName = this.#responseNamesByPosition[position]
    const previous = this.#responseHeadersByPosition[position]
    const samePlace = previousName !== undefined && colon - lineStart === previousName.length
    if (previous !== undefined && samePlace && block.startsWith(previousName, lineStart)) return previous

    const name = block.slice(lineStart, colon)
    const known = this.#responseHeaders.get(name) ?? this.#learnHeader(this.#responseHeaders, name, false)
    this.#responseNamesByPosition[position] = name
    this.#responseHeadersByPosition[position] = known
    return known
  }

  /**
   * Sets `known.lastPair` to the pair of this value. `rawValue` is trimmed
   * here, so a response line's value may keep its spaces.
   */
  #encodePair(known: KnownHeader, rawValue: string): void {
    if (rawValue === known.lastValue) return

    const { rules, limits } = this.settings
    const text = known.secret ? REDACTED : decodeHeaderValue(rawValue.trim())
    let redacted = text
    if (known.urlHeader !== null && !known.secret) redacted = redactHeaderUrl(known.urlHeader, text, rules)
    else if (known.isHost) redacted = maskHostUserInfo(text)
    const value = truncate(redacted, limits.maxHeaderValueLength)
    const pair: HeaderPair = [known.name, value]
    known.lastValue = rawValue
    known.lastPair = JSON.stringify(pair)
    known.lastPairAfterComma = flattenString(`,${known.lastPair}`)
  }

  /** Returns what a new header name encodes to, kept in `cache` while it has room. */
  #learnHeader(cache: Map<string, KnownHeader>, name: string, upperCase: boolean): KnownHeader {
    const known: KnownHeader = {
      name: truncate(upperCase ? name.toUpperCase() : name, MAX_HEADER_NAME_LENGTH),
      secret: this.settings.rules.isSecretHeader(name.toLowerCase()),
      isHost: upperCase && (name.toLowerCase() === 'host' || name === ':authority'),
      pseudo: name.startsWith(':'),
      urlHeader: URL_HEADERS.has(name.toLowerCase()) ? name.toLowerCase() : null,
      singleValueIndex: findSingleValueIndex(name),
      lastValue: undefined,
      lastPair: '',
      lastPairAfterComma: '',
    }
    if (cache.size < MAX_CACHED_HEADER_NAMES) cache.set(name, known)
    return known
  }
}

/**
 * Returns the part of `query` that contains its first `count` pairs, skipping
 * empty ones as `URLSearchParams` does, so that a query of thousands of
 * pairs is not parsed whole.
 */
function leadingPairs(query: string, count: number): string {
  let pairs = 0
  let start = 0
  while (start < query.length) {
    const end = query.indexOf('&', start)
    if (end === -1) return query
    if (end > start && ++pairs >= count) return query.slice(0, end)
    start = end + 1
  }
  return query
}

/** Returns the IPv4 form of an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`), other addresses as they are. */
export function normalizeIp(address: string | undefined | null): string | null {
  if (address == null || address === '') return null
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  return address
}

/**
 * Collects the query parameters. Every value counts toward `maxParams`,
 * repeated names included. Only the pairs up to `maxParams` are parsed.
 */
function captureParams(query: string, settings: CaptureSettings): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = Object.create(null)
  let count = 0

  for (const [rawName, rawValue] of new URLSearchParams(leadingPairs(query, settings.limits.maxParams))) {
    if (count >= settings.limits.maxParams) break
    count++
    const secret = settings.rules.isSecretParam(rawName)
    const name = truncate(secret ? redactParamName(rawName) : rawName, settings.limits.maxUrlLength)
    const value = secret
      ? REDACTED
      : truncate(redactParamValue(rawValue, settings.rules), settings.limits.maxUrlLength)
    const existing = params[name]

    if (existing === undefined) {
      params[name] = value
    } else if (Array.isArray(existing)) {
      existing.push(value)
    } else {
      params[name] = [existing, value]
    }
  }
  return params
}

/**
 * Returns the header block Node wrote for the response. Headers passed to
 * `writeHead()` alone, as Fastify 4 and 5 pass them, are never stored where
 * `getHeader()` finds them, so the block is the one record of every header
 * sent. `_header` is internal to Node. A tripwire test checks its shape, and
 * responses without it fall back to `getHeader()`.
 */
function readSentHeaderBlock(res: ServerResponse): string | undefined {
  const block = (res as ServerResponse & { _header?: unknown })._header
  return typeof block === 'string' && block.startsWith('HTTP/') ? block : undefined
}

/**
 * Reads the headers set so far through `setHeader()`, in the case the app
 * used. An HTTP/2 response has only lower-case names, and lists its
 * `:status` pseudo-header once sent, which is left out.
 */
function captureSetHeaders(res: ServerResponse, settings: CaptureSettings): HeaderPair[] {
  const { limits, rules } = settings
  const pairs: HeaderPair[] = []

  // OutgoingMessage.getRawHeaderNames() (Node >= 15.13) keeps the case the app used.
  const { getRawHeaderNames } = res as ServerResponse & { getRawHeaderNames?(): string[] }
  const names = typeof getRawHeaderNames === 'function' ? getRawHeaderNames.call(res) : res.getHeaderNames()
  for (const name of names) {
    if (name.startsWith(':')) continue
    const lowerCaseName = name.toLowerCase()
    const secret = rules.isSecretHeader(lowerCaseName)
    const isUrl = URL_HEADERS.has(lowerCaseName)
    const value = res.getHeader(name)
    let values = Array.isArray(value) ? value : [value]
    // A single-value header set as a list (`setHeader('Content-Length', ['2', '2'])`) is stored as one pair.
    if (values.length > 1 && findSingleValueIndex(name) !== -1) values = [joinFieldValues(lowerCaseName, values.map(String))]

    for (const item of values) {
      const text = isUrl ? redactHeaderUrl(lowerCaseName, String(item), rules) : String(item)
      pairs.push([name, secret ? REDACTED : truncate(text, limits.maxHeaderValueLength)])
    }
  }
  if (pairs.length <= limits.maxHeaders) return pairs

  const capped = pairs.slice(0, limits.maxHeaders)
  capped.push([TRUNCATED_HEADERS_NAME, `${pairs.length - limits.maxHeaders} headers`])
  return capped
}

function formatStatus(statusCode: number, reason: string | undefined): string {
  const text = reason || STATUS_CODES[statusCode] || ''
  return text === '' ? String(statusCode) : `${statusCode} ${text}`
}

/** Counts the header lines from `start` to the blank line that ends the block. */
function countLines(block: string, start: number): number {
  const end = block.indexOf('\r\n\r\n', start)
  const body = block.slice(start, end === -1 ? block.length : end)
  return body === '' ? 0 : body.split('\r\n').length
}

/** Returns the Host header, or HTTP/2's `:authority`, which takes its place. */
function readHost(req: IncomingMessage): string | undefined {
  const { headers } = req
  const host = headers.host ?? headers[':authority']
  return typeof host === 'string' ? host : undefined
}

function isEncrypted(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true
}
