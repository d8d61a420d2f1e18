/**
 * A read-only tracker for `http://` and `https://` URLs: it reads the tasks
 * that an app serves from its tracker endpoint (`topTrackerEndpoint`,
 * `topTrackerRoute`, or web-top-node's `TrackerServer`).
 *
 * The key goes in the `X-API-Key` header, so that it stays out of URLs,
 * which proxies and access logs store. It goes in the `api-key` query
 * parameter only when the caller wrote it there in the URL, which is how to
 * read servers that accept only the parameter (web-top-node), or when
 * fetch() cannot send it in a header. A 401 or 403 is reported, never
 * retried with the key in the URL.
 */
import { INVALID_OPTION, type WebTopError } from '../errors'
import { findRecordProblem, formatByteLimit, normalizeTask } from '../task/wire'
import { guardLogger, silentLogger, type Logger } from '../util/logger'
import { findParsedSizeProblem } from './json-size'
import { addActiveSkip, addCompleted, addCompletedSkip, buildSnapshot } from './snapshot'
import type { ReadOptions, TaskSnapshot, TaskUpdateListener, Tracker, TrackerStats } from './tracker'

export interface HttpTrackerOptions {
  /**
   * Endpoint URL, such as `http://127.0.0.1:3000/web-top`. An `api-key`
   * query parameter in it is used as the key, and makes the tracker send
   * the key in that parameter instead of the `X-API-Key` header.
   */
  url: string
  /**
   * Key the endpoint expects.
   * @default the URL's `api-key` parameter, else process.env.TOP_WEB_API_KEY
   */
  apiKey?: string | undefined
  /**
   * Time allowed for each request, body included, in milliseconds.
   * @default 5000
   */
  timeoutMs?: number | undefined
  /** Logger for a warning on the first write, because an app that records to an HTTP URL loses its tasks. */
  logger?: Logger | undefined
}

/** Reason a read failed, for callers that branch on it. */
export type HttpTrackerErrorCode =
  | 'CONNECTION_FAILED'
  | 'BLOCKED_PORT'
  | 'TIMEOUT'
  | 'MISSING_API_KEY'
  | 'INVALID_API_KEY'
  | 'HTTP_STATUS'
  | 'INVALID_RESPONSE'
  | 'RESPONSE_TOO_LARGE'
  | 'READ_ONLY'

/** A failed read or an unsupported operation. The message is one line and never contains the key. */
export class HttpTrackerError extends Error {
  override readonly name = 'HttpTrackerError'
  readonly code: HttpTrackerErrorCode
  /** The endpoint URL without the key. */
  readonly url: string
  readonly statusCode: number | undefined

  constructor(code: HttpTrackerErrorCode, url: string, message: string, statusCode?: number) {
    super(`web-top: ${message}`)
    this.code = code
    this.url = url
    this.statusCode = statusCode
  }
}

const DEFAULT_TIMEOUT_MS = 5_000

/** Largest response body read, so that a wrong URL cannot fill the reader's memory. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024

const API_KEY_PARAM = 'api-key'

/** Text that fetch() sends as a header value: Latin-1 without NUL, CR and LF. */
const HEADER_VALUE = /^[^\0\r\n\u0100-\uffff]*$/

type Action = 'active-tasks' | 'completed-tasks'


export class HttpTracker implements Tracker {
  readonly kind = 'http'

  readonly #endpoint: URL
  readonly #displayUrl: string
  readonly #apiKey: string
  readonly #timeoutMs: number
  readonly #closed = new AbortController()
  readonly #logger: Logger
  readonly #keyIn: 'header' | 'query'
  /** Whether the key is the URL's `api-key` parameter, so that messages can name it. */
  readonly keyFromUrl: boolean
  #dropped = 0

  constructor(options: HttpTrackerOptions, env: NodeJS.ProcessEnv = process.env) {
    const endpoint = parseEndpoint(options.url)
    const urlKey = endpoint.searchParams.get(API_KEY_PARAM)
    endpoint.searchParams.delete(API_KEY_PARAM)
    endpoint.password = ''
    endpoint.username = ''

    this.#endpoint = endpoint
    this.#displayUrl = endpoint.toString()
    this.#apiKey = resolveReaderKey(options.apiKey ?? urlKey ?? env.TOP_WEB_API_KEY, this.#displayUrl)
    // A key written in the URL is the caller's choice of the query parameter.
    // fetch() rejects a header value with a character above U+00FF, or NUL,
    // CR or LF inside it, and trims CR and LF at its ends. Such a key goes in
    // the query too, where the endpoint accepts it.
    const keyInUrl = urlKey !== null && urlKey !== ''
    this.keyFromUrl = keyInUrl && options.apiKey === undefined
    this.#keyIn = keyInUrl || !HEADER_VALUE.test(this.#apiKey) ? 'query' : 'header'
    this.#timeoutMs = resolveTimeout(options.timeoutMs)
    this.#logger = options.logger === undefined ? silentLogger : guardLogger(options.logger)
  }

  /** The endpoint URL without the key, safe to print. */
  get url(): string {
    return this.#displayUrl
  }

  /** Drops the write and counts it: the endpoint cannot be written to. */
  recordStart(): void {
    this.#dropWrite()
  }

  /** Drops the write and counts it: the endpoint cannot be written to. */
  recordEnd(): void {
    this.#dropWrite()
  }

  async removeProcessors(): Promise<number> {
    return 0
  }

  async read(options: ReadOptions = {}): Promise<TaskSnapshot> {
    // The endpoint rejects limit=0, so a read that wants no completed tasks does not request them.
    const [active, completed] = await Promise.all([
      this.#fetchAction('active-tasks'),
      options.completedLimit === 0 ? [] : this.#fetchAction('completed-tasks', options.completedLimit),
    ])
    if (active === null || typeof active !== 'object' || Array.isArray(active)) {
      throw this.#invalidResponse('active-tasks', 'JSON that is not an object of processor id to task')
    }
    if (!Array.isArray(completed)) {
      throw this.#invalidResponse('completed-tasks', 'JSON that is not an array of tasks')
    }

    const limit = options.completedLimit ?? completed.length
    const maxRecordBytes = options.maxRecordBytes ?? Infinity
    return buildTaskSnapshot(Object.entries(active), completed.slice(0, limit), maxRecordBytes)
  }

  /**
   * Returns at once: the endpoint has no stream of updates, so a reader
   * that wants fresh data calls `read()` at an interval. The listener is never called.
   */
  async subscribe(_listener: TaskUpdateListener): Promise<() => Promise<void>> {
    return async () => {}
  }

  async clear(): Promise<void> {
    throw new HttpTrackerError(
      'READ_ONLY',
      this.#displayUrl,
      `Cannot clear ${this.#displayUrl}: the HTTP tracker endpoint is read-only. ` +
        'Clear the tracker the app writes to, or restart an app that uses memory://.',
    )
  }

  async flush(): Promise<void> {}

  stats(): TrackerStats {
    return { written: 0, dropped: this.#dropped, pendingBytes: 0 }
  }

  /** Aborts the requests in flight; reads after this fail. */
  async close(): Promise<void> {
    this.#closed.abort()
  }

  #dropWrite(): void {
    if (this.#dropped++ > 0) return
    this.#logger.warn(
      { url: this.#displayUrl },
      'web-top cannot record to an http:// tracker URL, which is read-only; tasks are dropped. ' +
        'Record to redis:// or memory:// and serve it with topTrackerEndpoint',
    )
  }

  /** Fetches one action and parses its JSON. The timeout covers the body too. */
  async #fetchAction(action: Action, limit?: number): Promise<unknown> {
    const abort = this.#requestAbort()
    try {
      return await this.#readJson(await this.#request(action, limit, abort.signal), action)
    } finally {
      abort.release()
    }
  }

  /** Sends one GET. */
  async #request(action: Action, limit: number | undefined, signal: AbortSignal): Promise<Response> {
    const url = new URL(this.#endpoint)
    url.searchParams.set('action', action)
    if (limit !== undefined) url.searchParams.set('limit', String(limit))
    if (this.#keyIn === 'query') url.searchParams.set(API_KEY_PARAM, this.#apiKey)

    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.#keyIn === 'header') headers['x-api-key'] = this.#apiKey

    try {
      return await fetch(url, { headers, redirect: 'error', signal })
    } catch (err) {
      throw this.#connectionError(err)
    }
  }

  /**
   * Returns a signal that aborts on timeout or on close(), and the function
   * that stops both. Not AbortSignal.any(): on Node 20 (checked on 20.20.2)
   * a garbage collection can cut the signal it returns off from its
   * sources, and the fetch then waits for the server forever.
   */
  #requestAbort(): { signal: AbortSignal; release: () => void } {
    const controller = new AbortController()
    const timer = setTimeout(() => {
      controller.abort(new DOMException(`timed out after ${this.#timeoutMs} ms`, 'TimeoutError'))
    }, this.#timeoutMs)
    const closed = this.#closed.signal
    const onClose = () => controller.abort(closed.reason)
    if (closed.aborted) onClose()
    else closed.addEventListener('abort', onClose, { once: true })
    return {
      signal: controller.signal,
      release: () => {
        clearTimeout(timer)
        closed.removeEventListener('abort', onClose)
      },
    }
  }

  async #readJson(response: Response, action: Action): Promise<unknown> {
    if (!response.ok) {
      await discardBody(response)
      throw this.#statusError(response)
    }

    let text: string | null
    try {
      text = await readBody(response)
    } catch (err) {
      throw this.#connectionError(err)
    }
    if (text === null) {
      // The endpoint's reply grows with the records the app keeps and their headers.
      const advice =
        action === 'completed-tasks'
          ? 'read fewer completed tasks (completedLimit in read())'
          : "lower the app's limits option, so that its records are smaller"
      throw new HttpTrackerError(
        'RESPONSE_TOO_LARGE',
        this.#displayUrl,
        `${this.#displayUrl} returned a body larger than ${formatByteLimit(MAX_BODY_BYTES)} for action=${action}; ${advice}`,
      )
    }

    try {
      return JSON.parse(text)
    } catch {
      const contentType = response.headers.get('content-type')?.split(';')[0]
      const received = contentType ? `content type ${contentType}` : 'no content type'
      throw this.#invalidResponse(action, `not JSON (${received})`)
    }
  }

  #invalidResponse(action: Action, problem: string): HttpTrackerError {
    return new HttpTrackerError(
      'INVALID_RESPONSE',
      this.#displayUrl,
      `${this.#displayUrl} returned ${problem} for action=${action}; ` +
        'check that the URL points at the web-top tracker endpoint',
    )
  }

  #statusError(response: Response): HttpTrackerError {
    const url = this.#displayUrl
    const status = `HTTP ${response.status}${response.statusText === '' ? '' : ` ${response.statusText}`}`
    if (response.status === 401) {
      return new HttpTrackerError(
        'MISSING_API_KEY',
        url,
        `${url} requires an API key (${status}); set TOP_WEB_API_KEY to the key the app was started with`,
        401,
      )
    }
    if (response.status === 403) {
      return new HttpTrackerError(
        'INVALID_API_KEY',
        url,
        `${url} rejected the API key (${status}); set TOP_WEB_API_KEY to the key the app was started with`,
        403,
      )
    }
    const hint = response.status === 404 ? '; check the endpoint path in the URL' : ''
    return new HttpTrackerError('HTTP_STATUS', url, `${url} returned ${status}${hint}`, response.status)
  }

  #connectionError(err: unknown): HttpTrackerError {
    const url = this.#displayUrl
    if (isTimeout(err)) {
      return new HttpTrackerError('TIMEOUT', url, `Reading ${url} timed out after ${this.#timeoutMs} ms`)
    }
    if (this.#closed.signal.aborted) {
      return new HttpTrackerError('CONNECTION_FAILED', url, `Reading ${url} failed: the tracker was closed`)
    }
    if (isBlockedPort(err)) {
      return new HttpTrackerError(
        'BLOCKED_PORT',
        url,
        `Node's fetch() does not connect to ${url} because port ${this.#endpoint.port} is on the ` +
          'Fetch standard\'s list of "bad ports" (such as 6000, 6665-6669 and 10080); ' +
          'serve the tracker endpoint on another port',
      )
    }
    const reason = describeNetworkError(err)
    return new HttpTrackerError(
      'CONNECTION_FAILED',
      url,
      `Cannot connect to ${url} (${reason}); check that the app is running and the URL is right`,
    )
  }
}

function parseEndpoint(url: string): URL {
  let endpoint: URL
  try {
    endpoint = new URL(url)
  } catch {
    throw invalidReaderOption(TypeError, 'The tracker URL is not a valid http:// or https:// URL')
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
    throw invalidReaderOption(
      TypeError,
      `The tracker URL must start with http:// or https:// (received ${endpoint.protocol}//)`,
    )
  }
  return endpoint
}

function resolveReaderKey(key: unknown, displayUrl: string): string {
  if (typeof key === 'string' && key !== '') return key
  if (key === undefined || key === '') {
    throw invalidReaderOption(
      TypeError,
      `An API key is needed to read ${displayUrl}: pass the apiKey option (--api-key in web-top-cli) or set ` +
        'TOP_WEB_API_KEY to the key the app was started with',
    )
  }
  throw invalidReaderOption(TypeError, `The \`apiKey\` option must be a string (received ${typeof key})`)
}

function resolveTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return DEFAULT_TIMEOUT_MS
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalidReaderOption(
      RangeError,
      `The \`timeoutMs\` option must be a positive number (received ${String(timeoutMs)})`,
    )
  }
  return timeoutMs
}

function invalidReaderOption(ErrorClass: typeof TypeError | typeof RangeError, message: string): WebTopError {
  return Object.assign(new ErrorClass(`web-top: ${message}`), { code: INVALID_OPTION } as const)
}

/**
 * Decodes the two JSON replies into a snapshot, leaving out records that
 * are not task records or are longer than `maxRecordBytes` as JSON text.
 */
function buildTaskSnapshot(
  activeEntries: Array<[string, unknown]>,
  completed: unknown[],
  maxRecordBytes: number,
): TaskSnapshot {
  const snapshot = buildSnapshot([], [], null)
  const findProblem = (record: unknown) =>
    findRecordProblem(record) ?? findParsedSizeProblem(record, maxRecordBytes)

  for (const [processorId, record] of activeEntries) {
    const problem = findProblem(record)
    if (problem === undefined) snapshot.active.set(processorId, normalizeTask(record as Record<string, unknown>))
    else addActiveSkip(snapshot, processorId, problem)
  }
  completed.forEach((record, index) => {
    const problem = findProblem(record)
    if (problem === undefined) addCompleted(snapshot, normalizeTask(record as Record<string, unknown>))
    else addCompletedSkip(snapshot, index, problem)
  })
  return snapshot
}

/** Reads the body as UTF-8 text, or returns `null` and stops reading past `MAX_BODY_BYTES`. */
async function readBody(response: Response): Promise<string | null> {
  if (response.body === null) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of response.body) {
    size += chunk.byteLength
    if (size > MAX_BODY_BYTES) {
      await response.body.cancel().catch(() => {})
      return null
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Releases the connection of a response whose body is not needed. */
async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {})
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === 'TimeoutError'
}

/**
 * Checks whether fetch() rejected the URL's port before connecting. On Node 20
 * (checked on 20.20.2) it fails with "fetch failed", whose cause has the
 * message "bad port".
 */
function isBlockedPort(err: unknown): boolean {
  const cause = (err as { cause?: { message?: unknown } } | undefined)?.cause
  return cause?.message === 'bad port'
}

/** Returns the system error code (`ECONNREFUSED`, `ENOTFOUND`) under undici's generic "fetch failed". */
function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause
  if (typeof cause?.code === 'string') return cause.code
  if (typeof cause?.message === 'string') return cause.message
  return err instanceof Error ? err.message : String(err)
}
