/**
 * Recognizing the arguments that Express and Fastify pass to middleware,
 * plugins and hooks, so that each adapter can tell a mounting mistake from
 * a real call and name the call to write in its error.
 */
import { IncomingMessage } from 'node:http'

/**
 * Returns true when `value` is Node's request object, or has the shape of
 * one (`method`, `url` and `headers`) and comes with a `next` function.
 */
export function isHttpRequest(value: unknown, next: unknown): boolean {
  if (value instanceof IncomingMessage) return true
  if (typeof next !== 'function') return false
  return hasRequestShape(value)
}

/**
 * Returns true for Koa's context (`ctx`), which Koa passes its middleware
 * with `next` in place of Node's request and response (checked on Koa 3).
 * The context has Node's request as `req`.
 */
export function isKoaContext(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || value instanceof IncomingMessage) return false
  return (value as { req?: unknown }).req instanceof IncomingMessage
}

/** Returns true for the arguments that Fastify passes a plugin: its instance and a `done` callback. */
export function isFastifyPluginCall(instance: unknown, done: unknown): done is (err?: Error) => void {
  return isFastifyInstance(instance) && typeof done === 'function'
}

/**
 * Returns true when Fastify 4 or 5 runs a function as a hook, which never
 * happens to a plugin or Express middleware mounted the documented way:
 * - `this` is a Fastify instance, in every hook. It is the only sign in
 *   `onReady`, `onListen` and `preClose`, which get no arguments at all
 *   when the function declares more than one,
 * - a Fastify request comes first, in the request hooks (`onRequest`,
 *   `preHandler`, `onSend`, `onResponse`, `onError`, `onRequestAbort`...),
 * - `done` comes first, in the application hooks that have one argument,
 * - the instance comes first without `done` third, in `onClose` and `onRegister`.
 * Express, @fastify/middie and Fastify's `register()` call middleware and
 * plugins without `this`.
 */
export function isFastifyHookCall(thisValue: unknown, args: ArrayLike<unknown>): boolean {
  if (isFastifyInstance(thisValue)) return true
  const first = args[0]
  if (typeof first === 'function') return true
  if (isFastifyRequest(first)) return true
  return isFastifyInstance(first) && typeof args[2] !== 'function'
}

/**
 * Hands `error` to a hook's `done` callback, which is its last function
 * argument in every Fastify 4 and 5 hook that has one. Throws `error` when
 * there is none (`onRoute`, `onRegister`, or `onReady` called without
 * arguments), so that the call that ran the hook fails.
 */
export function failHookCall(args: ArrayLike<unknown>, error: Error): void {
  for (let i = args.length - 1; i >= 0; i--) {
    const done = args[i]
    if (typeof done === 'function') {
      done(error)
      return
    }
  }
  throw error
}

/**
 * Returns true for the request object of Fastify 4 and 5: not Node's
 * request, but one that has it (or an HTTP/2 request) as `raw`.
 */
function isFastifyRequest(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || value instanceof IncomingMessage) return false
  const raw = (value as { raw?: unknown }).raw
  return raw instanceof IncomingMessage || hasRequestShape(raw)
}

/** Returns true for a Fastify 4 or 5 instance, which has `decorate()` and `addHook()`. */
export function isFastifyInstance(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  const { decorate, addHook } = value as Record<string, unknown>
  return typeof decorate === 'function' && typeof addHook === 'function'
}

function hasRequestShape(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  const { method, url, headers } = value as Record<string, unknown>
  return typeof method === 'string' && typeof url === 'string' && typeof headers === 'object'
}
