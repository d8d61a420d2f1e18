/**
 * Fastify route for the HTTP tracker endpoint:
 * `app.register(topTrackerRoute, { path: '/web-top' })`. Works with Fastify 4 and 5.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { INVALID_OPTION } from '../errors'
import type { Tracker } from '../trackers/tracker'
import { bindPluginLogger } from './fastify'
import type { AsyncPlugin } from './fastify-plugin-types'
import { createTrackerEndpoint, findRecordingTracker, type TrackerEndpointOptions } from './tracker-endpoint'

export interface TrackerRouteOptions extends TrackerEndpointOptions {
  /**
   * Path of the route, under the prefix the plugin is registered with.
   * @default '/web-top'
   */
  path?: string | undefined
}

/**
 * Methods the route handles: GET serves tasks, the others get 405.
 * HEAD is listed so that Fastify's automatic HEAD route does not serve the tasks' headers.
 */
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/** The tracker route, typed with Fastify's plugin type; `topTrackerRoute` exports it in the package's own shape. */
const trackerRoute: FastifyPluginAsync<TrackerRouteOptions> = async function webTopTrackerRoute(
  fastify,
  options,
) {
  const { path = '/web-top', apiKey, tracker, logger } = options
  if (typeof path !== 'string' || !path.startsWith('/')) {
    const error = new TypeError(
      `web-top: The \`path\` option must be a string that starts with "/" (received ${JSON.stringify(path)})`,
    )
    throw Object.assign(error, { code: INVALID_OPTION })
  }

  const handle = createTrackerEndpoint(
    { apiKey, tracker, logger: logger ?? bindPluginLogger(fastify.log) },
    process.env,
    () => readPluginTracker(fastify) ?? findRecordingTracker(),
  )

  fastify.route({
    method: ROUTE_METHODS,
    url: path,
    exposeHeadRoute: false,
    config: { webTop: { ignore: true } },
    handler: async function serveTrackerRequest(request, reply) {
      const { statusCode, headers, body } = await handle({
        method: request.method,
        url: request.url,
        headers: request.headers,
      })
      return reply.code(statusCode).headers(headers).send(body)
    },
  })
}

/**
 * Registers the tracker endpoint as a route. The tracker is the one in the
 * `tracker` option, else the one of `topPlugin` when it is registered on
 * this instance or a parent. With `topPlugin` in child plugins only, it is
 * the one that the open recorders of the process write to, chosen as for
 * `topTrackerEndpoint`, else the shared memory tracker.
 *
 * The route's requests are never recorded, because its `config` makes
 * `topPlugin` skip them, whatever the order of registration.
 *
 * @example
 * await app.register(topPlugin, { trackerUrl: 'memory://' })
 * await app.register(topTrackerRoute, { path: '/web-top', apiKey: process.env.TOP_WEB_API_KEY })
 */
export const topTrackerRoute: AsyncPlugin<TrackerRouteOptions> = trackerRoute

/** Returns the tracker of `topPlugin`, which decorates the root instance, if it is registered. */
function readPluginTracker(fastify: FastifyInstance): Tracker | undefined {
  return (fastify as { webTop?: { tracker?: Tracker } }).webTop?.tracker
}
