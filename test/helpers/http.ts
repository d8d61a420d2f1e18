/**
 * Real HTTP servers and clients for the recording tests. The servers are
 * Express 4 and 5 and Fastify 4 and 5 apps with web-top mounted and the same
 * routes, listening on a loopback address with port 0. The client sends
 * headers in order, repeats included, and can abort.
 */
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express5, { type NextFunction, type Request, type Response } from 'express'
// @ts-expect-error `express4` is an npm alias of express@4, which ships no types of its own.
import express4Untyped from 'express4'
import fastify5, { type FastifyInstance } from 'fastify'
import fastify4 from 'fastify4'
import { topMiddleware, topPlugin, type TopMiddleware, type TopOptions } from '../../src/index'

/** Express 4, typed with the Express 5 types that the tests use from both. */
export const express4 = express4Untyped as typeof express5

export type FrameworkName = 'express5' | 'express4' | 'fastify5' | 'fastify4'

export const FRAMEWORKS: readonly FrameworkName[] = ['express5', 'express4', 'fastify5', 'fastify4']

/** Reason phrase that the `/teapot` route sends with status 418. */
export const CUSTOM_REASON = 'Short And Stout'

/** Max time `/wait` keeps a request open, so a failed test cannot leave one open for good. */
const MAX_HOLD_MS = 10_000

export interface HttpResult {
  status: number
  statusMessage: string
  headers: IncomingHttpHeaders
  body: string
}

export interface RequestOptions {
  method?: string
  /** Header lines as `[name, value]` pairs, sent in order; a name may repeat. */
  headers?: Array<[string, string]>
  /** Aborts the request after this many milliseconds. */
  abortAfterMs?: number
}

/**
 * Sends one request on a fresh connection (no keep-alive agent) and reads
 * the whole response. Rejects when the request is aborted or fails.
 */
export function sendRequest(url: string, options: RequestOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of options.headers ?? []) {
      const existing = headers[name]
      if (existing === undefined) headers[name] = value
      else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value]
    }

    const req = httpRequest(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('error', reject)
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body }),
      )
    })
    req.on('error', reject)
    if (options.abortAfterMs !== undefined) {
      setTimeout(() => req.destroy(new Error('aborted by test')), options.abortAfterMs).unref()
    }
    req.end()
  })
}

/**
 * Polls `check` every 10 ms until it returns a value other than `undefined`,
 * or fails after `timeoutMs`. The default leaves room for a loaded two-core
 * CI machine, where a record can take seconds to reach Redis.
 */
export async function waitFor<T>(
  description: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A running test app with web-top mounted. */
export interface TestApp {
  framework: FrameworkName
  /** Base URL, such as `http://127.0.0.1:41234` or `http://[::1]:41234`. */
  url: string
  host: string
  port: number
  /** Lets every request held by `/wait` respond. */
  releaseWaiting(): void
  /** Number of requests waiting in `/wait` now. */
  waitingCount(): number
  /** Closes the server and the web-top recorder (Express middleware `close()`, Fastify `app.close()`). */
  close(): Promise<void>
  /** Closes only the web-top recorder, leaving the server running. */
  closeRecorder(): Promise<void>
}

interface Gate {
  waiting: Array<() => void>
}

/**
 * Starts an app of the given framework with web-top mounted first and
 * these routes:
 * - `GET /users/:id`: 200 JSON with `X-Custom: yes`, two `Set-Cookie` and an `X-Api-Key` header.
 * - `GET /api/items/:id`: in a router mounted at `/api` (Express) or a plugin with prefix `/api` (Fastify).
 * - `GET /api/fail/:id`: the route fails, and the framework's error handling sends 500.
 * - `GET /teapot`: 418 with the reason phrase {@link CUSTOM_REASON}.
 * - `GET /health`: 200 `ok`.
 * - `GET /wait`: held until `releaseWaiting()`, then 200.
 * - `GET /hang`: never responds (the client is expected to abort).
 */
export async function startApp(
  framework: FrameworkName,
  options: TopOptions,
  host = '127.0.0.1',
): Promise<TestApp> {
  const gate: Gate = { waiting: [] }
  const started = framework.startsWith('express')
    ? await startExpress(framework === 'express5' ? express5 : express4, options, host, gate)
    : await startFastify(framework === 'fastify5' ? fastify5 : (fastify4 as unknown as typeof fastify5), options, host, gate)

  return {
    framework,
    ...started,
    releaseWaiting: () => {
      for (const release of gate.waiting.splice(0)) release()
    },
    waitingCount: () => gate.waiting.length,
  }
}

type StartedApp = Pick<TestApp, 'url' | 'host' | 'port' | 'close' | 'closeRecorder'>

async function startExpress(
  express: typeof express5,
  options: TopOptions,
  host: string,
  gate: Gate,
): Promise<StartedApp> {
  const middleware: TopMiddleware = topMiddleware(options)
  const app = express()
  app.use(middleware)

  app.get('/users/:id', (req: Request, res: Response) => {
    res.setHeader('X-Custom', 'yes')
    res.setHeader('Set-Cookie', ['session=abc', 'theme=dark'])
    res.setHeader('X-Api-Key', 'server-secret')
    res.json({ id: req.params.id })
  })

  const router = express.Router()
  router.get('/items/:id', (req: Request, res: Response) => {
    res.json({ item: req.params.id })
  })
  router.get('/fail/:id', (_req: Request, _res: Response, next: NextFunction) => {
    next(new Error('route failed on purpose'))
  })
  app.use('/api', router)

  app.get('/teapot', (_req: Request, res: Response) => {
    res.statusMessage = CUSTOM_REASON
    res.status(418).send('teapot')
  })
  app.get('/health', (_req: Request, res: Response) => {
    res.send('ok')
  })
  app.get('/wait', (_req: Request, res: Response) => {
    holdUntilReleased(gate, () => res.send('released'))
  })
  app.get('/hang', () => {})
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send('failed')
  })

  const server = await listen(app.listen(0, host), host)
  return {
    ...server,
    closeRecorder: () => middleware.close(),
    close: async () => {
      await server.close()
      await middleware.close()
    },
  }
}

async function startFastify(
  fastify: typeof fastify5,
  options: TopOptions,
  host: string,
  gate: Gate,
): Promise<StartedApp> {
  const app: FastifyInstance = fastify({ logger: false, forceCloseConnections: true })
  await app.register(topPlugin, options)

  app.get('/users/:id', async (request, reply) => {
    reply.header('X-Custom', 'yes')
    reply.header('Set-Cookie', ['session=abc', 'theme=dark'])
    reply.header('X-Api-Key', 'server-secret')
    return { id: (request.params as { id: string }).id }
  })

  await app.register(
    async (api) => {
      api.get('/items/:id', async (request) => ({ item: (request.params as { id: string }).id }))
      api.get('/fail/:id', async () => {
        throw new Error('route failed on purpose')
      })
    },
    { prefix: '/api' },
  )

  app.get('/teapot', async (_request, reply) => {
    reply.raw.statusMessage = CUSTOM_REASON
    reply.code(418)
    return 'teapot'
  })
  app.get('/health', async () => 'ok')
  app.get('/wait', (_request, reply) => {
    holdUntilReleased(gate, () => reply.send('released'))
  })
  app.get('/hang', () => {})

  await app.listen({ port: 0, host })
  const port = (app.server.address() as AddressInfo).port
  return {
    url: formatUrl(host, port),
    host,
    port,
    closeRecorder: () => app.webTop.close(),
    close: () => app.close(),
  }
}

function holdUntilReleased(gate: Gate, respond: () => void): void {
  const timer = setTimeout(respond, MAX_HOLD_MS)
  gate.waiting.push(() => {
    clearTimeout(timer)
    respond()
  })
}

async function listen(server: Server, host: string): Promise<Pick<TestApp, 'url' | 'host' | 'port'> & { close(): Promise<void> }> {
  if (!server.listening) {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve)
      server.once('error', reject)
    })
  }
  const port = (server.address() as AddressInfo).port
  return {
    url: formatUrl(host, port),
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function formatUrl(host: string, port: number): string {
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`
}
