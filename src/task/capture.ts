/**
 * Builds the request part and the response part of an HTTP task from
 * Node's `IncomingMessage` and `ServerResponse`. Knows no framework.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { HeaderPair } from './http-task'
import { REDACTED, truncate, type RedactionRules, type SizeLimits } from './redact'

/** Name of the header pair that replaces the headers cut at `maxHeaders`. Its value counts them. */
export const TRUNCATED_HEADERS_NAME = 'X-Web-Top-Truncated'

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

/** Captures what the request line, socket and headers tell. */
export function captureRequest(
  req: IncomingMessage,
  settings: CaptureSettings,
  facts: RequestFacts = {},
): RequestPart {
  const { limits, rules } = settings
  const rawUrl = facts.url ?? req.url ?? '/'
  const queryStart = rawUrl.indexOf('?')
  const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart)
  const query = queryStart === -1 ? '' : rawUrl.slice(queryStart + 1)
  const params = query === '' ? null : captureParams(query, settings)

  return {
    protocol: facts.protocol ?? (isEncrypted(req) ? 'https' : 'http'),
    host: truncateOrNull(req.headers.host, limits.maxHeaderValueLength),
    method: req.method ?? null,
    path: truncate(path, limits.maxUrlLength),
    params,
    uri: truncate(params === null ? path : `${path}?${formatQuery(query, rules)}`, limits.maxUrlLength),
    client_ip_address: normalizeIp(facts.clientIp ?? req.socket?.remoteAddress),
    request_headers: settings.captureHeaders ? captureRequestHeaders(req.rawHeaders, settings) : null,
  }
}

/**
 * Captures the status line and headers that the response sent. Before the
 * headers are sent (or on a response that keeps no header block), it
 * captures the status and headers set so far.
 */
export function captureResponse(res: ServerResponse, settings: CaptureSettings): ResponsePart {
  const block = readSentHeaderBlock(res)
  if (block !== undefined) return parseHeaderBlock(block, settings)

  const statusCode = res.statusCode
  return {
    status_code: statusCode,
    status_message: formatStatus(statusCode, res.statusMessage),
    response_headers: settings.captureHeaders ? captureSetHeaders(res, settings) : null,
  }
}

/** Returns the IPv4 form of an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`), other addresses as they are. */
export function normalizeIp(address: string | undefined | null): string | null {
  if (address == null || address === '') return null
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  return address
}

/** Collects the query parameters. Every value counts toward `maxParams`, repeated names included. */
function captureParams(query: string, settings: CaptureSettings): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = Object.create(null)
  let count = 0

  for (const [name, rawValue] of new URLSearchParams(query)) {
    if (count >= settings.limits.maxParams) break
    count++
    const value = settings.rules.isSecretParam(name)
      ? REDACTED
      : truncate(rawValue, settings.limits.maxUrlLength)
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

/** Rewrites a query string with the values of secret parameters masked. */
function formatQuery(query: string, rules: RedactionRules): string {
  return query
    .split('&')
    .map((pair) => {
      const separator = pair.indexOf('=')
      const rawName = separator === -1 ? pair : pair.slice(0, separator)
      return rules.isSecretParam(safeDecode(rawName)) ? `${rawName}=${REDACTED}` : pair
    })
    .join('&')
}

function captureRequestHeaders(rawHeaders: string[], settings: CaptureSettings): HeaderPair[] {
  const { limits, rules } = settings
  const pairs: HeaderPair[] = []
  const end = Math.min(rawHeaders.length, limits.maxHeaders * 2)

  for (let i = 0; i + 1 < end; i += 2) {
    const name = rawHeaders[i] as string
    const value = rules.isSecretHeader(name.toLowerCase())
      ? REDACTED
      : truncate(rawHeaders[i + 1] as string, limits.maxHeaderValueLength)
    pairs.push([name.toUpperCase(), value])
  }
  if (rawHeaders.length > end) {
    pairs.push([TRUNCATED_HEADERS_NAME.toUpperCase(), `${(rawHeaders.length - end) / 2} headers`])
  }
  return pairs
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

/** Parses `HTTP/1.1 200 OK\r\nName: value\r\n…\r\n\r\n` into the response part of a task. */
function parseHeaderBlock(block: string, settings: CaptureSettings): ResponsePart {
  const statusLineEnd = block.indexOf('\r\n')
  const statusLine = statusLineEnd === -1 ? block : block.slice(0, statusLineEnd)
  const codeStart = statusLine.indexOf(' ') + 1
  const statusCode = Number(statusLine.slice(codeStart, codeStart + 3))
  const reason = statusLine.slice(codeStart + 4)

  return {
    status_code: Number.isInteger(statusCode) ? statusCode : null,
    status_message: Number.isInteger(statusCode) ? formatStatus(statusCode, reason) : null,
    response_headers: settings.captureHeaders
      ? parseHeaderLines(block, statusLineEnd + 2, settings)
      : null,
  }
}

function parseHeaderLines(block: string, start: number, settings: CaptureSettings): HeaderPair[] {
  const { limits, rules } = settings
  const pairs: HeaderPair[] = []
  let lineStart = start

  while (lineStart > 1 && lineStart < block.length) {
    const lineEnd = block.indexOf('\r\n', lineStart)
    if (lineEnd === -1 || lineEnd === lineStart) break

    const colon = block.indexOf(':', lineStart)
    if (colon !== -1 && colon < lineEnd) {
      if (pairs.length >= limits.maxHeaders) {
        pairs.push([TRUNCATED_HEADERS_NAME, `${countLines(block, lineStart)} headers`])
        break
      }
      const name = block.slice(lineStart, colon)
      const value = rules.isSecretHeader(name.toLowerCase())
        ? REDACTED
        : truncate(block.slice(colon + 1, lineEnd).trim(), limits.maxHeaderValueLength)
      pairs.push([name, value])
    }
    lineStart = lineEnd + 2
  }
  return pairs
}

/** Reads the headers set so far through `setHeader()`, in the case the app used. */
function captureSetHeaders(res: ServerResponse, settings: CaptureSettings): HeaderPair[] {
  const { limits, rules } = settings
  const pairs: HeaderPair[] = []

  // OutgoingMessage.getRawHeaderNames() (Node >= 15.13) keeps the case the app used.
  const names = (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames()
  for (const name of names) {
    const secret = rules.isSecretHeader(name.toLowerCase())
    const value = res.getHeader(name)
    const values = Array.isArray(value) ? value : [value]

    for (const item of values) {
      pairs.push([name, secret ? REDACTED : truncate(String(item), limits.maxHeaderValueLength)])
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

function isEncrypted(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true
}

function truncateOrNull(value: string | undefined, maxLength: number): string | null {
  return value === undefined ? null : truncate(value, maxLength)
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return value
  }
}
