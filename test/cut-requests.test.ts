/**
 * Requests cut off by the server, and responses whose head never went out:
 * Node's `requestTimeout` sends 408 for a request body that stops
 * arriving, Node's HTTP parser has Node send 400, 413 or 431 for a body it
 * rejects, and a response head set with `writeHead()` is written only with
 * the first body chunk. Each record must show what the client received.
 */
import { createServer, STATUS_CODES, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topMiddleware, topPlugin, type HttpTask } from '../src/index'
import { formatRequest, openConnection, type RawConnection } from './helpers/raw-http'
import { tasksFor, waitForActive, waitForPath } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** The server's `requestTimeout`, and how often Node checks it. */
const REQUEST_TIMEOUT_MS = 500
const CHECK_INTERVAL_MS = 100

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

interface CutApp {
  port: number
  close(): Promise<void>
}

/** Creates a Node server with a short request timeout, as both apps use. */
function createTimedServer(listener: RequestListener): Server {
  return createServer({ requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CHECK_INTERVAL_MS }, listener)
}

/**
 * Starts an Express 5 app: `POST /upload` reads the body and responds once
 * it has arrived, `GET /head-only` sets its head with `writeHead()` and
 * writes nothing more.
 */
async function startExpressApp(): Promise<CutApp> {
  const app = express()
  const middleware = topMiddleware({ trackerUrl: redis.url, batchWindowMs: 0 })
  app.use(middleware)
  app.post('/upload', (req, res) => {
    req.resume()
    req.on('end', () => res.send('stored'))
  })
  app.post('/parse', express.json(), (req, res) => res.json(req.body))
  app.get('/head-only', (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' })
  })
  const server = createTimedServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    },
  }
}

/** Starts a Fastify 5 app with the same routes; `/head-only` hijacks the reply. */
async function startFastifyApp(): Promise<CutApp> {
  let server: Server | undefined
  const app: FastifyInstance = fastify({
    serverFactory: (handler) => {
      server = createTimedServer(handler)
      return server
    },
  })
  await app.register(topPlugin, { trackerUrl: redis.url, batchWindowMs: 0 })
  app.addContentTypeParser('text/plain', (_request, payload, done) => {
    payload.resume()
    payload.on('end', () => done(null, 'read'))
  })
  app.post('/upload', async () => 'stored')
  app.post('/parse', async (request) => request.body)
  app.get('/head-only', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'Content-Type': 'text/event-stream' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    close: async () => {
      server?.closeAllConnections()
      await app.close()
    },
  }
}

/** Checks the fields of a request that did not complete. */
function expectCut(task: HttpTask | undefined, status: number | null, message: string | null, outcome: string): void {
  expect(task?.status_code).toBe(status)
  expect(task?.status_message).toBe(message)
  expect(task?.response_headers).toBeNull()
  expect(task?.recorded_successfully).toBe(false)
  expect(task?.tags?.['web_top.outcome']).toBe(outcome)
  expect(task?.ended_at).not.toBeNull()
}

describe.each([
  ['express5', startExpressApp],
  ['fastify5', startFastifyApp],
] as const)('%s cut requests', (framework, startApp) => {
  let app: CutApp
  let connection: RawConnection | undefined

  beforeEach(async () => {
    await redis.client.flushall()
    app = await startApp()
  })

  afterEach(async () => {
    connection?.destroy()
    connection = undefined
    await app.close()
  })

  // On /parse the body parser fails once the socket is gone, and the app's 400 never reaches the client.
  it.each([
    ['/upload', 'text/plain', 1000, 'only ten b'],
    ['/parse', 'application/json', 100, '{"a":'],
  ])('timeout on %s is recorded as 408', async (path, contentType, length, bodyStart) => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('POST', path, [`Content-Type: ${contentType}`, `Content-Length: ${length}`]) + bodyStart,
    )
    const received = await connection.waitForText('408', 5_000)
    expect(received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
    await connection.closed

    const stored = await waitForPath(redis.client, path)
    const tasks = tasksFor(stored, path)
    expect(tasks).toHaveLength(1)
    expectCut(tasks[0], 408, '408 Request Timeout', 'timeout')
    expect(stored.processors).toEqual({})
  })

  // Node's HTTP parser fails on the body of a request already dispatched to the app, and Node
  // (or Fastify's client error handler) responds to it. On /parse the app's 400 for the cut body never leaves.
  it.each([
    ['/upload', 'a malformed chunk size', 'ZZ\r\n', { express5: 400, fastify5: 400 }],
    ['/parse', 'a malformed chunk size', '2\r\n{"\r\nZZ\r\n', { express5: 400, fastify5: 400 }],
    ['/upload', 'trailers over 16 KB', `1\r\na\r\n0\r\nX-Trailer: ${'a'.repeat(20_000)}\r\n\r\n`, { express5: 431, fastify5: 431 }],
    // Fastify responds with 400 to every parser error except headers that are too large.
    ['/upload', 'chunk extensions over 16 KB', `1;a=${'b'.repeat(20_000)}\r\na\r\n0\r\n\r\n`, { express5: 413, fastify5: 400 }],
  ])('body on %s with %s is recorded with the status Node sent', async (path, _what, body, statuses) => {
    const contentType = path === '/parse' ? 'application/json' : 'text/plain'
    connection = await openConnection(app.port)
    connection.write(formatRequest('POST', path, [`Content-Type: ${contentType}`, 'Transfer-Encoding: chunked']))
    await waitForActive(redis.client, 1)
    connection.write(body)
    const status = statuses[framework]
    const message = `${status} ${STATUS_CODES[status]}`
    const received = await connection.waitForText('\r\n\r\n', 5_000)
    expect(received.startsWith(`HTTP/1.1 ${message}\r\n`)).toBe(true)
    await connection.closed

    const stored = await waitForPath(redis.client, path)
    const tasks = tasksFor(stored, path)
    expect(tasks).toHaveLength(1)
    expectCut(tasks[0], status, message, 'rejected')
    expect(stored.processors).toEqual({})
  })

  it('head never written has no status', async () => {
    connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/head-only'))
    await waitForActive(redis.client, 1)
    // Give the app time to call writeHead(), which sends nothing by itself.
    await new Promise((resolve) => setTimeout(resolve, 100))
    connection.destroy()

    const stored = await waitForPath(redis.client, '/head-only')
    const tasks = tasksFor(stored, '/head-only')
    expect(tasks).toHaveLength(1)
    expectCut(tasks[0], null, null, 'aborted')
    expect(stored.processors).toEqual({})
  })
})
