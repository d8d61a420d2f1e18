/**
 * Plain `node:http` servers, and any framework that hands out Node's request
 * and response (Koa's `ctx.req` and `ctx.res`, for example). The recording
 * is the same as in the Express and Fastify adapters, because all of them
 * call the same Recorder. As in Express, once every server whose requests
 * were tracked has closed, the recorder ends its entries and lets go of
 * its Redis connection, so the process can exit without `close()`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { TopOptions } from '../options'
import { Recorder, type TrackContext } from '../recorder/recorder'
import { createServerWatch } from './server-watch'

/** Facts about a request that a server passes besides `req` and `res`. */
export type NodeHttpTrackContext = Pick<TrackContext, 'taskName' | 'resolveTaskName' | 'url'>

/** Records requests that a server hands to `track()`. */
export interface RequestTracker {
  /** The recorder behind the tracker. */
  readonly recorder: Recorder
  /**
   * Starts recording a request. The task ends when the response finishes or
   * the connection closes, so call it before the response ends, or in the
   * same turn at the latest. Returns whether a task started: false for an
   * ignored path, a request already tracked, a response that has already
   * closed (nothing is recorded for it) or a closed tracker. Never throws.
   * A task name that is not a string is stored as `String(name)`.
   */
  track(req: IncomingMessage, res: ServerResponse, context?: NodeHttpTrackContext): boolean
  /** Removes the active entries of this tracker and closes the tracker connection it opened. */
  close(): Promise<void>
}

/** A request listener that records each request, with a handle to stop recording. */
export interface TopRequestListener {
  (req: IncomingMessage, res: ServerResponse): void
  /** The recorder behind the listener. */
  readonly recorder: Recorder
  /** Removes the active entries of this listener and closes the tracker connection it opened. */
  close(): Promise<void>
}

/**
 * Creates a request tracker for a server that calls `track(req, res)` at the
 * start of each request. Options and environment variables are those of
 * `topMiddleware()`. No route pattern is known, so `task_name` is null
 * unless `track()` is given `taskName` or `resolveTaskName`.
 *
 * @example
 * const top = createRequestTracker({ trackerUrl: 'redis://127.0.0.1:6379' })
 * createServer((req, res) => {
 *   top.track(req, res)
 *   res.end('ok')
 * })
 */
export function createRequestTracker(options: TopOptions = {}): RequestTracker {
  const recorder = new Recorder(options)
  const watchRequestServer = createServerWatch(recorder)
  return {
    recorder,
    track: (req, res, context) => {
      watchRequestServer(req)
      return recorder.track(req, res, context)
    },
    close: () => recorder.close(),
  }
}

/**
 * Wraps a request listener so that each request it gets is recorded first.
 * The wrapper returns what the listener returns, so an async listener's
 * promise reaches the caller.
 *
 * @example
 * const listener = withTop((req, res) => res.end('ok'), { keyPrefix: 'shop:' })
 * const server = createServer(listener)
 * server.on('close', () => listener.close())
 */
export function withTop(listener: RequestListener, options: TopOptions = {}): TopRequestListener {
  if (typeof listener !== 'function') {
    throw new TypeError(`web-top: withTop() expects a request listener function (received ${typeof listener})`)
  }
  const recorder = new Recorder(options)
  const watchRequestServer = createServerWatch(recorder)

  function recordRequest(req: IncomingMessage, res: ServerResponse): void {
    watchRequestServer(req)
    recorder.track(req, res)
    return listener(req, res)
  }

  return Object.assign(recordRequest, {
    recorder,
    close: () => recorder.close(),
  })
}
