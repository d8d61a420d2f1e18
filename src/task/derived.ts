/**
 * Values that readers compute from a record: durations, the original client
 * address, the country, the user agent and the response length.
 */
import { hasEnded, type HeaderPair, type HttpTask } from './http-task'
import { isBeyondClockSkew, parseIsoTime, roundToMicroseconds } from './time'

/** Tag that a writer sets to say where `client_ip_address` came from: `socket` or `proxy`. */
export const CLIENT_IP_SOURCE_TAG = 'web_top.client_ip_source'

/**
 * Tag, set to `true`, on the active record of a request that
 * `completedSampleRate` left out. Such a record is stored and deleted
 * without a publish on `task_updates`, so readers that rely on the updates
 * read it again at every refresh.
 */
export const SAMPLED_OUT_TAG = 'web_top.sampled_out'

/** Returns whether `task` is the active record of a request left out by sampling (`SAMPLED_OUT_TAG`). */
export function isSampledOut(task: HttpTask): boolean {
  return task.tags?.[SAMPLED_OUT_TAG] === 'true'
}

/** Returns the first value of a header, compared case-insensitively, or `undefined`. */
export function findHeader(headers: readonly HeaderPair[] | null | undefined, name: string): string | undefined {
  if (!headers) return undefined
  const wanted = name.toLowerCase()
  for (const pair of headers) {
    if (pair[0].toLowerCase() === wanted) return pair[1]
  }
  return undefined
}

/**
 * Returns the duration in milliseconds: end (or `nowMs` while active) minus
 * start. Returns `undefined` when a time does not parse or lies beyond the
 * clock skew allowed after `nowMs` (`MAX_CLOCK_SKEW_MS`), and for a task
 * that ended (`hasEnded`) without an end time, or with one before its start
 * time, whose duration is unknown. An active task that starts after `nowMs`,
 * within the allowed skew, has run for 0 ms. The result is rounded to whole
 * microseconds (`roundToMicroseconds`).
 */
export function getDurationMs(task: HttpTask, nowMs: number): number | undefined {
  const started = readPastTime(task.started_at, nowMs)
  if (started === undefined) return undefined
  if (!hasEnded(task)) return Math.max(0, roundToMicroseconds(nowMs - started))

  // An end before the start comes from a clock that was set back during the
  // request, or from two hosts whose clocks differ, so 0 would be made up.
  const ended = readPastTime(task.ended_at, nowMs)
  return ended === undefined || ended < started ? undefined : roundToMicroseconds(ended - started)
}

/**
 * Returns how long ago the task ended, in milliseconds, or `undefined` while
 * active, or when its end time does not parse or lies beyond the clock skew.
 */
export function getAgoMs(task: HttpTask, nowMs: number): number | undefined {
  const ended = readPastTime(task.ended_at, nowMs)
  return ended === undefined ? undefined : Math.max(0, nowMs - ended)
}

/** Parses a record's time, or returns `undefined` when it lies beyond the clock skew after `nowMs`. */
function readPastTime(value: unknown, nowMs: number): number | undefined {
  const epochMs = parseIsoTime(value)
  return epochMs === undefined || isBeyondClockSkew(epochMs, nowMs) ? undefined : epochMs
}

/**
 * Returns the original client address: the first `X-Forwarded-For` entry,
 * else `client_ip_address`. A record whose writer tagged the address as coming
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

/**
 * A value of `CF-IPCOUNTRY`: an ISO 3166-1 alpha-2 code, or Cloudflare's
 * `XX` (unknown) or `T1` (Tor). Anything else, such as a 100-character
 * header a client sent, is not a country.
 */
const COUNTRY_CODE = /^[A-Za-z][A-Za-z0-9]$/

/**
 * Returns the two-character country code from the `CF-IPCOUNTRY` header,
 * or `undefined` for a value of any other form. A record
 * whose writer tagged the client address as coming from the socket (no trusted
 * proxy) returns `undefined`, because the client itself may have sent that
 * header. Records without the tag, as the Python tracker writes them, keep
 * the header's value.
 */
export function getCountry(task: HttpTask): string | undefined {
  if (task.tags?.[CLIENT_IP_SOURCE_TAG] === 'socket') return undefined
  const country = findHeader(task.request_headers, 'cf-ipcountry')?.trim()
  return country !== undefined && COUNTRY_CODE.test(country) ? country : undefined
}

/**
 * Returns the status code when it is an integer from 100 to 999, else
 * `undefined`. HTTP status codes have three digits, and Node 20's
 * `res.writeHead()` throws for a code below 100 or above 999. So a value
 * such as -5 or 1e+308 comes from a broken writer and is no status to show.
 */
export function getStatusCode(task: HttpTask): number | undefined {
  const status = task.status_code
  if (typeof status !== 'number' || !Number.isInteger(status)) return undefined
  return status >= 100 && status <= 999 ? status : undefined
}

/**
 * Returns the Host of the request: the `host` field, else the Host request
 * header, which is where the Python tracker keeps it while `host` is null.
 */
export function getRequestHost(task: HttpTask): string | undefined {
  return task.host ?? findHeader(task.request_headers, 'host')
}

export function getUserAgent(task: HttpTask): string | undefined {
  return findHeader(task.request_headers, 'user-agent')
}

/**
 * Returns the length of the response body in bytes, from `Content-Length`,
 * or `undefined` without a valid one. A response to HEAD, or with status
 * 1xx, 204 or 304, has no body (RFC 9110 section 6.4.1), so it gets 0
 * whatever its `Content-Length` header contains.
 */
export function getResponseBodyLength(task: HttpTask): number | undefined {
  const status = task.status_code
  if (task.method === 'HEAD' || (typeof status === 'number' && ((status >= 100 && status < 200) || status === 204 || status === 304))) {
    return typeof status === 'number' ? 0 : undefined
  }
  const value = findHeader(task.response_headers, 'content-length')
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined
  return Number(value)
}

/** Class of an HTTP status: `2xx`, `3xx`, `4xx` or `5xx`; `undefined` for none or any other number. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx'

/** Returns the class of the task's status code, or `undefined` when it has none in 100..599. */
export function getStatusClass(task: HttpTask): StatusClass | undefined {
  const status = task.status_code
  if (typeof status !== 'number' || status < 100 || status > 599) return undefined
  return `${Math.floor(status / 100)}xx` as StatusClass
}

/** Returns the route pattern (`task_name`), such as `/users/:id`, or `undefined`. */
export function getRoute(task: HttpTask): string | undefined {
  return task.task_name ?? undefined
}

/**
 * Returns `host/pid` of the process that recorded the task, or `undefined`
 * when the record names no process. The threads of one process, such as the
 * worker threads of a Python server, share it, so readers count and group
 * processes by it.
 */
export function getProcessName(task: HttpTask): string | undefined {
  if (task.process_id == null) return undefined
  return `${task.host_name ?? '?'}/${task.process_id}`
}

/**
 * Returns `getProcessName` with `/thread` appended for a thread other than
 * the main one, or `undefined` when the record names no process.
 */
export function getProcessLabel(task: HttpTask): string | undefined {
  const process = getProcessName(task)
  if (process === undefined) return undefined
  const thread = task.thread_id == null || task.thread_id === 0 ? '' : `/${task.thread_id}`
  return `${process}${thread}`
}

/** Returns the end time in epoch milliseconds, or `undefined` while active or unreadable. */
export function getEndedAtMs(task: HttpTask): number | undefined {
  return parseIsoTime(task.ended_at)
}

/**
 * Returns a key that names one task across records: its `task_id` with the
 * host, process and thread, or, for a record without one, the process,
 * internal id and start time. The host, process and thread are part of the
 * key because task ids such as the Python tracker's (a small number, or an
 * object's `id()`) may be unique only within one thread. The start record
 * and the end record of a task have the same key.
 */
export function getTaskKey(task: HttpTask): string {
  if (task.task_id != null && task.task_id !== '') {
    return `id:${String(task.task_id)}@${task.host_name ?? ''}/${task.process_id ?? ''}/${task.thread_id ?? ''}`
  }
  const parts = [task.host_name, task.process_id, task.thread_id, task.process_internal_id]
  return `at:${parts.map((part) => part ?? '').join('/')}@${task.started_at ?? ''}`
}

/** Returns a key that names one completed record: the task key plus its end time. */
export function getCompletedKey(task: HttpTask): string {
  return `${getTaskKey(task)}#${task.ended_at ?? ''}`
}
