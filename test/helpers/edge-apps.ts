/**
 * Apps with routes that end in unusual ways, for Express 4 and 5 and
 * Fastify 4 and 5, each with web-top mounted first and listening on
 * 127.0.0.1 port 0:
 * - `GET /ok`: 200 `ok` (HEAD gets the same head).
 * - `GET /throw`: the handler throws; the framework's error handling sends 500.
 * - `GET /reject`: the handler's promise rejects; 500.
 * - `GET /custom-error`: an error with status 503, sent by the app's error handler as 503.
 * - `GET /empty`: 200 with an empty body.
 * - `GET /no-content`: 204.
 * - `GET /etag`: 200 with ETag `"v1"`, or 304 when `If-None-Match: "v1"` is sent.
 * - `GET /stream`: sends its head and `first`, then `last` once released.
 * - `GET /events`: server-sent events; one event, then the stream ends once released.
 * - `GET /hijack` (Fastify only): `reply.hijack()`, then 201 written on the raw response.
 * - `GET /hang`: never responds.
 * - `POST /upload`: reads the whole body, then 200.
 * - `POST /parse`: the framework's JSON body parser, then 200; a body cut
 *   short makes the parser fail, and the error handler still responds.
 * - `POST /reject-early`: 401 at once, without reading the body.
 * Any other path gets the framework's 404.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import express5, { type NextFunction, type Request, type Response } from 'express'
import fastify5, { type FastifyInstance } from 'fastify'
import fastify4 from 'fastify4'
import { topMiddleware, topPlugin, type Recorder, type TopOptions } from '../../src/index'
import { express4, type FrameworkName } from './http'

/** Max time a held response waits for its release, so a failed test cannot leave it open. */
const MAX_HOLD_MS = 10_000

export interface EdgeApp {
  framework: FrameworkName
  url: string
  port: number
  recorder: Recorder
  /** Lets every held `/stream` and `/events` response finish. */
  release(): void
  /** Number of held responses now. */
  heldCount(): number
  close(): Promise<void>
}

interface Gate {
  waiting: Array<() => void>
}

export async function startEdgeApp(framework: FrameworkName, options: TopOptions): Promise<EdgeApp> {
  const gate: Gate = { waiting: [] }
  const isExpress5 = framework === 'express5'
  const fastify = framework === 'fastify5' ? fastify5 : (fastify4 as unknown as typeof fastify5)
  const started = framework.startsWith('express')
    ? await startExpress(isExpress5 ? express5 : express4, isExpress5, options, gate)
    : await startFastify(fastify, options, gate)

  return {
    framework,
    ...started,
    release: () => {
      for (const release of gate.waiting.splice(0)) release()
    },
    heldCount: () => gate.waiting.length,
  }
}

type StartedApp = Pick<EdgeApp, 'url' | 'port' | 'recorder' | 'close'>

/** An error with an HTTP status, as both frameworks' error handling reads it. */
class StatusError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message)
  }
}

async function startExpress(
  express: typeof express5,
  catchesRejections: boolean,
  options: TopOptions,
  gate: Gate,
): Promise<StartedApp> {
  const middleware = topMiddleware(options)
  const app = express()
  app.use(middleware)

  app.get('/ok', (_req: Request, res: Response) => {
    res.send('ok')
  })
  app.get('/throw', () => {
    throw new Error('handler failed on purpose')
  })
  app.get('/reject', (_req: Request, _res: Response, next: NextFunction) => {
    const failing = Promise.reject(new Error('handler rejected on purpose'))
    // Express 5 passes a rejected promise to the error handler itself; Express 4 needs next().
    if (catchesRejections) return failing
    failing.catch(next)
    return undefined
  })
  app.get('/custom-error', (_req: Request, _res: Response, next: NextFunction) => {
    next(new StatusError('unavailable on purpose', 503))
  })
  app.get('/empty', (_req: Request, res: Response) => {
    res.end()
  })
  app.get('/no-content', (_req: Request, res: Response) => {
    res.status(204).end()
  })
  app.get('/etag', (_req: Request, res: Response) => {
    res.setHeader('ETag', '"v1"')
    res.send('tagged body')
  })
  app.get('/stream', (_req: Request, res: Response) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first')
    hold(gate, () => res.end('last'))
  })
  app.get('/events', (_req: Request, res: Response) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write('data: 1\n\n')
    hold(gate, () => res.end())
  })
  app.get('/hang', () => {})
  app.post('/upload', (req: Request, res: Response) => {
    readBody(req).then((body) => res.send(`received ${body.length} bytes`))
  })
  app.post('/parse', express.json(), (_req: Request, res: Response) => {
    res.send('parsed')
  })
  app.post('/reject-early', (_req: Request, res: Response) => {
    res.status(401).send('no')
  })
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err instanceof StatusError ? err.statusCode : 500).send('failed')
  })

  const server = app.listen(0, '127.0.0.1')
  await listening(server)
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    recorder: middleware.recorder,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    },
  }
}

async function startFastify(
  fastify: typeof fastify5,
  options: TopOptions,
  gate: Gate,
): Promise<StartedApp> {
  const app: FastifyInstance = fastify({ logger: false, forceCloseConnections: true })
  await app.register(topPlugin, options)
  app.setErrorHandler((err, _request, reply) => {
    const status = err instanceof StatusError ? err.statusCode : 500
    reply.code(status).send({ error: (err as Error).message })
  })

  app.get('/ok', async () => 'ok')
  app.get('/throw', () => {
    throw new Error('handler failed on purpose')
  })
  app.get('/reject', async () => {
    throw new Error('handler rejected on purpose')
  })
  app.get('/custom-error', async () => {
    throw new StatusError('unavailable on purpose', 503)
  })
  app.get('/empty', async (_request, reply) => reply.send())
  app.get('/no-content', async (_request, reply) => reply.code(204).send())
  app.get('/etag', async (request, reply) => {
    if (request.headers['if-none-match'] === '"v1"') return reply.code(304).send()
    return reply.header('etag', '"v1"').send('tagged body')
  })
  app.get('/stream', (_request, reply) => {
    const stream = new PassThrough()
    stream.write('first')
    hold(gate, () => stream.end('last'))
    reply.type('text/plain').send(stream)
  })
  app.get('/events', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    reply.raw.write('data: 1\n\n')
    hold(gate, () => reply.raw.end())
  })
  app.get('/hijack', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(201, { 'content-type': 'text/plain' })
    reply.raw.end('hijacked')
  })
  app.get('/hang', () => {})
  app.post('/upload', async (request) => `received ${String(request.body ?? '').length} bytes`)
  app.post('/parse', async () => 'parsed')
  // Without a content type parser for it, Fastify would read the body first.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/reject-early') await reply.code(401).send('no')
  })
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => done(null, body))

  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    recorder: app.webTop,
    close: () => app.close(),
  }
}

function hold(gate: Gate, respond: () => void): void {
  const timer = setTimeout(respond, MAX_HOLD_MS)
  gate.waiting.push(() => {
    clearTimeout(timer)
    respond()
  })
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => resolve(body))
  })
}

async function listening(server: Server): Promise<void> {
  if (server.listening) return
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
}
