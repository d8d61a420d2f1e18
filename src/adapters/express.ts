/**
 * Express middleware: `app.use(topMiddleware())`. Works with Express 4 and 5.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TopOptions } from '../options'
import { Recorder } from '../recorder/recorder'

/** The parts of Express's request that the middleware reads. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  baseUrl?: string
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
  /** Removes this process's active entries and closes the tracker connection it opened. */
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
  const trustProxyOption = recorder.options.trustProxy

  function recordRequest(req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    const trusted = trustProxyOption ?? isProxyTrusted(req)
    recorder.track(req, res, {
      url: req.originalUrl,
      resolveTaskName: readRoutePattern,
      clientIp: trusted ? req.ip : undefined,
      protocol: trusted ? req.protocol : undefined,
    })
    next()
  }

  return Object.assign(recordRequest as TopMiddleware, {
    recorder,
    close: () => recorder.close(),
  })
}

/** Returns the matched route pattern with its router's mount path (`/api` + `/users/:id`), once routing is done. */
function readRoutePattern(req: ExpressRequest): string | null {
  const path = req.route?.path
  if (path === undefined) return null
  return `${req.baseUrl ?? ''}${String(path)}`
}

/** Follows the app's `trust proxy` setting, which is off by default. */
function isProxyTrusted(req: ExpressRequest): boolean {
  const setting = req.app?.get('trust proxy')
  return setting !== undefined && setting !== false && setting !== 0
}
