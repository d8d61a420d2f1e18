/**
 * Fastify plugin: `app.register(topPlugin, options)`. Works with Fastify 4 and 5.
 * Problems are logged through Fastify's own logger, unless `logger` is given
 * or the app's logger is off (then to stderr).
 * `app.close()` ends the recorder's entries and closes its connection.
 * Until the app's server listens, the recorder is idle, as the Express
 * middleware's is until its first request (`watchListeningServer`).
 * A route with `config: { webTop: { ignore: true } }` is not recorded.
 *
 * Fastify 4 and 5 send some responses without running any hook. These are
 * 400 for a URL that its router cannot decode (`/%`), 414 for a param
 * longer than `maxParamLength` (Fastify 5) and 500 for a failed async
 * constraint, or what the `frameworkErrors` option's handler sends instead.
 * The plugin records them when their response finishes, through the finish
 * channel that request-end.ts already reads for every response. That
 * channel's handler looks the server up only for a response that no
 * recorder tracks, so tracked requests pay nothing for it. A listener on
 * the server's `request` event would cost every request a call, and would
 * miss `frameworkErrors` handlers that reply later.
 */
import type { FastifyPluginCallback } from 'fastify'
import fastifyPlugin from 'fastify-plugin'
import { invalidOptionsArgument, invalidUsage, type WebTopError } from '../errors'
import { isOptionsObject, type TopOptions } from '../options'
import { Recorder, type WatchedServer } from '../recorder/recorder'
import {
  markUnrecorded,
  unwatchUntrackedResponses,
  watchUntrackedResponses,
  type UntrackedResponseHandler,
} from '../recorder/request-end'
import type { Logger } from '../util/logger'
import type { CallbackPlugin } from './fastify-plugin-types'
import { failHookCall, isFastifyHookCall, isFastifyPluginCall, isHttpRequest } from './mount-checks'

declare module 'fastify' {
  interface FastifyInstance {
    /** The web-top recorder registered by `topPlugin`. */
    webTop: Recorder
  }
  interface FastifyContextConfig {
    /** web-top settings of a route: `{ ignore: true }` leaves its requests unrecorded. */
    webTop?: WebTopRouteConfig
  }
}

/** web-top settings in a route's `config`. */
export interface WebTopRouteConfig {
  /** Whether requests of the route are left unrecorded, as with the `ignore` option. */
  ignore?: boolean | undefined
}

/** A Fastify app's server (`fastify.server`): Node's HTTP, HTTPS or HTTP/2 server. */
type FastifyServer = Parameters<FastifyPluginCallback>[0]['server']

/** The parts of a Fastify request's route options that the plugin reads. */
interface RouteOptions {
  url?: string
  config?: { webTop?: WebTopRouteConfig }
}

const webTopPlugin: FastifyPluginCallback<TopOptions> = function webTop(this: unknown, fastify, options, done) {
  // Fastify calls a plugin with its instance and a `done` callback. Anything
  // else is a misuse, caught before a recorder or connection exists.
  if (isFastifyHookCall(this, arguments)) {
    failHookCall(arguments, calledAsHook())
    return
  }
  checkPluginCall(fastify, done)
  // Another plugin's `webTop` on this instance would make `decorate()` below
  // throw Fastify's bare FST_ERR_DEC_ALREADY_PRESENT, which names neither
  // plugin. On a parent, the recorder would hide it from this context.
  const existing = inspectDecorator(fastify)
  if (fastify.hasDecorator('webTop') && !existing.isRecorder) {
    const cause = Object.hasOwn(fastify, 'webTop') ? readDecoratorTakenError(fastify) : undefined
    done(decoratorTaken(existing.description, cause))
    return
  }
  // A parent's recorder already records the requests of this instance's
  // routes, so a second one would only add a process entry and ignore its options.
  if (fastify.hasDecorator('webTop') && !Object.hasOwn(fastify, 'webTop')) {
    closeEarlierRecorder(fastify)
    done(registeredInParent())
    return
  }
  // Caught before the recorder exists, so that the failing registration
  // opens no connection and logs no destination.
  if (Object.hasOwn(fastify, 'webTop')) {
    closeEarlierRecorder(fastify)
    done(registeredTwice(readDecoratorTakenError(fastify)))
    return
  }

  // A child that registered first records its own routes, and this
  // registration would add a second recorder for the rest of the app.
  const descendant = findRegisteredDescendant(fastify)
  if (descendant !== undefined) {
    closeEarlierRecorder(descendant)
    done(registeredInChild())
    return
  }

  // Fastify passes a number, boolean, array or Map given as the options as
  // it is, and the spread below would turn it into an empty object, which
  // the recorder would accept. Fastify 4 and 5 pass `{}` when the options
  // are left out or null.
  if (!isOptionsObject(options)) {
    done(invalidOptionsArgument(options))
    return
  }
  let recorder: Recorder
  try {
    const logger = options.logger ?? appLogger(fastify.log)
    const { rest, registerOptions } = splitRegisterOptions(options)
    recorder = new Recorder({ ...rest, logger })
    warnAboutRegisterOptions(recorder.logger, registerOptions)
  } catch (err) {
    // Handed to Fastify, so that `ready()`, `listen()` or `register()` rejects with it.
    done(err as Error)
    return
  }
  // With `trustProxy` set, the recorder reads the forwarded headers itself.
  // Unset, the app's `trustProxy` setting decides, and `request.ip` and
  // `request.protocol` already follow it.
  const followAppSetting = recorder.options.trustProxy === undefined

  try {
    fastify.decorate('webTop', recorder)
  } catch (err) {
    // Thrown from here, the error would escape `ready()` as an uncaught
    // exception (checked on Fastify 5.12).
    void recorder.close()
    if (isDecoratorTaken(err)) closeEarlierRecorder(fastify)
    done(isDecoratorTaken(err) ? registeredTwice(err) : (err as Error))
    return
  }

  const registered = registrationsOf(fastify.server)
  registered.add(fastify)

  fastify.addHook('onRequest', function recordRequest(request, reply, next) {
    // Fastify 5 builds a new object on each read of `routeOptions`, so it is read once.
    const routeOptions = (request as { routeOptions?: RouteOptions }).routeOptions
    if (routeOptions?.config?.webTop?.ignore === true) {
      markUnrecorded(reply.raw)
      next()
      return
    }

    // An app served through another server (`app.routing` in a server of
    // the app's own) has its requests come from that server, which
    // `fastify.server`'s listen does not cover. Known servers return at once.
    recorder.watchServer((request.raw.socket as { server?: WatchedServer } | null)?.server)
    const trusted = followAppSetting && isProxyTrusted(request)
    const tracked = recorder.track(request.raw, reply.raw, {
      // Set by Fastify (4 and 5) when its `rewriteUrl` option changed `raw.url`.
      url: (request.raw as { originalUrl?: string }).originalUrl,
      taskName: readRoutePattern(request, routeOptions),
      clientIp: trusted ? request.ip : undefined,
      protocol: trusted ? request.protocol : undefined,
    })
    // Marked for an ignored path or a closed recorder, so that the response
    // is not recorded later as one that Fastify sent without hooks.
    if (!tracked) markUnrecorded(reply.raw)
    next()
  })

  // NOTE: these requests have no Fastify request object, so the app's
  // `trustProxy` setting is not applied. The socket's address is recorded
  // unless the plugin's own `trustProxy` option is set. `inject()`
  // responses never reach the finish channel and stay unrecorded.
  const recordUntracked: UntrackedResponseHandler = (req, res, outcome) => {
    // Set by Fastify (4 and 5) when its `rewriteUrl` option changed `req.url`.
    recorder.recordEnded(req, res, outcome, { url: (req as { originalUrl?: string }).originalUrl })
  }
  // Registered on a child context, the hook runs only for that context's
  // routes, so a response without state may belong to a route outside it.
  const server = isRootInstance(fastify) ? fastify.server : undefined
  if (server !== undefined) watchUntrackedResponses(server, recordUntracked)
  // `fastify.server` is the server of the whole app, whichever context registers the plugin.
  recorder.closeServerOnSignal(fastify.server)
  const stopWatchingListen = watchListeningServer(fastify.server, recorder)

  fastify.addHook('onClose', function closeRecorder(_instance, next) {
    if (server !== undefined) unwatchUntrackedResponses(server, recordUntracked)
    registered.delete(fastify)
    stopWatchingListen()
    recorder.close().then(() => next(), next)
  })

  done()
}

/**
 * Records every request of a Fastify app.
 *
 * @example
 * const app = Fastify({ logger: true })
 * await app.register(topPlugin, { trackerUrl: 'redis://127.0.0.1:6379' })
 */
export const topPlugin: CallbackPlugin<TopOptions> = fastifyPlugin(webTopPlugin, {
  name: 'web-top',
  fastify: '4.x || 5.x',
})

/**
 * Leaves the recorder idle until the app's server listens or a request
 * comes, and has it watch the server from its `listening` event on. An app
 * whose boot fails (a plugin that throws, `listen()` rejected with
 * EADDRINUSE), or that only calls `inject()`, then exits as it would
 * without the plugin, with no heartbeat left in Redis. Returns a function
 * that removes the `listening` listener.
 */
function watchListeningServer(server: FastifyServer, recorder: Recorder): () => void {
  recorder.idleUntilFirstRequest()
  const onListening = () => recorder.watchServer(server)
  if (server.listening) onListening()
  server.on('listening', onListening)
  return () => server.off('listening', onListening)
}

/**
 * Throws a `TypeError` naming the right mount call when the plugin is called
 * as middleware (`app.use(topPlugin)` in Express, or in Fastify through
 * @fastify/middie), or called directly, as in
 * `app.register(topPlugin())`.
 */
function checkPluginCall(fastify: unknown, done: unknown): void {
  if (isHttpRequest(fastify, done)) {
    throw invalidUsage(
      'topPlugin is a Fastify plugin, but it was called as middleware: ' +
        'in Express, write app.use(topMiddleware()) instead of app.use(topPlugin). ' +
        'In Fastify with @fastify/middie or @fastify/express, write app.register(topPlugin)',
    )
  }
  if (!isFastifyPluginCall(fastify, done)) {
    throw invalidUsage(
      'topPlugin must be passed to register without calling it: ' +
        'write app.register(topPlugin) or app.register(topPlugin, options), not app.register(topPlugin())',
    )
  }
}

/**
 * Returns a child of the app's logger, bound to `plugin: 'web-top'`, or
 * undefined (the recorder's `stderr` logger) when it is off. Fastify's
 * default is off: `log` is then abstract-logging, whose methods are all
 * the function `noop` (Fastify 4 and 5), and a
 * warning that Redis is unreachable and records are dropped would go nowhere.
 * A pino logger set to `silent` has `noop` methods too, but also a `level`,
 * and it stays: the app chose to hear nothing.
 */
function appLogger(log: Parameters<FastifyPluginCallback>[0]['log']): Logger | undefined {
  const { level } = log as { level?: unknown }
  const off = typeof level !== 'string' && log.warn.name === 'noop' && log.error.name === 'noop'
  if (off) return undefined
  return bindPluginLogger(log)
}

/**
 * Options that Fastify's `register()` reads from the options of any plugin
 * and also passes on to it. Fastify 5.12 applies them only to an
 * encapsulated plugin, so not to this one, which fastify-plugin wraps: a
 * `prefix` does not limit the routes recorded, and `logLevel` does not set
 * the level of web-top's lines. The plugin leaves them out of the recorder's
 * options and warns once per name, so that a user who meant `keyPrefix`
 * learns that the keys have no prefix.
 */
const FASTIFY_REGISTER_OPTIONS = new Map([
  ['prefix', 'for a key prefix on Redis, use `keyPrefix`'],
  ['logLevel', "set the level on the app's logger or on the `logger` option"],
  ['logSerializers', "set serializers on the app's logger or on the `logger` option"],
])

/** Returns `options` without Fastify's register options, and the names of those it had. */
function splitRegisterOptions(options: TopOptions): { rest: TopOptions; registerOptions: string[] } {
  const rest: Record<string, unknown> = { ...options }
  const registerOptions: string[] = []
  for (const name of FASTIFY_REGISTER_OPTIONS.keys()) {
    if (!Object.hasOwn(rest, name)) continue
    registerOptions.push(name)
    delete rest[name]
  }
  return { rest: rest as TopOptions, registerOptions }
}

function warnAboutRegisterOptions(logger: Logger, names: readonly string[]): void {
  for (const name of names) {
    const hint = FASTIFY_REGISTER_OPTIONS.get(name) as string
    logger.warn(
      { option: name },
      `register option \`${name}\` has no effect on topPlugin, because Fastify applies it only to encapsulated plugins: ${hint}`,
    )
  }
}

/**
 * Returns a child of a Fastify logger bound to `plugin: 'web-top'`, as
 * Fastify gives each request one, so that the app's log shows which lines
 * are web-top's. Fastify 4 and 5 reject a logger without `child`, so the
 * check is only a guard.
 */
export function bindPluginLogger(log: Parameters<FastifyPluginCallback>[0]['log']): Logger {
  return typeof log.child === 'function' ? log.child({ plugin: 'web-top' }) : log
}

/**
 * Closes the recorder of the first registration once a second one makes
 * `ready()` reject. Fastify then runs no `onClose` hook unless the app
 * calls `close()`, and that recorder's Redis connection would keep the
 * process alive.
 */
function closeEarlierRecorder(fastify: FastifyContext): void {
  const earlier = readDecorator(fastify)
  if (!(earlier instanceof Recorder)) return
  // An app that catches the error in `after()` boots on, without recording.
  earlier.logger.warn({}, 'web-top closed the recorder of the first topPlugin registration, because a second one failed')
  void earlier.close()
}

type FastifyContext = Parameters<FastifyPluginCallback>[0]

/**
 * The contexts of each app, by its server, that registered topPlugin and
 * have not closed. A parent context registered later does not see the
 * child's `webTop` decorator, so it looks here.
 */
const registrationsByServer = new WeakMap<object, Set<FastifyContext>>()

function registrationsOf(server: object): Set<FastifyContext> {
  let registered = registrationsByServer.get(server)
  if (registered === undefined) {
    registered = new Set()
    registrationsByServer.set(server, registered)
  }
  return registered
}

/**
 * Returns a context of the same app below `fastify` that registered
 * topPlugin. Fastify 4 and 5 build each child context with
 * `Object.create(parent)`, so its parents are on its prototype chain.
 */
function findRegisteredDescendant(fastify: FastifyContext): FastifyContext | undefined {
  for (const registered of registrationsByServer.get(fastify.server) ?? []) {
    if (Object.prototype.isPrototypeOf.call(fastify, registered)) return registered
  }
  return undefined
}

/** Marks a `webTop` decorator whose getter threw when read. */
const UNREADABLE = Symbol('unreadable decorator')

/**
 * Returns the `webTop` decorator of `fastify`, or `UNREADABLE` when reading
 * it throws. Another plugin may have decorated the name with a getter, and
 * a throw from the plugin function would escape `register()` as an
 * uncaught exception, leaving `ready()` to end by Fastify's plugin timeout.
 */
function readDecorator(fastify: Parameters<FastifyPluginCallback>[0]): unknown {
  try {
    return (fastify as { webTop?: unknown }).webTop
  } catch {
    return UNREADABLE
  }
}

/**
 * Reads the `webTop` decorator of `fastify` and returns whether it is a
 * recorder, and what it is for the error that rejects it. Neither a getter
 * nor a Proxy that throws escapes, for the reason `readDecorator` gives.
 */
function inspectDecorator(fastify: Parameters<FastifyPluginCallback>[0]): { isRecorder: boolean; description: string } {
  const value = readDecorator(fastify)
  if (value === UNREADABLE) return { isRecorder: false, description: 'a getter that throws when read' }
  try {
    return { isRecorder: isRecorder(value), description: describeValue(value) }
  } catch {
    return { isRecorder: false, description: 'a value whose properties throw when read' }
  }
}

/**
 * Returns the error that Fastify throws when `webTop` is decorated a
 * second time, as the cause of `registeredTwice()`. The call changes
 * nothing, because Fastify 4 and 5 check the name before decorating.
 */
function readDecoratorTakenError(fastify: Parameters<FastifyPluginCallback>[0]): unknown {
  try {
    fastify.decorate('webTop', null as unknown as Recorder)
  } catch (err) {
    return err
  }
  return undefined
}

/** Returns true for the error that Fastify 4 and 5 throw when `webTop` is decorated a second time. */
function isDecoratorTaken(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'FST_ERR_DEC_ALREADY_PRESENT'
}

/**
 * Returns true for a recorder, also one of another copy of the package
 * (its CommonJS and ES module builds), which `instanceof` would miss.
 */
function isRecorder(value: unknown): boolean {
  if (value instanceof Recorder) return true
  if (value === null || typeof value !== 'object') return false
  const { track, close, processorIdPrefix } = value as Record<string, unknown>
  return typeof track === 'function' && typeof close === 'function' && typeof processorIdPrefix === 'string'
}

function calledAsHook(): WebTopError {
  return invalidUsage(
    'topPlugin is a Fastify plugin, but Fastify called it as a hook: ' +
      'write app.register(topPlugin) or app.register(topPlugin, options) instead of app.addHook(name, topPlugin)',
  )
}

/** Builds the error for a `webTop` decorator that is not a recorder, described by `description` (`describeValue`). */
function decoratorTaken(description: string, cause: unknown): WebTopError {
  return invalidUsage(
    `topPlugin decorates the Fastify instance with \`webTop\`, but another plugin or the app has already ` +
      `decorated it with ${description}: rename that decorator, because topPlugin needs the name for its recorder`,
    cause === undefined ? undefined : { cause },
  )
}

/** Names the kind of a value for an error message, without its content, which may hold a secret. */
function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'function') return `a function${value.name === '' ? '' : ` (${value.name})`}`
  if (typeof value !== 'object') return `a ${typeof value}`
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `an instance of ${name}` : 'an object'
}

function registeredTwice(cause: unknown): WebTopError {
  return invalidUsage(
    'topPlugin is registered twice on the same Fastify instance: register it once, on the app, before the routes',
    { cause },
  )
}

function registeredInChild(): WebTopError {
  return invalidUsage(
    'topPlugin is registered on an instance whose child plugin has it already: ' +
      'register it once, on the app, before the child plugins, and remove the one in the child',
  )
}

function registeredInParent(): WebTopError {
  return invalidUsage(
    'topPlugin is registered in a child plugin of an instance that has it already: ' +
      "the parent's registration records the child's routes too, so remove the one in the child",
  )
}

/**
 * Reads the route pattern, prefix included: `routeOptions.url` on Fastify 5
 * and on 4.x releases that have it, `routerPath` on older 4.x. `routerPath`
 * is read only there, because Fastify 4.29 emits a deprecation warning
 * (FSTDEP017) on its first read.
 */
function readRoutePattern(request: object, routeOptions: RouteOptions | undefined): string | null {
  if (routeOptions !== undefined) return routeOptions.url ?? null
  return (request as { routerPath?: string }).routerPath ?? null
}

/**
 * Returns true for the instance that `Fastify()` returned. Fastify 4.29 and
 * 5.12 build it as an object literal, and each child context with
 * `Object.create(parent)`, while `fastify-plugin` hands a plugin the
 * context it is registered on.
 */
function isRootInstance(fastify: object): boolean {
  return Object.getPrototypeOf(fastify) === Object.prototype
}

/**
 * Follows the app's `trustProxy` setting. Fastify 4 and 5 do not expose it,
 * but only the request class they build for it has an `ips` property.
 */
function isProxyTrusted(request: object): boolean {
  return 'ips' in request
}
