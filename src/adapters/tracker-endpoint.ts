/**
 * The HTTP tracker endpoint: serves a tracker's active and completed tasks as
 * JSON, protected by an API key. `web-top-cli --tracker-url http://…`, the
 * Python `web-top` and web-top-node readers all read it. This file depends on no
 * framework: express-endpoint.ts and fastify-endpoint.ts pass requests in.
 *
 * The protocol is web-top-node's: `GET <path>?action=active-tasks` returns an
 * object of processor id to task, `GET <path>?action=completed-tasks` an
 * array of tasks, most recent first. The key may come in the `X-API-Key`
 * header, as `Authorization: Bearer <key>` or, for older readers, in the
 * `api-key` query parameter.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { INVALID_OPTION, type WebTopError } from '../errors'
import { listRecordingTrackers } from '../recorder/recording-trackers'
import { getSharedMemoryTracker } from '../trackers/from-url'
import { isCluster, RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import { createConsoleLogger, createRateLimitedLogger, guardLogger, type Logger } from '../util/logger'

/** Shortest API key the endpoint accepts, as in web-top-node. */
export const MIN_API_KEY_LENGTH = 16

/** Values of the `action` query parameter. */
export const TRACKER_ACTIONS = ['active-tasks', 'completed-tasks'] as const

export type TrackerAction = (typeof TRACKER_ACTIONS)[number]

export interface TrackerEndpointOptions {
  /**
   * Secret that readers must send, at least 16 characters long. It is
   * compared in constant time and never written to a response or a log.
   * @default process.env.TOP_WEB_API_KEY
   */
  apiKey?: string | undefined
  /**
   * Tracker whose tasks are served, such as `middleware.recorder.tracker`.
   * @default the one tracker that the open recorders of the process write
   * to. With no recorder open, or when one of them writes to `memory://`,
   * the shared memory tracker.
   */
  tracker?: Pick<Tracker, 'read'> | undefined
  /** Logger for failed tracker reads and for the warning about recorded endpoint requests. */
  logger?: Logger | undefined
}

/** The parts of an HTTP request that the endpoint reads. */
export interface EndpointRequest {
  method: string | undefined
  /** Request target with its query string, such as `/web-top?action=active-tasks`. */
  url: string | undefined
  headers: IncomingHttpHeaders
}

/** A complete response for the framework adapter to send. */
export interface EndpointResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/** Handles one request and resolves with the response. Never rejects: a failed tracker read becomes a 503. */
export type TrackerEndpoint = (request: EndpointRequest) => Promise<EndpointResponse>

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  // Task records hold client addresses and headers, so no cache may keep them.
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
})

/**
 * Creates the framework-neutral endpoint. Validates the API key once, here:
 * a missing key is a `TypeError` and a short one a `RangeError`, both with
 * code `WEB_TOP_INVALID_OPTION`.
 *
 * `fallbackTracker` supplies the tracker when the options name none. It is
 * called on each request, so a recorder created after the endpoint still
 * decides the size of the shared memory tracker, and is served. It throws
 * when it cannot choose, which the request gets as a 500.
 *
 * @example
 * const endpoint = createTrackerEndpoint({ apiKey: process.env.TOP_WEB_API_KEY })
 * http.createServer(async (req, res) => {
 *   const { statusCode, headers, body } = await endpoint(req)
 *   res.writeHead(statusCode, headers).end(body)
 * })
 */
export function createTrackerEndpoint(
  options: TrackerEndpointOptions = {},
  env: NodeJS.ProcessEnv = process.env,
  fallbackTracker: () => Pick<Tracker, 'read'> = findRecordingTracker,
): TrackerEndpoint {
  if (options === null || typeof options !== 'object') {
    throw invalidEndpointOption(TypeError, 'The `options` argument must be an object')
  }
  const expectedDigest = digest(resolveApiKey(options.apiKey, env))
  const logger =
    options.logger === undefined ? createRateLimitedLogger(createConsoleLogger()) : guardLogger(options.logger)
  checkTracker(options.tracker)

  const tracker = options.tracker
  let ownRequestsWarned = false

  return async function handleTrackerRequest(request: EndpointRequest): Promise<EndpointResponse> {
    if (request.method !== 'GET') {
      return errorResponse(405, 'Only GET is allowed.', { allow: 'GET' })
    }

    const { path, query } = splitUrl(request.url)
    const presentedKey = readPresentedKey(request.headers, query)
    if (presentedKey === undefined) {
      return errorResponse(401, 'Missing API key: send it in the X-API-Key header.', {
        'www-authenticate': 'Bearer realm="web-top"',
      })
    }
    if (!timingSafeEqual(digest(presentedKey), expectedDigest)) {
      return errorResponse(403, 'Invalid API key.')
    }

    const action = query.get('action')
    if (action !== 'active-tasks' && action !== 'completed-tasks') {
      const message = 'Missing or unknown action: use action=active-tasks or action=completed-tasks.'
      return errorResponse(400, message)
    }
    const limit = parseLimit(query.get('limit'))
    if (limit === null) {
      return errorResponse(400, 'The limit parameter must be a whole number of at least 1.')
    }

    let source: Pick<Tracker, 'read'>
    try {
      source = tracker ?? fallbackTracker()
    } catch (err) {
      logger.error({ err }, 'web-top tracker endpoint has no tracker to serve')
      return errorResponse(500, 'The endpoint has no tracker to serve; see the app log.')
    }
    let body: string
    try {
      // The active tasks need no completed ones, whose decoding costs the app
      // about 7 µs per record (0.43 s for 58,000 records on a 2-core VM).
      const completedLimit = action === 'active-tasks' ? 0 : limit
      const snapshot = await source.read(completedLimit === undefined ? {} : { completedLimit })
      if (!ownRequestsWarned && isOwnRequestRecorded(snapshot.active.values(), path)) {
        ownRequestsWarned = true
        logger.warn({ path }, OWN_REQUESTS_WARNING)
      }
      body = action === 'active-tasks'
        ? JSON.stringify(Object.fromEntries(snapshot.active))
        : JSON.stringify(limit === undefined ? snapshot.completed : snapshot.completed.slice(0, limit))
    } catch (err) {
      logger.error({ err, action }, 'web-top tracker endpoint failed to read the tracker')
      return errorResponse(503, 'Could not read the tracker.')
    }
    return { statusCode: 200, headers: { ...JSON_HEADERS }, body }
  }
}

/**
 * Returns the tracker that the open recorders of this process write to,
 * when they all write to one store (one Redis server and prefix, or one
 * memory tracker). With no recorder open, or when one of them
 * writes to the shared memory tracker, returns that tracker. Throws when
 * the recorders write to several other trackers, because any choice could
 * serve the wrong app's tasks.
 */
export function findRecordingTracker(): Pick<Tracker, 'read'> {
  // Two Redis trackers of the same server and prefix, as two middlewares of one app open, read the same tasks.
  const byStore = new Map<Tracker | string, Tracker>()
  for (const tracker of listRecordingTrackers()) {
    const store = describeStore(tracker)
    if (!byStore.has(store)) byStore.set(store, tracker)
  }
  const trackers = [...byStore.values()]
  const [only] = trackers
  if (only !== undefined && trackers.length === 1) return only
  const shared = getSharedMemoryTracker()
  if (trackers.length === 0 || trackers.includes(shared)) return shared
  throw new Error(
    `the app's recorders write to ${trackers.length} trackers, so the tracker endpoint cannot choose one: ` +
      'pass the one to serve in its `tracker` option, such as `tracker: middleware.recorder.tracker`',
  )
}

/**
 * Returns what a tracker reads from: for a Redis tracker, the host, port
 * and database of its connection (`redis://127.0.0.1:6379` and
 * `redis://127.0.0.1:6379/0` alike) with its prefix, or the URL of a
 * Cluster. Host names are compared as written, so `localhost` and
 * `127.0.0.1` differ. Any other tracker is its own store.
 */
function describeStore(tracker: Tracker): Tracker | string {
  if (!isRedisTrackerLike(tracker)) return tracker
  const client = tracker.client
  const where = isCluster(client) ? tracker.url : `${client.options.host}:${client.options.port}/${client.options.db ?? 0}`
  return `${where} ${tracker.keys.processors}`
}

/**
 * Returns whether `tracker` is a `RedisTracker` of this or another copy of
 * the package: the CommonJS and the ES module build each have their own
 * class, so `instanceof` fails for the other copy's trackers.
 */
function isRedisTrackerLike(tracker: Tracker): tracker is RedisTracker {
  if (tracker instanceof RedisTracker) return true
  const candidate = tracker as Partial<Pick<RedisTracker, 'client' | 'keys' | 'url'>>
  return (
    typeof candidate.client?.options === 'object' &&
    typeof candidate.keys?.processors === 'string' &&
    typeof candidate.url === 'string'
  )
}

const OWN_REQUESTS_WARNING =
  'web-top records the requests of its own tracker endpoint: add its path to the `ignore` option ' +
  'of topMiddleware or topPlugin, or call discardRecording(res) before the endpoint handles a request'

/** Returns the configured key, or throws a setup error that never contains the key. */
function resolveApiKey(option: unknown, env: NodeJS.ProcessEnv): string {
  const key = option ?? env.TOP_WEB_API_KEY
  if (key === undefined || key === '') {
    throw invalidEndpointOption(
      TypeError,
      'The `apiKey` option is missing: pass `apiKey` or set the TOP_WEB_API_KEY environment variable ' +
        `to a random string of at least ${MIN_API_KEY_LENGTH} characters`,
    )
  }
  if (typeof key !== 'string') {
    throw invalidEndpointOption(TypeError, `The \`apiKey\` option must be a string (received ${typeof key})`)
  }
  if (key.length < MIN_API_KEY_LENGTH) {
    const source = option === undefined ? 'The TOP_WEB_API_KEY environment variable' : 'The `apiKey` option'
    throw invalidEndpointOption(
      RangeError,
      `${source} must be at least ${MIN_API_KEY_LENGTH} characters long ` +
        `(received ${key.length} characters); generate one with ` +
        `node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"`,
    )
  }
  return key
}

function checkTracker(tracker: unknown): void {
  if (tracker === undefined) return
  if (tracker === null || typeof (tracker as { read?: unknown }).read !== 'function') {
    throw invalidEndpointOption(TypeError, 'The `tracker` option must be a tracker with a read() method')
  }
}

function invalidEndpointOption(
  ErrorClass: typeof TypeError | typeof RangeError,
  message: string,
): WebTopError {
  return Object.assign(new ErrorClass(`web-top: ${message}`), { code: INVALID_OPTION } as const)
}

/** Hashes a key, so that keys of any length compare in constant time with `timingSafeEqual`. */
function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest()
}

function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const target = url ?? '/'
  const queryStart = target.indexOf('?')
  if (queryStart === -1) return { path: target, query: new URLSearchParams() }
  return { path: target.slice(0, queryStart), query: new URLSearchParams(target.slice(queryStart + 1)) }
}

/** Reads the key from `X-API-Key`, then `Authorization: Bearer`, then the `api-key` query parameter. */
function readPresentedKey(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const header = headers['x-api-key']
  if (typeof header === 'string' && header !== '') return header

  const authorization = headers.authorization
  const bearer = typeof authorization === 'string' ? /^Bearer +(\S+) *$/i.exec(authorization) : null
  if (bearer !== null) return bearer[1]

  const param = query.get('api-key')
  return param === null || param === '' ? undefined : param
}

/** Returns the limit, `undefined` when absent, or `null` when it is not a whole number of at least 1. */
function parseLimit(value: string | null): number | undefined | null {
  if (value === null) return undefined
  if (!/^\d{1,9}$/.test(value)) return null
  const limit = Number(value)
  return limit >= 1 ? limit : null
}

/** Returns true when the request being handled is itself an active task, because the recorder ran first. */
function isOwnRequestRecorded(activeTasks: Iterable<{ path?: string | null }>, path: string): boolean {
  for (const task of activeTasks) {
    if (task.path === path) return true
  }
  return false
}

function errorResponse(
  statusCode: number,
  message: string,
  extraHeaders: Record<string, string> = {},
): EndpointResponse {
  return {
    statusCode,
    headers: { ...JSON_HEADERS, ...extraHeaders },
    body: JSON.stringify({ error: message }),
  }
}
