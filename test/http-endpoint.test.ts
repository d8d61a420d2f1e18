import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import express from 'express'
import Fastify from 'fastify'
import Fastify4 from 'fastify4'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createTrackerEndpoint,
  createTrackerFromUrl,
  HttpTracker,
  HttpTrackerError,
  MemoryTracker,
  topMiddleware,
  topPlugin,
  topTrackerEndpoint,
  topTrackerRoute,
  type Logger,
  type TrackerEndpointOptions,
} from '../src/index'
import { express4 } from './helpers/http'
import { writeOversizedJson } from './helpers/large-reply'
import { findFreePort } from './helpers/redis-server'

const API_KEY = randomBytes(24).toString('base64url')

/** Runs a full garbage collection, without starting the test process with --expose-gc. */
function forceGc(): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

/** Things to stop after each test, last started first. */
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

type Framework = 'express 5' | 'express 4' | 'fastify 5' | 'fastify 4'

/** Starts an app that serves only the tracker endpoint at /web-top and returns its URL. */
async function startEndpoint(framework: Framework, options: TrackerEndpointOptions): Promise<string> {
  if (framework === 'express 5' || framework === 'express 4') {
    const app = framework === 'express 5' ? express() : express4()
    app.all('/web-top', topTrackerEndpoint(options))
    const origin = await listen(app as unknown as Parameters<typeof createServer>[1])
    return `${origin}/web-top`
  }

  const app = framework === 'fastify 5' ? Fastify() : (Fastify4() as unknown as ReturnType<typeof Fastify>)
  await app.register(topTrackerRoute, { path: '/web-top', ...options })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  cleanups.push(() => app.close())
  return `${origin}/web-top`
}

/** Serves a request listener on 127.0.0.1 and returns its origin. */
async function listen(listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function createTrackerWithTasks(): MemoryTracker {
  const tracker = new MemoryTracker()
  tracker.recordStart('host/1-0-1.0', JSON.stringify({ task_id: 'a', method: 'GET', path: '/first' }))
  tracker.recordEnd('host/1-0-1.0', JSON.stringify({ task_id: 'a', method: 'GET', path: '/first', status_code: 200 }))
  tracker.recordStart('host/1-0-1.0', JSON.stringify({ task_id: 'b', method: 'POST', path: '/second' }))
  tracker.recordEnd('host/1-0-1.0', JSON.stringify({ task_id: 'b', method: 'POST', path: '/second', status_code: 201 }))
  tracker.recordStart('host/1-0-1.1', JSON.stringify({ task_id: 'c', method: 'GET', path: '/slow' }))
  return tracker
}

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

async function request(url: string, init: RequestInit = {}): Promise<RawResponse> {
  const response = await fetch(url, init)
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() }
}

function createLoggerSpy(): Logger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = []
  const errors: string[] = []
  return {
    warnings,
    errors,
    warn: (_object, message) => warnings.push(message),
    error: (_object, message) => errors.push(message),
  }
}

const FRAMEWORKS: Framework[] = ['express 5', 'express 4', 'fastify 5', 'fastify 4']

describe.each(FRAMEWORKS)('tracker endpoint on %s', (framework) => {
  it('serves active tasks by processor id', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const response = await request(`${url}?action=active-tasks`, { headers: { 'x-api-key': API_KEY } })

    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(response.headers['cache-control']).toBe('no-store')
    const active = JSON.parse(response.body)
    expect(Object.keys(active)).toEqual(['host/1-0-1.1'])
    expect(active['host/1-0-1.1']).toMatchObject({ task_id: 'c', method: 'GET', path: '/slow' })
  })

  it('reads no completed tasks for the active ones', async () => {
    const reads: Array<number | undefined> = []
    const tracker = createTrackerWithTasks()
    const read = tracker.read.bind(tracker)
    tracker.read = async (options = {}) => {
      reads.push(options.completedLimit)
      return read(options)
    }
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker })
    const active = await request(`${url}?action=active-tasks`, { headers: { 'x-api-key': API_KEY } })
    const completed = await request(`${url}?action=completed-tasks&limit=5`, { headers: { 'x-api-key': API_KEY } })

    expect(Object.keys(JSON.parse(active.body))).toEqual(['host/1-0-1.1'])
    expect(JSON.parse(completed.body)).toHaveLength(2)
    expect(reads).toEqual([0, 5])
  })

  it('serves completed tasks newest first', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const response = await request(`${url}?action=completed-tasks`, { headers: { 'x-api-key': API_KEY } })

    expect(response.status).toBe(200)
    const completed = JSON.parse(response.body)
    expect(Array.isArray(completed)).toBe(true)
    expect(completed.map((task: { task_id: string }) => task.task_id)).toEqual(['b', 'a'])
    expect(completed[0]).toMatchObject({ method: 'POST', path: '/second', status_code: 201 })
  })

  it('applies the limit parameter', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const response = await request(`${url}?action=completed-tasks&limit=1`, { headers: { 'x-api-key': API_KEY } })
    const invalid = await request(`${url}?action=completed-tasks&limit=0`, { headers: { 'x-api-key': API_KEY } })

    expect(JSON.parse(response.body).map((task: { task_id: string }) => task.task_id)).toEqual(['b'])
    expect(invalid.status).toBe(400)
  })

  it('accepts bearer and query parameter keys', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const bearer = await request(`${url}?action=active-tasks`, { headers: { authorization: `Bearer ${API_KEY}` } })
    const param = await request(`${url}?api-key=${encodeURIComponent(API_KEY)}&action=active-tasks`)

    expect(bearer.status).toBe(200)
    expect(param.status).toBe(200)
    expect(JSON.parse(param.body)).toHaveProperty(['host/1-0-1.1'])
  })

  it('answers 401 without a key', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const missing = await request(`${url}?action=active-tasks`)
    const empty = await request(`${url}?action=active-tasks&api-key=`)
    const basic = await request(`${url}?action=active-tasks`, { headers: { authorization: `Basic ${API_KEY}` } })

    expect(missing.status).toBe(401)
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="web-top"')
    expect(JSON.parse(missing.body)).toEqual({ error: 'Missing API key: send it in the X-API-Key header.' })
    expect(empty.status).toBe(401)
    expect(basic.status).toBe(401)
  })

  it('answers 403 to a wrong key of any length', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const sameLength = `${API_KEY.slice(0, -1)}${API_KEY.endsWith('A') ? 'B' : 'A'}`
    const responses = [
      await request(`${url}?action=active-tasks`, { headers: { 'x-api-key': sameLength } }),
      await request(`${url}?action=active-tasks`, { headers: { 'x-api-key': 'short' } }),
      await request(`${url}?action=active-tasks&api-key=${API_KEY}x`),
      await request(`${url}?action=active-tasks`, { headers: { authorization: `Bearer ${API_KEY}${API_KEY}` } }),
    ]

    for (const response of responses) {
      expect(response.status).toBe(403)
      expect(JSON.parse(response.body)).toEqual({ error: 'Invalid API key.' })
    }
  })

  it('answers 405 with Allow: GET to other methods', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD']) {
      const response = await request(`${url}?action=active-tasks`, { method, headers: { 'x-api-key': API_KEY } })
      expect(response.status, method).toBe(405)
      expect(response.headers.allow, method).toBe('GET')
    }
  })

  it('answers 400 to a missing or unknown action', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const missing = await request(url, { headers: { 'x-api-key': API_KEY } })
    const unknown = await request(`${url}?action=clear`, { headers: { 'x-api-key': API_KEY } })

    expect(missing.status).toBe(400)
    expect(unknown.status).toBe(400)
    expect(JSON.parse(unknown.body)).toEqual({
      error: 'Missing or unknown action: use action=active-tasks or action=completed-tasks.',
    })
  })

  it('checks the key before the action', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const response = await request(`${url}?action=clear`, { headers: { 'x-api-key': 'wrong-key-wrong-key' } })

    expect(response.status).toBe(403)
  })

  it('never sends the key back', async () => {
    const url = await startEndpoint(framework, { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const keyStart = API_KEY.slice(0, 6)
    const cases: Array<[string, RequestInit]> = [
      [`${url}?action=active-tasks`, { headers: { 'x-api-key': API_KEY } }],
      [`${url}?action=completed-tasks&api-key=${API_KEY}`, {}],
      [`${url}?action=nothing`, { headers: { 'x-api-key': API_KEY } }],
      [`${url}?action=active-tasks`, {}],
      [`${url}?action=active-tasks`, { headers: { 'x-api-key': `${keyStart}-but-wrong-after-that` } }],
      [`${url}?action=active-tasks`, { method: 'POST', headers: { 'x-api-key': API_KEY } }],
    ]

    for (const [target, init] of cases) {
      const response = await request(target, init)
      const headerText = Object.entries(response.headers).flat().join('\n')
      expect(response.body).not.toContain(keyStart)
      expect(headerText).not.toContain(keyStart)
    }
  })
})

describe('tracker endpoint setup', () => {
  it('rejects a missing key with a TypeError', () => {
    let error: unknown
    try {
      createTrackerEndpoint({}, {})
    } catch (err) {
      error = err
    }

    expect(error).toBeInstanceOf(TypeError)
    expect(error).toMatchObject({ code: 'WEB_TOP_INVALID_OPTION' })
    expect((error as Error).message).toContain('TOP_WEB_API_KEY')
  })

  it('rejects a short key, hiding it', () => {
    const shortKey = 'fifteen-chars!!'
    let error: unknown
    try {
      createTrackerEndpoint({ apiKey: shortKey }, {})
    } catch (err) {
      error = err
    }

    expect(error).toBeInstanceOf(RangeError)
    expect(error).toMatchObject({ code: 'WEB_TOP_INVALID_OPTION' })
    expect((error as Error).message).toContain('at least 16 characters long (received 15 characters)')
    expect((error as Error).message).not.toContain(shortKey)
  })

  it('hides a short environment key', () => {
    expect(() => createTrackerEndpoint({}, { TOP_WEB_API_KEY: 'env-key-short' })).toThrow(RangeError)
    expect(() => createTrackerEndpoint({}, { TOP_WEB_API_KEY: 'env-key-short' })).not.toThrow(/env-key-short/)
    // The value came from the variable, so the message names it rather than the option.
    expect(() => createTrackerEndpoint({}, { TOP_WEB_API_KEY: 'env-key-short' })).toThrow(
      'The TOP_WEB_API_KEY environment variable must be at least 16 characters long',
    )
  })

  it('reads the key from TOP_WEB_API_KEY', async () => {
    const answer = createTrackerEndpoint({ tracker: createTrackerWithTasks() }, { TOP_WEB_API_KEY: API_KEY })
    const response = await answer({ method: 'GET', url: '/web-top?action=active-tasks', headers: { 'x-api-key': API_KEY } })

    expect(response.statusCode).toBe(200)
  })

  it('rejects a key that is not a string', () => {
    expect(() => createTrackerEndpoint({ apiKey: 1234567890123456789 as unknown as string }, {})).toThrow(TypeError)
  })

  it('rejects a tracker without read()', () => {
    expect(() => createTrackerEndpoint({ apiKey: API_KEY, tracker: {} as MemoryTracker }, {})).toThrow(
      'The `tracker` option must be a tracker with a read() method',
    )
  })

  it('rejects a short Fastify route key', async () => {
    const app = Fastify()
    cleanups.push(() => app.close())
    app.register(topTrackerRoute, { apiKey: 'too-short' })

    await expect(app.ready()).rejects.toThrow(RangeError)
  })

  it('answers 503 when the tracker cannot be read', async () => {
    const logger = createLoggerSpy()
    const tracker = { read: () => Promise.reject(new Error('redis is down')) }
    const url = await startEndpoint('express 5', { apiKey: API_KEY, tracker, logger })
    const response = await request(`${url}?action=active-tasks`, { headers: { 'x-api-key': API_KEY } })

    expect(response.status).toBe(503)
    expect(JSON.parse(response.body)).toEqual({ error: 'Could not read the tracker.' })
    expect(logger.errors).toEqual(['web-top tracker endpoint failed to read the tracker'])
  })
})

describe('tracker endpoint and the recorder', () => {
  it('is not recorded when mounted before topMiddleware', async () => {
    const tracker = new MemoryTracker()
    const recording = topMiddleware({ tracker })
    const app = express()
    app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY, tracker }))
    app.use(recording)
    app.get('/hello', (_req, res) => {
      res.send('hello')
    })
    const origin = await listen(app)

    await request(`${origin}/hello`)
    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    await reader.read()
    const snapshot = await reader.read()

    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed.map((task) => task.path)).toEqual(['/hello'])
    await recording.close()
  })

  it('is not recorded by topPlugin when its path is ignored', async () => {
    const tracker = new MemoryTracker()
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(topPlugin, { tracker, ignore: ['/web-top'] })
    await app.register(topTrackerRoute, { apiKey: API_KEY })
    app.get('/hello', async () => 'hello')
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })

    await request(`${origin}/hello`)
    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    await reader.read()
    const snapshot = await reader.read()

    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed.map((task) => task.path)).toEqual(['/hello'])
  })

  it('discards its own requests after topMiddleware', async () => {
    const tracker = new MemoryTracker()
    const logger = createLoggerSpy()
    const recording = topMiddleware({ tracker })
    const app = express()
    app.use(recording)
    app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY, tracker, logger }))
    const origin = await listen(app)

    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    await reader.read()
    const snapshot = await reader.read()

    expect(logger.warnings).toEqual([])
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toEqual([])
    await recording.close()
  })
})

describe('HttpTracker round trip', () => {
  it('reads Express app recordings back', async () => {
    const recording = topMiddleware({ trackerUrl: 'memory://' })
    const app = express()
    app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY }))
    app.use(recording)
    let releaseSlow: () => void = () => {}
    const slowStarted = new Promise<void>((started) => {
      app.get('/express-round-trip/slow', (_req, res) => {
        started()
        releaseSlow = () => res.send('done')
      })
    })
    app.get('/express-round-trip/users/:id', (req, res) => {
      res.status(req.params.id === '0' ? 404 : 200).json({ id: req.params.id })
    })
    const origin = await listen(app)

    await request(`${origin}/express-round-trip/users/1`)
    await request(`${origin}/express-round-trip/users/0`, { method: 'GET' })
    const slowResponse = request(`${origin}/express-round-trip/slow?q=1`)
    await slowStarted

    const reader = createTrackerFromUrl(`${origin}/web-top`, { apiKey: API_KEY })
    const during = await reader.read()
    releaseSlow()
    await slowResponse
    const after = await reader.read()

    expect(reader.kind).toBe('http')
    const active = [...during.active.values()].filter((task) => task.path?.startsWith('/express-round-trip'))
    expect(active.map((task) => task.path)).toEqual(['/express-round-trip/slow'])
    expect(active[0]).toMatchObject({ method: 'GET', status_code: null, ended_at: null, params: { q: '1' } })

    const completed = after.completed.filter((task) => task.path?.startsWith('/express-round-trip'))
    expect(completed.map((task) => [task.path, task.status_code, task.task_name])).toEqual([
      ['/express-round-trip/slow', 200, '/express-round-trip/slow'],
      ['/express-round-trip/users/0', 404, '/express-round-trip/users/:id'],
      ['/express-round-trip/users/1', 200, '/express-round-trip/users/:id'],
    ])
    expect(completed[0]?.process_id).toBe(process.pid)
    await recording.close()
  })

  it('reads Fastify app recordings back', async () => {
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(topPlugin, { trackerUrl: 'memory://', ignore: ['/web-top'] })
    await app.register(topTrackerRoute, { apiKey: API_KEY })
    app.get('/fastify-round-trip/users/:id', async (_request, reply) => reply.code(201).send({ ok: true }))
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })

    await request(`${origin}/fastify-round-trip/users/7`, { headers: { 'user-agent': 'round-trip-test' } })
    const snapshot = await new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY }).read({ completedLimit: 5 })

    const task = snapshot.completed.find((item) => item.path === '/fastify-round-trip/users/7')
    expect(task).toMatchObject({ method: 'GET', status_code: 201, task_name: '/fastify-round-trip/users/:id' })
    expect(task?.request_headers).toContainEqual(['USER-AGENT', 'round-trip-test'])
    expect(snapshot.completed.length).toBeLessThanOrEqual(5)
  })
})

describe('HttpTracker', () => {
  /** Starts a plain HTTP server with the given handler and returns its endpoint URL. */
  async function startRawServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    return `${await listen(handler)}/tracker`
  }

  async function readError(tracker: HttpTracker): Promise<HttpTrackerError> {
    const error = await tracker.read().catch((err: unknown) => err)
    expect(error).toBeInstanceOf(HttpTrackerError)
    return error as HttpTrackerError
  }

  it('reports a refused connection', async () => {
    const port = await findFreePort()
    const url = `http://127.0.0.1:${port}/web-top`
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('CONNECTION_FAILED')
    expect(error.message).toBe(
      `web-top: Cannot connect to ${url} (ECONNREFUSED); check that the app is running and the URL is right`,
    )
  })

  it('reports a rejected key', async () => {
    const url = await startEndpoint('express 5', { apiKey: API_KEY, tracker: new MemoryTracker() })
    const wrongKey = randomBytes(24).toString('base64url')
    const error = await readError(new HttpTracker({ url, apiKey: wrongKey }))

    expect(error.code).toBe('INVALID_API_KEY')
    expect(error.statusCode).toBe(403)
    expect(error.message).toBe(
      `web-top: ${url} rejected the API key (HTTP 403 Forbidden); set TOP_WEB_API_KEY to the key the app was started with`,
    )
    expect(error.message).not.toContain(wrongKey.slice(0, 6))
  })

  it('reports 401 as a missing key', async () => {
    const url = await startRawServer((_req, res) => res.writeHead(401).end())
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('MISSING_API_KEY')
    expect(error.message).toContain(`${url} requires an API key (HTTP 401 Unauthorized)`)
  })

  it('reports a response that is not JSON', async () => {
    const url = await startRawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>login</html>')
    })
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('INVALID_RESPONSE')
    expect(error.message).toMatch(
      /^web-top: http:\/\/127\.0\.0\.1:\d+\/tracker returned not JSON \(content type text\/html\) for action=(active|completed)-tasks; check that the URL points at the web-top tracker endpoint$/,
    )
  })

  it('reports JSON of the wrong shape', async () => {
    const url = await startRawServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('[]'))
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('INVALID_RESPONSE')
    expect(error.message).toContain('returned JSON that is not an object of processor id to task for action=active-tasks')
  })

  it('reports 404 with a hint about the path', async () => {
    const url = await startRawServer((_req, res) => res.writeHead(404).end('not here'))
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('HTTP_STATUS')
    expect(error.message).toBe(`web-top: ${url} returned HTTP 404 Not Found; check the endpoint path in the URL`)
  })

  it('times out on a silent server', async () => {
    const url = await startRawServer(() => {})
    const startedAt = Date.now()
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY, timeoutMs: 300 }))

    expect(error.code).toBe('TIMEOUT')
    expect(error.message).toBe(`web-top: Reading ${url} timed out after 300 ms`)
    expect(Date.now() - startedAt).toBeLessThan(3_000)
  })

  it('times out while garbage collection runs', async () => {
    // Node 20's AbortSignal.any() lost its timeout to a collection and the read hung.
    const url = await startRawServer(() => {})
    const collect = setInterval(forceGc, 20)
    cleanups.push(async () => clearInterval(collect))
    const startedAt = Date.now()
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY, timeoutMs: 300 }))

    expect(error.code).toBe('TIMEOUT')
    expect(Date.now() - startedAt).toBeLessThan(3_000)
  })

  it('times out on a body that stops arriving', async () => {
    const url = await startRawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).write('{"a":')
    })
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY, timeoutMs: 300 }))

    expect(error.code).toBe('TIMEOUT')
    expect(error.message).toBe(`web-top: Reading ${url} timed out after 300 ms`)
  })

  it('sends the key in a header', async () => {
    const seen: Array<{ url: string | undefined; key: string | string[] | undefined }> = []
    const url = await startRawServer((req, res) => {
      seen.push({ url: req.url, key: req.headers['x-api-key'] })
      const active = req.url?.includes('action=active-tasks')
      res.writeHead(200, { 'content-type': 'application/json' }).end(active ? '{}' : '[]')
    })
    await new HttpTracker({ url, apiKey: API_KEY }).read()

    expect(seen).toHaveLength(2)
    for (const request of seen) {
      expect(request.key).toBe(API_KEY)
      expect(request.url).not.toContain('api-key')
    }
  })

  it.each([401, 403])('keeps a key rejected with %i out of the URL', async (status) => {
    const seen: Array<{ url: string | undefined; key: string | string[] | undefined }> = []
    const url = await startRawServer((req, res) => {
      seen.push({ url: req.url, key: req.headers['x-api-key'] })
      res.writeHead(status).end('rejected')
    })
    // Without completed tasks the read sends one request and fails when its response arrives.
    const error = await new HttpTracker({ url, apiKey: API_KEY }).read({ completedLimit: 0 }).catch((err: unknown) => err)

    expect(error).toMatchObject({ statusCode: status, message: expect.not.stringContaining(API_KEY) })
    expect(seen).toHaveLength(1)
    for (const request of seen) {
      expect(request.key).toBe(API_KEY)
      expect(request.url).not.toContain(API_KEY)
      expect(request.url).not.toContain('api-key')
    }
  })

  it('sends the key of the URL in the query', async () => {
    // Behaves as web-top-node's TrackerServer: 403 unless the api-key parameter matches.
    const seen: Array<string | string[] | undefined> = []
    const url = await startRawServer((req, res) => {
      seen.push(req.headers['x-api-key'])
      const query = new URL(req.url ?? '/', 'http://localhost').searchParams
      if (query.get('api-key') !== API_KEY) return void res.writeHead(403).end('api-key parameter missing')
      const body = query.get('action') === 'active-tasks' ? { 'pid:1 tid:2': { task_id: 1, path: '/x' } } : [{ task_id: 2 }]
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    })
    const tracker = new HttpTracker({ url: `${url}?api-key=${encodeURIComponent(API_KEY)}` }, {})
    const snapshot = await tracker.read()

    expect(snapshot.active.get('pid:1 tid:2')).toMatchObject({ task_id: 1, path: '/x' })
    expect(snapshot.completed).toHaveLength(1)
    expect(seen).toEqual([undefined, undefined])
    expect(tracker.url).toBe(url)
  })

  it('rejects a header key at a query-only server', async () => {
    const url = await startRawServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://localhost').searchParams
      if (query.get('api-key') !== API_KEY) return void res.writeHead(403).end('api-key parameter missing')
      res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
    })
    const error = await readError(new HttpTracker({ url, apiKey: API_KEY }))

    expect(error.code).toBe('INVALID_API_KEY')
  })

  it('sends a non-Latin-1 key in the query', async () => {
    // A header value carries Latin-1 only, but the endpoint accepts any key of at least 16 characters.
    const key = 'ключ-секрет-🔑-1234567890'
    const url = await startEndpoint('express 5', { apiKey: key, tracker: createTrackerWithTasks() })
    const snapshot = await new HttpTracker({ url, apiKey: key }).read()

    expect(snapshot.active.size).toBe(1)
  })

  it('takes the key from the URL', async () => {
    const endpointUrl = await startEndpoint('express 5', { apiKey: API_KEY, tracker: createTrackerWithTasks() })
    const tracker = new HttpTracker({ url: `${endpointUrl}?api-key=${API_KEY}` }, {})
    const snapshot = await tracker.read()

    expect(snapshot.active.size).toBe(1)
    expect(tracker.url).toBe(endpointUrl)
  })

  it('requires a key', () => {
    expect(() => new HttpTracker({ url: 'http://127.0.0.1:9/web-top' }, {})).toThrow(
      'web-top: An API key is needed to read http://127.0.0.1:9/web-top: pass the apiKey option (--api-key in web-top-cli) ' +
        'or set TOP_WEB_API_KEY to the key the app was started with',
    )
  })

  it('skips records that are not objects', async () => {
    const url = await startRawServer((req, res) => {
      const active = req.url?.includes('action=active-tasks')
      res.writeHead(200, { 'content-type': 'application/json' }).end(active ? '{"p1":"text","p2":{"task_id":1}}' : '[1,{"task_id":2}]')
    })
    const snapshot = await new HttpTracker({ url, apiKey: API_KEY }).read()

    expect([...snapshot.active.keys()]).toEqual(['p2'])
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.skipped).toBe(2)
  })

  it('is read-only', async () => {
    const tracker = new HttpTracker({ url: 'http://127.0.0.1:9/web-top', apiKey: API_KEY })
    tracker.recordStart()
    tracker.recordEnd()
    const unsubscribe = await tracker.subscribe(() => {})

    expect(tracker.stats()).toEqual({ written: 0, dropped: 2, pendingBytes: 0 })
    await expect(tracker.clear()).rejects.toMatchObject({ code: 'READ_ONLY' })
    await expect(tracker.removeProcessors()).resolves.toBe(0)
    await expect(unsubscribe()).resolves.toBeUndefined()
  })
})

describe('HttpTracker reply size', () => {
  it.each([
    ['completed-tasks', 'read fewer completed tasks (completedLimit in read())'],
    ['active-tasks', "lower the app's limits option, so that its records are smaller"],
  ])('rejects a %s reply over 64 MiB', async (largeAction, advice) => {
    const origin = await listen((req, res) => {
      const action = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('action')
      if (action === largeAction) {
        writeOversizedJson(res, action === 'active-tasks' ? '{' : '[')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(action === 'active-tasks' ? '{}' : '[]')
    })

    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    const failure = await reader.read().then(
      () => undefined,
      (err: unknown) => err as HttpTrackerError,
    )

    expect(failure?.code).toBe('RESPONSE_TOO_LARGE')
    expect(failure?.message).toContain(`returned a body larger than 64 MiB for action=${largeAction}; ${advice}`)
    expect(failure?.message).not.toContain('--limit')
  })
})
