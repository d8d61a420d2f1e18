/**
 * Fastify plugin: `app.register(topPlugin, options)`. Works with Fastify 4 and 5.
 * Problems are logged through Fastify's own logger unless `logger` is given.
 */
import type { FastifyPluginCallback } from 'fastify'
import fastifyPlugin from 'fastify-plugin'
import type { TopOptions } from '../options'
import { Recorder } from '../recorder/recorder'

declare module 'fastify' {
  interface FastifyInstance {
    /** The web-top recorder registered by `topPlugin`. */
    webTop: Recorder
  }
}

const webTopPlugin: FastifyPluginCallback<TopOptions> = function webTop(fastify, options, done) {
  const recorder = new Recorder({ logger: fastify.log, ...options })
  // With `trustProxy` set, the recorder reads the forwarded headers itself.
  // Unset, the app's `trustProxy` setting decides, and `request.ip` and
  // `request.protocol` already follow it.
  const followAppSetting = recorder.options.trustProxy === undefined

  fastify.decorate('webTop', recorder)

  fastify.addHook('onRequest', function recordRequest(request, reply, next) {
    const trusted = followAppSetting && isProxyTrusted(request)
    recorder.track(request.raw, reply.raw, {
      taskName: readRoutePattern(request),
      clientIp: trusted ? request.ip : undefined,
      protocol: trusted ? request.protocol : undefined,
    })
    next()
  })

  fastify.addHook('onClose', function closeRecorder(_instance, next) {
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
export const topPlugin = fastifyPlugin(webTopPlugin, {
  name: 'web-top',
  fastify: '4.x || 5.x',
})

/**
 * Reads the route pattern, prefix included: `routeOptions.url` on Fastify 5
 * and on 4.x releases that have it, `routerPath` on older 4.x. `routerPath`
 * is read only there, because Fastify 4.29 emits a deprecation warning
 * (FSTDEP017) on its first read.
 */
function readRoutePattern(request: {
  routeOptions?: { url?: string }
  routerPath?: string
}): string | null {
  const routeOptions = request.routeOptions
  if (routeOptions !== undefined) return routeOptions.url ?? null
  return request.routerPath ?? null
}

/**
 * Follows the app's `trustProxy` setting. Fastify 4 and 5 do not expose it,
 * but only the request class they build for it has an `ips` property.
 */
function isProxyTrusted(request: object): boolean {
  return 'ips' in request
}
