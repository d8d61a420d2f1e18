/**
 * Builds the request part and the response part of an HTTP task from
 * Node's `IncomingMessage` and `ServerResponse`. Knows no framework.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { HeaderPair } from './http-task'
import { REDACTED, truncate, type RedactionRules, type SizeLimits } from './redact'

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

/** Captures the status and headers that the response sent, or is about to send. */
export function captureResponse(
  res: ServerResponse,
  settings: CaptureSettings,
  statusCode: number | null = res.statusCode,
): ResponsePart {
  if (statusCode === null) {
    return { status_code: null, status_message: null, response_headers: null }
  }

  const reason = res.statusMessage || STATUS_CODES[statusCode] || ''
  return {
    status_code: statusCode,
    status_message: reason === '' ? String(statusCode) : `${statusCode} ${reason}`,
    response_headers: settings.captureHeaders ? captureResponseHeaders(res, settings) : null,
  }
}

/** Returns the IPv4 form of an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`), other addresses as they are. */
export function normalizeIp(address: string | undefined | null): string | null {
  if (address == null || address === '') return null
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  return address
}

function captureParams(query: string, settings: CaptureSettings): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = Object.create(null)
  let count = 0

  for (const [name, rawValue] of new URLSearchParams(query)) {
    if (count >= settings.limits.maxParams) break
    const value = settings.rules.isSecretParam(name)
      ? REDACTED
      : truncate(rawValue, settings.limits.maxUrlLength)
    const existing = params[name]

    if (existing === undefined) {
      params[name] = value
      count++
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
  if (rawHeaders.length > end) pairs.push(['X-WEB-TOP-TRUNCATED', `${(rawHeaders.length - end) / 2} headers`])
  return pairs
}

function captureResponseHeaders(res: ServerResponse, settings: CaptureSettings): HeaderPair[] {
  const { limits, rules } = settings
  const pairs: HeaderPair[] = []

  // OutgoingMessage.getRawHeaderNames() (Node >= 15.13) keeps the case the app used.
  const names = (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames()
  for (const name of names) {
    const secret = rules.isSecretHeader(name.toLowerCase())
    const value = res.getHeader(name)
    const values = Array.isArray(value) ? value : [value]

    for (const item of values) {
      if (pairs.length >= limits.maxHeaders) {
        pairs.push(['X-Web-Top-Truncated', 'response headers'])
        return pairs
      }
      pairs.push([name, secret ? REDACTED : truncate(String(item), limits.maxHeaderValueLength)])
    }
  }
  return pairs
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
