/**
 * Requests cut off by the server, and responses whose head never went out:
 * Node's `requestTimeout` sends 408 for a request body that stops
 * arriving, Node's HTTP parser has Node send 400, 413 or 431 for a body it
 * rejects, and a response head set with `writeHead()` is written only with
 * the first body chunk. For bytes that Node's HTTP parser rejects after
 * complete requests on a keep-alive connection, Node (or Fastify's client
 * error handler) sends 400 to the oldest request still waiting, even when
 * the app's response to it ends later. Each record must show what the
 * client received.
 */
import { createServer, STATUS_CODES, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topMiddleware, topPlugin, type HttpTask } from '../src/index'
import { formatRequest, openConnection, type RawConnection, type RawResponse } from './helpers/raw-http'
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
  // Responds at once and echoes a dot for each chunk of the body.
  app.post('/echo-stream', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.write('started\n')
    req.on('data', () => res.write('.'))
    req.on('end', () => res.end())
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

/**
 * Starts a Fastify 5 app with the same routes, where `/head-only` hijacks
 * the reply, and `GET /async-answer` with an async handler.
 */
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
  app.get('/async-answer', async () => 'ok')
  app.get('/head-only', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'Content-Type': 'text/event-stream' })
  })
  // Responds in the onRequest hook, before Fastify reads the body.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url !== '/echo-stream') return done()
    reply.hijack()
    reply.raw.writeHead(200, { 'Content-Type': 'text/plain' })
    reply.raw.write('started\n')
    request.raw.on('data', () => reply.raw.write('.'))
    request.raw.on('end', () => reply.raw.end())
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

  // Node sends no 408 once bytes of the response went out: the client keeps the app's 200.
  it('timeout after the head went out keeps its status', async () => {
    connection = await openConnection(app.port)
    connection.write(formatRequest('POST', '/echo-stream', ['Content-Type: text/plain', 'Content-Length: 100']) + 'abc')
    const received = await connection.waitForText('started', 5_000)
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    await connection.closed
    // Node writes no 408 then. Fastify's client error handler writes one into
    // the cut chunked body, where a client cannot read it as a response.
    if (framework === 'express5') expect(await connection.waitForText('started')).not.toContain('408')

    const stored = await waitForPath(redis.client, '/echo-stream')
    const tasks = tasksFor(stored, '/echo-stream')
    expect(tasks).toHaveLength(1)
    expect(tasks[0]?.status_code).toBe(200)
    expect(tasks[0]?.recorded_successfully).toBe(false)
    expect(tasks[0]?.tags?.['web_top.outcome']).toBe('timeout')
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

  /**
   * A path whose response ends after Node's HTTP parser failed on bytes
   * that followed its request in the same read, but before the connection
   * closes. Express 5's router (2.3) sends its 404 from `setImmediate()`,
   * and Fastify sends an async handler's value after a microtask.
   */
  const lateAnswerPath = { express5: '/missing', fastify5: '/async-answer' }[framework]

  /** Reads the one response the client gets, and checks that the server then closes the connection. */
  async function readOnlyResponse(raw: RawConnection): Promise<RawResponse> {
    const [response] = await raw.readResponses(1)
    await raw.closed
    await expect(raw.readResponses(1)).rejects.toThrow(/connection closed/)
    return response as RawResponse
  }

  // Node's HTTP parser expects nothing after an HTTP/1.0 request without keep-alive (HPE_CLOSED_CONNECTION).
  const postPath = { express5: '/missing', fastify5: '/upload' }[framework]
  it.each([
    ['malformed line after GET', lateAnswerPath, `${formatRequest('GET', lateAnswerPath)}BADLINE\r\n\r\n`],
    [
      'bytes after HTTP/1.0 POST',
      postPath,
      `POST ${postPath} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\r\nhello body`,
    ],
  ])('%s gets 400', async (_what, path, bytes) => {
    connection = await openConnection(app.port)
    connection.write(bytes)
    const response = await readOnlyResponse(connection)
    expect(response.status).toBe(400)

    const stored = await waitForPath(redis.client, path)
    const tasks = tasksFor(stored, path)
    expect(tasks).toHaveLength(1)
    expectCut(tasks[0], 400, '400 Bad Request', 'rejected')
    expect(stored.processors).toEqual({})
  })

  it('pipelined pair before malformed line', async () => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('GET', `${lateAnswerPath}?i=1`) + formatRequest('GET', `${lateAnswerPath}?i=2`) + 'BADLINE\r\n\r\n',
    )
    const response = await readOnlyResponse(connection)
    expect(response.status).toBe(400)

    const stored = await waitForPath(redis.client, lateAnswerPath, 2)
    const tasks = tasksFor(stored, lateAnswerPath)
    expect(tasks).toHaveLength(2)
    const first = tasks.find((task) => task.params?.i === '1')
    const second = tasks.find((task) => task.params?.i === '2')
    expectCut(first, 400, '400 Bad Request', 'rejected')
    expectCut(second, null, null, 'aborted')
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
