/**
 * Express handler for the HTTP tracker endpoint:
 * `app.all('/web-top', topTrackerEndpoint())`. Works with Express 4 and 5.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { discardRecording } from '../recorder/recorder'
import { createTrackerEndpoint, type TrackerEndpointOptions } from './tracker-endpoint'

/** An Express handler that serves the tracker endpoint. */
export type TrackerEndpointHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

/**
 * Creates an Express handler that serves a tracker's tasks to
 * `web-top-cli --tracker-url http://host:port/web-top`.
 *
 * Mount it with `app.all()` so that other methods get 405 (`app.get()`
 * works too, but then Express responds to them with 404). Its own requests
 * are never recorded, before or after `topMiddleware()`: when the
 * middleware saw one first, the handler discards it.
 *
 * @example
 * app.use(topMiddleware({ trackerUrl: 'memory://' }))
 * app.all('/web-top', topTrackerEndpoint({ apiKey: process.env.TOP_WEB_API_KEY }))
 */
export function topTrackerEndpoint(options: TrackerEndpointOptions = {}): TrackerEndpointHandler {
  const handle = createTrackerEndpoint(options)

  return function serveTrackerRequest(req, res, next) {
    discardRecording(res)
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url
    handle({ method: req.method, url, headers: req.headers }).then(({ statusCode, headers, body }) => {
      res.writeHead(statusCode, headers)
      res.end(body)
    }, next)
  }
}
