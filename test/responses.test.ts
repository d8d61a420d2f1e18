/**
 * Requests that end in unusual ways are each recorded exactly once, with
 * the status the client received: errors, hijacked and streamed responses,
 * empty bodies, HEAD, 204, 304, 404, keep-alive and pipelined requests
 * written by hand on one socket. Also: the tracker endpoint's own requests
 * are never recorded.
 */
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  HttpTracker,
  MemoryTracker,
  RedisTracker,
  topMiddleware,
  topPlugin,
  topTrackerEndpoint,
  topTrackerRoute,
  type Logger,
} from '../src/index'
import { startEdgeApp, type EdgeApp } from './helpers/edge-apps'
import { FRAMEWORKS, waitFor, type FrameworkName } from './helpers/http'
import { formatRequest, openConnection, type RawResponse } from './helpers/raw-http'
import { countByTaskId, tasksFor, waitForActive, waitForPath } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

interface ResponseCase {
  name: string
  method: string
  path: string
  headers?: string[]
  status: number
  frameworks?: FrameworkName[]
}

const RESPONSE_CASES: ResponseCase[] = [
  { name: 'handler throws', method: 'GET', path: '/throw', status: 500 },
  { name: 'handler rejects', method: 'GET', path: '/reject', status: 500 },
  { name: 'error handler status', method: 'GET', path: '/custom-error', status: 503 },
  { name: 'empty body', method: 'GET', path: '/empty', status: 200 },
  { name: 'no content', method: 'GET', path: '/no-content', status: 204 },
  { name: 'not modified', method: 'GET', path: '/etag', headers: ['If-None-Match: "v1"'], status: 304 },
  { name: 'HEAD request', method: 'HEAD', path: '/ok', status: 200 },
  { name: 'framework 404', method: 'GET', path: '/no/such/route', status: 404 },
  {
    name: 'hijacked reply',
    method: 'GET',
    path: '/hijack',
    status: 201,
    frameworks: ['fastify5', 'fastify4'],
  },
]

describe.each(FRAMEWORKS)('%s responses', (framework) => {
  let app: EdgeApp

  beforeEach(async () => {
    await redis.client.flushall()
    app = await startEdgeApp(framework, { trackerUrl: redis.url })
  })

  afterEach(async () => {
    app.release()
    await app.close()
  })

  const cases = RESPONSE_CASES.filter((item) => item.frameworks?.includes(framework) ?? true)

  it.each(cases)('$name recorded once', async ({ method, path, headers, status }) => {
    const connection = await openConnection(app.port)
    connection.write(formatRequest(method, path, headers))
    const [response] = await connection.readResponses(1, { bodiless: [method === 'HEAD'] })
    connection.destroy()
    expect(response?.status).toBe(status)

    const stored = await waitForPath(redis.client, path)
    const tasks = tasksFor(stored, path)
    expect(tasks).toHaveLength(1)
    expect(tasks[0]?.method).toBe(method)
    expect(tasks[0]?.status_code).toBe(status)
    expect(tasks[0]?.recorded_successfully).toBe(true)
    expect(tasks[0]?.tags?.['web_top.outcome']).toBeUndefined()
    expect(stored.processors).toEqual({})
  })

  it('streamed response is active mid-stream', async () => {
    const connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/stream'))
    await connection.waitForText('first')

    const [active] = await waitForActive(redis.client, 1)
    expect(active?.path).toBe('/stream')
    expect(active?.status_code).toBeNull()
    expect(active?.ended_at).toBeNull()

    app.release()
    const [response] = await connection.readResponses(1)
    connection.destroy()
    expect(response?.body).toBe('firstlast')

    const stored = await waitForPath(redis.client, '/stream')
    const recorded = tasksFor(stored, '/stream').map((task) => [task.status_code, task.recorded_successfully])
    expect(recorded).toEqual([[200, true]])
    expect(stored.processors).toEqual({})
  })

  it('server-sent events stay active while open', async () => {
    const connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/events', ['Accept: text/event-stream']))
    const head = await connection.waitForText('data: 1')
    expect(head).toMatch(/^HTTP\/1\.1 200 /)

    const [active] = await waitForActive(redis.client, 1)
    expect(active?.path).toBe('/events')
    expect(active?.status_code).toBeNull()

    app.release()
    await connection.readResponses(1)
    connection.destroy()
    const stored = await waitForPath(redis.client, '/events')
    const recorded = tasksFor(stored, '/events').map((task) => [task.status_code, task.recorded_successfully])
    expect(recorded).toEqual([[200, true]])
    expect(stored.processors).toEqual({})
  })

  it('keep-alive requests on one socket', async () => {
    const connection = await openConnection(app.port)
    const sequence: Array<[string, number]> = [
      ['/ok', 200],
      ['/empty', 200],
      ['/no-content', 204],
      ['/no/such/route', 404],
      ['/throw', 500],
    ]
    const received: RawResponse[] = []
    for (const [path] of sequence) {
      connection.write(formatRequest('GET', path))
      received.push(...(await connection.readResponses(1)))
    }
    connection.destroy()
    expect(received.map((response) => response.status)).toEqual(sequence.map(([, status]) => status))

    const stored = await waitForPath(redis.client, '/throw')
    for (const [path, status] of sequence) {
      const tasks = tasksFor(stored, path)
      expect(tasks.map((task) => task.status_code), path).toEqual([status])
    }
    expect(stored.pastTasks).toHaveLength(sequence.length)
    expect(new Set(stored.pastTasks.map((task) => task.task_id)).size).toBe(sequence.length)
    expect(stored.processors).toEqual({})
  })

  it('pipelined requests on one socket', async () => {
    const connection = await openConnection(app.port)
    connection.write(
      formatRequest('GET', '/ok') +
        formatRequest('HEAD', '/ok') +
        formatRequest('GET', '/etag', ['If-None-Match: "v1"']) +
        formatRequest('GET', '/no-content') +
        formatRequest('GET', '/no/such/route') +
        formatRequest('GET', '/custom-error'),
    )
    const bodiless = [false, true, false, false, false, false]
    const responses = await connection.readResponses(6, { bodiless })
    connection.destroy()
    expect(responses.map((response) => response.status)).toEqual([200, 200, 304, 204, 404, 503])

    const stored = await waitForPath(redis.client, '/custom-error')
    const oldestFirst = [...stored.pastTasks].reverse()
    const recorded = oldestFirst.map((task) => `${task.method} ${task.path} ${task.status_code}`)
    expect(recorded).toEqual([
      'GET /ok 200',
      'HEAD /ok 200',
      'GET /etag 304',
      'GET /no-content 204',
      'GET /no/such/route 404',
      'GET /custom-error 503',
    ])
    for (const count of countByTaskId(stored.pastTasks).values()) expect(count).toBe(1)
    expect(stored.processors).toEqual({})
  })

  it('many pipelined requests without a listener warning', async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      const count = 30
      const connection = await openConnection(app.port)
      connection.write(formatRequest('GET', '/ok').repeat(count - 1) + formatRequest('GET', '/no-content'))
      const responses = await connection.readResponses(count)
      connection.destroy()
      expect(responses.filter((response) => response.status === 200)).toHaveLength(count - 1)

      const stored = await waitForPath(redis.client, '/no-content')
      expect(tasksFor(stored, '/ok')).toHaveLength(count - 1)
      expect(stored.processors).toEqual({})
      // Node emits the warning on the next tick after the listener that crossed the limit.
      await new Promise((resolve) => setImmediate(resolve))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })
})

const API_KEY = randomBytes(24).toString('base64url')

describe('tracker endpoint requests', () => {
  const cleanups: Array<() => Promise<unknown>> = []

  beforeEach(async () => {
    await redis.client.flushall()
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /** Reads the endpoint three times (six requests), sends one app request and returns the records. */
  async function pollThenRequest(origin: string) {
    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    for (let i = 0; i < 3; i++) {
      const snapshot = await reader.read()
      expect([...snapshot.active.values()].map((task) => task.path)).toEqual([])
    }
    await fetch(`${origin}/hello`)
    return waitForPath(redis.client, '/hello')
  }

  it.each(['before', 'after'] as const)('express endpoint mounted %s the middleware', async (order) => {
    const warnings: string[] = []
    const logger: Logger = { warn: (_object, message) => warnings.push(message), error() {} }
    const recording = topMiddleware({ trackerUrl: redis.url })
    const endpoint = topTrackerEndpoint({ apiKey: API_KEY, tracker: recording.recorder.tracker, logger })
    const app = express()
    if (order === 'before') app.all('/web-top', endpoint)
    app.use(recording)
    if (order === 'after') app.all('/web-top', endpoint)
    app.get('/hello', (_req, res) => {
      res.send('hello')
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    cleanups.push(async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await recording.close()
    })

    const stored = await pollThenRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    expect(stored.pastTasks.map((task) => task.path)).toEqual(['/hello'])
    expect(stored.processors).toEqual({})
    expect(warnings).toEqual([])
  })

  it.each(['before', 'after'] as const)('fastify route registered %s the plugin', async (order) => {
    const app = Fastify({ logger: false })
    cleanups.push(() => app.close())
    if (order === 'before') await app.register(topTrackerRoute, { apiKey: API_KEY })
    await app.register(topPlugin, { trackerUrl: redis.url })
    if (order === 'after') await app.register(topTrackerRoute, { apiKey: API_KEY })
    app.get('/hello', async () => 'hello')
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })

    const stored = await pollThenRequest(origin)
    expect(stored.pastTasks.map((task) => task.path)).toEqual(['/hello'])
    expect(stored.processors).toEqual({})
  })

  it('fastify route config ignores a route', async () => {
    const app = Fastify({ logger: false })
    cleanups.push(() => app.close())
    await app.register(topPlugin, { trackerUrl: redis.url })
    app.get('/quiet', { config: { webTop: { ignore: true } } }, async () => 'quiet')
    app.get('/hello', async () => 'hello')
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })

    await fetch(`${origin}/quiet`)
    await fetch(`${origin}/hello`)
    const stored = await waitForPath(redis.client, '/hello')
    expect(stored.pastTasks.map((task) => task.path)).toEqual(['/hello'])
  })

  it('discard removes one exact processor id', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    cleanups.push(() => tracker.close())
    const memory = new MemoryTracker()
    for (const target of [tracker, memory]) {
      target.recordStart('web-1/42-0-1.1', '{"path":"/one"}')
      target.recordStart('web-1/42-0-1.10', '{"path":"/ten"}')
      target.recordStart('web-1/42-0-1.11', '{"path":"/eleven"}')
    }
    await tracker.flush()
    await waitForActive(redis.client, 3)

    tracker.recordDiscard('web-1/42-0-1.1')
    memory.recordDiscard('web-1/42-0-1.1')
    await tracker.flush()

    expect((await redis.client.hkeys('processors')).sort()).toEqual(['web-1/42-0-1.10', 'web-1/42-0-1.11'])
    expect([...(await memory.read()).active.keys()].sort()).toEqual(['web-1/42-0-1.10', 'web-1/42-0-1.11'])
    expect(await redis.client.llen('past_tasks')).toBe(0)
  })

  it('discard cancels a start not yet sent', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    cleanups.push(() => tracker.close())
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const published: string[] = []
    const unsubscribe = await tracker.subscribe((json) => published.push(json))
    cleanups.push(unsubscribe)

    tracker.recordStart('web-1/42-0-1.3', '{"path":"/discarded"}')
    tracker.recordDiscard('web-1/42-0-1.3')
    tracker.recordStart('web-1/42-0-1.4', '{"path":"/kept"}')
    await tracker.flush()
    await waitFor('the kept start', () => (published.length > 0 ? true : undefined))
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(published).toEqual(['{"path":"/kept"}'])
    expect(await redis.client.hkeys('processors')).toEqual(['web-1/42-0-1.4'])
    expect(tracker.stats().pendingBytes).toBe(0)
  })
})
