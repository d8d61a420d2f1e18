/**
 * Values that readers compute from a record: durations, the original client
 * address, the country, the user agent and the response length.
 */
import type { HeaderPair, HttpTask } from './http-task'
import { parseIsoTime } from './time'

/** Tag that a writer sets to say where `client_ip_address` came from: `socket` or `proxy`. */
export const CLIENT_IP_SOURCE_TAG = 'web_top.client_ip_source'

/** Returns the first value of a header, compared case-insensitively, or `undefined`. */
export function findHeader(headers: readonly HeaderPair[] | null | undefined, name: string): string | undefined {
  if (!headers) return undefined
  const wanted = name.toLowerCase()
  for (const pair of headers) {
    if (pair[0].toLowerCase() === wanted) return pair[1]
  }
  return undefined
}

/** Returns the duration in milliseconds: end (or `nowMs` while active) minus start. */
export function getDurationMs(task: HttpTask, nowMs: number): number | undefined {
  const started = parseIsoTime(task.started_at)
  if (started === undefined) return undefined
  const ended = task.ended_at == null ? nowMs : parseIsoTime(task.ended_at)
  return ended === undefined ? undefined : Math.max(0, ended - started)
}

/** Returns how long ago the task ended, in milliseconds, or `undefined` while active. */
export function getAgoMs(task: HttpTask, nowMs: number): number | undefined {
  const ended = parseIsoTime(task.ended_at)
  return ended === undefined ? undefined : Math.max(0, nowMs - ended)
}

/**
 * Returns the original client address: the first `X-Forwarded-For` entry,
 * else `client_ip_address`. A record whose writer says the address came
 * from the socket (no trusted proxy) keeps the socket address, so a
 * spoofed header cannot change what is shown.
 */
export function getOriginalIp(task: HttpTask): string | undefined {
  const direct = task.client_ip_address ?? undefined
  if (task.tags?.[CLIENT_IP_SOURCE_TAG] !== undefined) return direct

  const forwarded = findHeader(task.request_headers, 'x-forwarded-for')
  const first = forwarded?.split(',')[0]?.trim()
  return first ? first : direct
}

/** Returns the two-letter country from the `CF-IPCOUNTRY` header. */
export function getCountry(task: HttpTask): string | undefined {
  return findHeader(task.request_headers, 'cf-ipcountry')
}

export function getUserAgent(task: HttpTask): string | undefined {
  return findHeader(task.request_headers, 'user-agent')
}

/** Returns the response length in bytes from `Content-Length`, or `undefined`. */
export function getContentLength(task: HttpTask): number | undefined {
  const value = findHeader(task.response_headers, 'content-length')
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined
  return Number(value)
}
