/**
 * Express middleware: `app.use(topMiddleware())`. Works with Express 4 and 5.
 *
 * Express has no close hook, so the middleware watches the HTTP server of
 * each request (`req.socket.server`): once every server it has seen has
 * closed, the recorder removes its entries and closes its Redis connection,
 * and the process can exit. A request that arrives later reconnects.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TopOptions } from '../options'
import { Recorder, type WatchedServer } from '../recorder/recorder'

const kRoute = Symbol('web-top.route')
const kRoutePattern = Symbol('web-top.routePattern')

/** The parts of Express's request that the middleware reads. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  baseUrl?: string
  route?: { path?: unknown }
  ip?: string
  protocol?: string
  app?: { get(setting: string): unknown }
  [kRoute]?: { path?: unknown }
  [kRoutePattern]?: string
}

/** An Express middleware that records each request, with a handle to stop recording. */
export interface TopMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
  /** The recorder behind the middleware. */
  readonly recorder: Recorder
  /**
   * Removes the active entries of this middleware and closes the tracker
   * connection it opened. Not needed after the app's server closes, which
   * releases the connection already, but the only way to stop recording
   * for good.
   */
  close(): Promise<void>
}

/**
 * Creates an Express middleware that records every request that passes
 * through it. Mount it first, so that it sees every request.
 *
 * @example
 * const app = express()
 * app.use(topMiddleware({ trackerUrl: 'redis://127.0.0.1:6379' }))
 */
export function topMiddleware(options: TopOptions = {}): TopMiddleware {
  const recorder = new Recorder(options)
  // With `trustProxy` set, the recorder reads the forwarded headers itself.
  // Unset, the app's `trust proxy` setting decides, and `req.ip` and
  // `req.protocol` already follow it.
  const followAppSetting = recorder.options.trustProxy === undefined
  let lastServer: WatchedServer | undefined

  function recordRequest(
    req: ExpressRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    // `server` is set by Node's net module on every accepted socket (checked on Node 20).
    const server = (req.socket as { server?: WatchedServer } | null)?.server
    if (server !== lastServer) {
      lastServer = server
      recorder.watchServer(server)
    }

    const trusted = followAppSetting && isProxyTrusted(req)
    const tracked = recorder.track(req, res, {
      url: req.originalUrl,
      resolveTaskName: readRoutePattern,
      clientIp: trusted ? req.ip : undefined,
      protocol: trusted ? req.protocol : undefined,
    })
    if (tracked) watchRoute(req)
    next()
  }

  return Object.assign(recordRequest as TopMiddleware, {
    recorder,
    close: () => recorder.close(),
  })
}

/**
 * Turns `req.route` into an accessor that notes the full route pattern
 * each time Express's router sets it. At that moment `req.baseUrl` is the
 * mount path of the router that matched (`/api` for `/users/:id`). By the
 * time the response finishes, a route that passed an error on with
 * `next(err)` has left its router, and `req.baseUrl` is the outer one again.
 * Express 4 (`express/lib/router`) and 5 (`router` 2.x) both set the
 * property by plain assignment.
 */
function watchRoute(req: ExpressRequest): void {
  const current = req.route
  Object.defineProperty(req, 'route', ROUTE_PROPERTY)
  if (current !== undefined) req.route = current
}

/**
 * One descriptor object for every request: V8 then gives all watched
 * requests the same hidden class, where a new descriptor per request would
 * give each its own (checked with `%HaveSameMap` on Node 20).
 */
const ROUTE_PROPERTY: PropertyDescriptor = Object.freeze({
  configurable: true,
  enumerable: true,
  get: getRoute,
  set: setRoute,
})

function getRoute(this: ExpressRequest): ExpressRequest['route'] {
  return this[kRoute]
}

function setRoute(this: ExpressRequest, route: ExpressRequest['route']): void {
  this[kRoute] = route
  const path = route?.path
  this[kRoutePattern] = path === undefined ? undefined : `${this.baseUrl ?? ''}${String(path)}`
}

/** Returns the full pattern of the last route that matched (`/api` + `/users/:id`), or null. */
function readRoutePattern(req: ExpressRequest): string | null {
  return req[kRoutePattern] ?? null
}

/** Follows the app's `trust proxy` setting, which is off by default. */
function isProxyTrusted(req: ExpressRequest): boolean {
  const setting = req.app?.get('trust proxy')
  return setting !== undefined && setting !== false && setting !== 0
}
