/**
 * Express middleware: `app.use(topMiddleware())`. Works with Express 4 and 5.
 *
 * Express has no close hook, so the middleware watches the HTTP server of
 * each request (`req.socket.server`): once every server it has seen has
 * closed, the recorder ends its entries and closes its Redis connection,
 * and the process can exit. A request that arrives later reconnects.
 */
import { IncomingMessage, type ServerResponse } from 'node:http'
import { invalidOptionsArgument, invalidUsage, type WebTopError } from '../errors'
import type { TopOptions } from '../options'
import { Recorder } from '../recorder/recorder'
import {
  failHookCall,
  isFastifyHookCall,
  isFastifyInstance,
  isFastifyPluginCall,
  isHttpRequest,
  isKoaContext,
} from './mount-checks'
import { createServerWatch } from './server-watch'

/** A route the router matched, with the mount path of its router. */
interface MatchedRoute {
  route: ExpressRequest['route']
  /** `req.baseUrl` when the route was set: the URL path of its router's mount point. */
  baseUrl: string | undefined
  /** `baseUrl` with the values of mount path parameters replaced by `:name`, where `req.params` showed them. */
  mountPattern: string | undefined
}

/**
 * The last route matched for each request. A WeakMap rather than
 * properties on `req`: every Express request has a map of its own, so
 * each property added to one costs a copy of its map (request-end.ts).
 */
const matchedRoutes = new WeakMap<IncomingMessage, MatchedRoute>()

/** The parts of Express's request that the middleware reads. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  baseUrl?: string
  params?: Record<string, unknown>
  route?: { path?: unknown }
  ip?: string
  protocol?: string
  app?: { get(setting: string): unknown }
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
export function topMiddleware(this: unknown, options: TopOptions = {}): TopMiddleware {
  // Fastify runs a hook with its instance as `this`, so a function passed
  // without it is given in place of the options, such as an `ignore`
  // function. It is rejected without being called.
  if (typeof options === 'function' && !isFastifyInstance(this)) throw invalidOptionsArgument(options)
  // `app.addHook('onRequest', topMiddleware)` passes a Fastify request,
  // which has the shape of Node's request that the next check looks for.
  if (isFastifyHookCall(this, arguments)) {
    failHookCall(arguments, calledAsHook('topMiddleware'))
    return undefined as never
  }
  // `app.use(topMiddleware)` makes Express call this function with
  // (req, res, next) on every request, and Koa with (ctx, next). Without this
  // check, each request would create a recorder from the request's
  // properties and never call `next`. Thrown here, the error goes to the
  // framework's error handler, which sends 500.
  if (isKoaContext(options)) throw calledByKoa('topMiddleware')
  if (isHttpRequest(options, arguments[2])) {
    // `http.createServer(topMiddleware)` passes no `next`.
    throw typeof arguments[2] === 'function' ? middlewareNotCalled() : calledAsListener('topMiddleware')
  }
  // `app.register(topMiddleware)` makes Fastify call it as a plugin.
  if (isFastifyPluginCall(options, arguments[2])) {
    arguments[2](registeredInFastify('app.register(topMiddleware)'))
    return undefined as never
  }

  const recorder = new Recorder(options)
  // With `trustProxy` set, the recorder reads the forwarded headers itself.
  // Unset, the app's `trust proxy` setting decides, and `req.ip` and
  // `req.protocol` already follow it.
  const followAppSetting = recorder.options.trustProxy === undefined
  const watchRequestServer = createServerWatch(recorder)

  /**
   * Rejects a call by Fastify: as a plugin (`app.register(topMiddleware())`,
   * with its instance, options and `done`), or as a hook, where the
   * middleware would track the Fastify request and reply, which are not
   * Node's request and response, and fail on every request. Returns whether
   * the call was one of these.
   */
  function rejectFastifyCall(thisValue: unknown, args: readonly unknown[]): boolean {
    const [instance, , done] = args
    if (isFastifyPluginCall(instance, done)) {
      void recorder.close()
      done(registeredInFastify('app.register(topMiddleware())'))
      return true
    }
    if (!isFastifyHookCall(thisValue, args)) return false
    const error = calledAsHook('topMiddleware()')
    // After the response (`onResponse`), Fastify only logs the error, and
    // its logger is off by default.
    recorder.logger.error({ err: error }, 'web-top records nothing, because Fastify runs its middleware as a hook')
    void recorder.close()
    failHookCall(args, error)
    return true
  }

  function recordRequest(
    this: unknown,
    req: ExpressRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
    // Only a Fastify hook passes a fourth argument (`done` of `onSend`). The
    // default keeps the function's length at 3, which Express reads to tell
    // middleware from error handlers, and keeps `arguments` off the request path.
    fourth: unknown = undefined,
  ): void {
    // Express requests are IncomingMessage objects, so only other calls pay for the checks.
    if (!(req instanceof IncomingMessage) && rejectFastifyCall(this, [req, res, next, fourth])) return
    // Koa passes (ctx, next), and Node's server calls a request listener with
    // (req, res) alone. Thrown before the request is tracked, the error goes
    // to Koa's error handler, or out of the request listener.
    if (typeof next !== 'function') throw isKoaContext(req) ? calledByKoa('topMiddleware()') : calledAsListener('topMiddleware()')

    watchRequestServer(req)
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
 * Builds the error handed to Fastify's `done` when the middleware is
 * registered as a plugin. Thrown instead, it would escape `ready()` as an
 * uncaught exception (checked on Fastify 4.29 and 5.12).
 */
function registeredInFastify(written: string): WebTopError {
  return invalidUsage(
    'topMiddleware is Express middleware, but Fastify called it as a plugin: ' +
      `in Fastify, write app.register(topPlugin) or app.register(topPlugin, options) instead of ${written}`,
  )
}

/**
 * Builds the error for the middleware passed to `app.addHook()` in Fastify.
 * Fastify sends 500 with it from a hook that runs before the response, and
 * logs it from one that runs after.
 */
function calledAsHook(written: string): WebTopError {
  return invalidUsage(
    `${written.replace('()', '')} is Express middleware, but Fastify called it as a hook: ` +
      `in Fastify, write app.register(topPlugin) or app.register(topPlugin, options) instead of app.addHook(name, ${written})`,
  )
}

/**
 * Builds the error for the middleware run by Koa, which calls middleware
 * with its context and `next` and has no adapter of its own in web-top.
 */
function calledByKoa(written: string): WebTopError {
  return invalidUsage(
    `${written.replace('()', '')} is Express middleware, but Koa called it with (ctx, next): in Koa, create ` +
      'const top = createRequestTracker(options) once and call top.track(ctx.req, ctx.res) in a middleware ' +
      `of your own, instead of app.use(${written})`,
  )
}

/** Builds the error for the middleware given to `http.createServer()`, which calls it without `next`. */
function calledAsListener(written: string): WebTopError {
  return invalidUsage(
    `${written.replace('()', '')} is Express middleware, but it was called as a request listener, without next: ` +
      'for a node:http server, write http.createServer(withTop(listener, options)) instead of ' +
      `http.createServer(${written}); in other frameworks, call track(req, res) of createRequestTracker(options)`,
  )
}

function middlewareNotCalled(): WebTopError {
  return invalidUsage(
    'topMiddleware must be called to create the middleware: ' +
      'write app.use(topMiddleware()) or app.use(topMiddleware(options)), not app.use(topMiddleware)',
  )
}

/** Request prototypes that have the `route` accessor, so that it is defined once per app. */
const watchedPrototypes = new WeakSet<object>()

/**
 * Turns `req.route` into an accessor that notes the mount path each time
 * Express's router sets it. At that moment `req.baseUrl` is the mount path
 * of the router that matched (`/api` for `/users/:id`). By the time the
 * response finishes, a route that passed an error on with `next(err)` has
 * left its router, and `req.baseUrl` is the outer one again. Express 4
 * (`express/lib/router`) and 5 (`router` 2.x) both set the property by
 * plain assignment.
 *
 * The accessor goes on the app's request prototype (`app.request`, which
 * Express gives every request and which mounted apps inherit from), once:
 * a property defined on each request would copy the request's map (see
 * `matchedRoutes`). A request that is not an Express app's, or that has
 * its own `route` already, gets the accessor on itself.
 */
function watchRoute(req: ExpressRequest): void {
  const prototype = Object.getPrototypeOf(req) as object | null
  if (prototype !== null && watchedPrototypes.has(prototype) && !Object.hasOwn(req, 'route')) return

  if (prototype !== null && isExpressAppRequest(prototype)) {
    Object.defineProperty(prototype, 'route', ROUTE_PROPERTY)
    watchedPrototypes.add(prototype)
    if (!Object.hasOwn(req, 'route')) return
  }

  const current = req.route
  Object.defineProperty(req, 'route', ROUTE_PROPERTY)
  if (current !== undefined) req.route = current
}

/** Returns true for `app.request` of an Express 4 or 5 app, which has the app as its own `app` property. */
function isExpressAppRequest(prototype: object): boolean {
  return Object.hasOwn(prototype, 'app') && !Object.hasOwn(prototype, 'route')
}

/** The accessor, defined with one frozen descriptor wherever it goes. */
const ROUTE_PROPERTY: PropertyDescriptor = Object.freeze({
  configurable: true,
  enumerable: true,
  get: getRoute,
  set: setRoute,
})

function getRoute(this: ExpressRequest): ExpressRequest['route'] {
  return matchedRoutes.get(this)?.route
}

function setRoute(this: ExpressRequest, route: ExpressRequest['route']): void {
  const baseUrl = this.baseUrl
  let matched = matchedRoutes.get(this)
  if (matched === undefined) {
    matched = { route, baseUrl, mountPattern: baseUrl }
    matchedRoutes.set(this, matched)
  } else {
    matched.route = route
    if (matched.baseUrl !== baseUrl) {
      matched.baseUrl = baseUrl
      matched.mountPattern = baseUrl
    }
  }

  // Express 4.22 and 5.3 (router 2.3) set `req.route` twice for each route.
  // The router sets it while `req.params` still contains the params of the
  // previous layer, which for the first layer of a router are the mount's.
  // `Route#dispatch` sets it with the route's own params, merged with the
  // mount's under `mergeParams`. Either may show the mount's values, so each
  // set tries until one does.
  if (baseUrl !== undefined && baseUrl !== '' && matched.mountPattern === baseUrl) {
    matched.mountPattern = replaceParamValues(baseUrl, this.params, route?.path)
  }
}

/**
 * Rebuilds the pattern of a mount path from its URL path and `req.params`:
 * `/orgs/acme/users` with `{ orgId: 'acme' }` becomes `/orgs/:orgId/users`.
 * The request carries no pattern for a mount, only the part of the URL that
 * the mount matched.
 *
 * This is a heuristic. A segment becomes `:name` when it equals the value of
 * a param, raw or percent-decoded. Params are taken in the order of
 * `req.params`, which is the order of the path, so each segment is compared
 * only with the params after the last one used. A literal segment equal to
 * a value, before the segment that contains it, takes the name in its place:
 * `/orgs/orgs/users` becomes `/:orgId/orgs/users`. Params that the route's
 * own path declares, and unnamed regular expression groups (`0`, `1`), are
 * skipped.
 *
 * NOTE: the mount's values are not in `req.params` when the router has
 * middleware before the route and no `mergeParams`, or for an Express 4 app
 * mounted as a sub-app. Their task names keep the values, as before.
 */
function replaceParamValues(baseUrl: string, params: Record<string, unknown> | undefined, routePath: unknown): string {
  if (params === undefined || params === null || !mayContainValue(baseUrl, params)) return baseUrl

  const names = Object.keys(params)
  const segments = baseUrl.split('/')
  let nextName = 0
  let replaced = false
  for (let i = 1; i < segments.length && nextName < names.length; i++) {
    const segment = segments[i] as string
    if (segment === '') continue

    for (let j = nextName; j < names.length; j++) {
      const name = names[j] as string
      const value = params[name]
      if (typeof value !== 'string' || !segmentMatches(segment, value)) continue
      if (isUnnamedGroup(name) || declaresParam(routePath, name)) continue

      segments[i] = `:${name}`
      nextName = j + 1
      replaced = true
      break
    }
  }
  return replaced ? segments.join('/') : baseUrl
}

/**
 * Returns false when no param value occurs in `baseUrl`, without allocating,
 * so that routes with params under a mount without params (`/api`) cost
 * little. A `%` in `baseUrl` may hide a value, so it returns true then.
 */
function mayContainValue(baseUrl: string, params: Record<string, unknown>): boolean {
  const encoded = baseUrl.includes('%')
  for (const name in params) {
    const value = params[name]
    if (typeof value !== 'string' || value === '' || !Object.hasOwn(params, name)) continue
    if (encoded || baseUrl.includes(value)) return true
  }
  return false
}

/** Compares a raw URL path segment with a param value, which Express has percent-decoded. */
function segmentMatches(segment: string, value: string): boolean {
  if (segment === value) return true
  if (value === '' || !segment.includes('%')) return false
  try {
    return decodeURIComponent(segment) === value
  } catch {
    return false
  }
}

function isUnnamedGroup(name: string): boolean {
  const first = name.charCodeAt(0)
  return first >= 48 && first <= 57
}

/** Returns true when the route's path (a string, or an array of them in Express 4) names the param. */
function declaresParam(routePath: unknown, name: string): boolean {
  if (typeof routePath !== 'string' && !Array.isArray(routePath)) return false
  const path = String(routePath)
  return path.includes(`:${name}`) || path.includes(`*${name}`)
}

/** Returns the full pattern of the last route that matched (`/api` + `/users/:id`), or null. */
function readRoutePattern(req: ExpressRequest): string | null {
  const matched = matchedRoutes.get(req)
  const path = matched?.route?.path
  return path === undefined ? null : `${matched?.mountPattern ?? ''}${String(path)}`
}

/** Follows the app's `trust proxy` setting, which is off by default. */
function isProxyTrusted(req: ExpressRequest): boolean {
  const setting = req.app?.get('trust proxy')
  return setting !== undefined && setting !== false && setting !== 0
}
