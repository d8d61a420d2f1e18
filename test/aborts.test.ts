/**
 * Requests whose client goes away before the response is complete, sent
 * by hand on raw sockets: each leaves `processors` and is recorded once as
 * completed with `recorded_successfully: false`, the tag
 * `web_top.outcome: aborted`, and the status the client received: none
 * (null) when no response head reached it.
 */
import type { AddressInfo } from 'node:net'
import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topPlugin, type HttpTask } from '../src/index'
import { startEdgeApp, type EdgeApp } from './helpers/edge-apps'
import { FRAMEWORKS, waitFor } from './helpers/http'
import { formatRequest, openConnection, type RawConnection } from './helpers/raw-http'
import { countByTaskId, tasksFor, waitForActive, waitForPath } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** Checks the fields every aborted request must have. */
function expectAborted(task: HttpTask | undefined, status: number | null): void {
  expect(task?.status_code).toBe(status)
  expect(task?.recorded_successfully).toBe(false)
  expect(task?.tags?.['web_top.outcome']).toBe('aborted')
  expect(task?.ended_at).not.toBeNull()
}

describe.each(FRAMEWORKS)('%s aborted requests', (framework) => {
  let app: EdgeApp
  let connection: RawConnection | undefined

  beforeEach(async () => {
    await redis.client.flushall()
    app = await startEdgeApp(framework, { trackerUrl: redis.url })
  })

  afterEach(async () => {
    connection?.destroy()
    connection = undefined
    app.release()
    await app.close()
  })

  it('client closes before the response', async () => {
    connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/hang'))
    await waitForActive(redis.client, 1)
    connection.destroy()

    const stored = await waitForPath(redis.client, '/hang')
    const tasks = tasksFor(stored, '/hang')
    expect(tasks).toHaveLength(1)
    expectAborted(tasks[0], null)
    expect(tasks[0]?.status_message).toBeNull()
    expect(tasks[0]?.response_headers).toBeNull()
    expect(stored.processors).toEqual({})
  })

  it('client times out', async () => {
    connection = await openConnection(app.port)
    const socket = connection.socket
    socket.setTimeout(200, () => socket.destroy())
    connection.write(formatRequest('GET', '/hang'))
    await connection.closed

    const stored = await waitForPath(redis.client, '/hang')
    const tasks = tasksFor(stored, '/hang')
    expect(tasks).toHaveLength(1)
    expectAborted(tasks[0], null)
    expect(stored.processors).toEqual({})
  })

  it('client closes during the request body', async () => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('POST', '/upload', ['Content-Type: text/plain', 'Content-Length: 1000']) + 'only ten b',
    )
    await waitForActive(redis.client, 1)
    connection.destroy()

    const stored = await waitForPath(redis.client, '/upload')
    const tasks = tasksFor(stored, '/upload')
    expect(tasks).toHaveLength(1)
    expectAborted(tasks[0], null)
    expect(stored.processors).toEqual({})
  })

  it('client closes during a body the app parses', async () => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('POST', '/parse', ['Content-Type: application/json', 'Content-Length: 100']) + '{"a":',
    )
    await waitForActive(redis.client, 1)
    connection.destroy()

    // The parser fails once the connection closes, and the error handler
    // responds on the closed connection: the client never gets it.
    const stored = await waitForPath(redis.client, '/parse')
    const tasks = tasksFor(stored, '/parse')
    expect(tasks).toHaveLength(1)
    expectAborted(tasks[0], null)
    expect(stored.processors).toEqual({})
  })

  it('a response sent before the body arrived counts as completed', async () => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('POST', '/reject-early', ['Content-Type: text/plain', 'Content-Length: 1000']) + 'only ten b',
    )
    await connection.waitForText('401')
    connection.destroy()

    const stored = await waitForPath(redis.client, '/reject-early')
    const tasks = tasksFor(stored, '/reject-early')
    expect(tasks).toHaveLength(1)
    expect(tasks[0]?.status_code).toBe(401)
    expect(tasks[0]?.recorded_successfully).toBe(true)
    expect(tasks[0]?.tags?.['web_top.outcome']).toBeUndefined()
    expect(stored.processors).toEqual({})
  })

  it('client closes mid-stream', async () => {
    connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/stream'))
    const open = connection
    await open.waitForText('first')
    connection.destroy()

    const stored = await waitForPath(redis.client, '/stream')
    const tasks = tasksFor(stored, '/stream')
    expect(tasks).toHaveLength(1)
    // The client received the 200 head before it left.
    expectAborted(tasks[0], 200)
    expect(stored.processors).toEqual({})
  })

  it('client closes an event stream', async () => {
    connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/events', ['Accept: text/event-stream']))
    const open = connection
    await open.waitForText('data: 1')
    await waitForActive(redis.client, 1)
    connection.destroy()

    const stored = await waitForPath(redis.client, '/events')
    const tasks = tasksFor(stored, '/events')
    expect(tasks).toHaveLength(1)
    expectAborted(tasks[0], 200)
    expect(stored.processors).toEqual({})
  })

  it('pipelined requests behind a hanging one', async () => {
    connection = await openConnection(app.port)
    connection.write(
      formatRequest('GET', '/ok') + formatRequest('GET', '/hang') + formatRequest('GET', '/ok?queued=1'),
    )
    const [first] = await connection.readResponses(1)
    expect(first?.status).toBe(200)
    // /hang and the request queued behind it, whose handler has already responded.
    await waitForActive(redis.client, 2)
    connection.destroy()

    await waitForPath(redis.client, '/hang')
    const stored = await waitForPath(redis.client, '/ok', 2)
    const byUri = new Map(stored.pastTasks.map((task) => [task.uri, task]))
    expect(byUri.get('/ok')?.status_code).toBe(200)
    expect(byUri.get('/ok')?.recorded_successfully).toBe(true)
    expectAborted(byUri.get('/hang'), null)
    // Its response waited behind /hang and never reached the client.
    expectAborted(byUri.get('/ok?queued=1'), null)
    expect(stored.pastTasks).toHaveLength(3)
    for (const count of countByTaskId(stored.pastTasks).values()) expect(count).toBe(1)
    expect(stored.processors).toEqual({})
  })
})

describe.each([
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const)('%s response ended after an abort', (_name, fastify) => {
  beforeEach(async () => {
    await redis.client.flushall()
  })

  // The body is written in full, so Node emits `finish` for the bare `end()`
  // that follows the abort, after the close has recorded the request.
  it('records a hijacked response once', async () => {
    const app = fastify({ logger: false })
    await app.register(topPlugin, { trackerUrl: redis.url })
    let ended = false
    app.get('/late-end', (_request, reply) => {
      reply.hijack()
      reply.raw.setHeader('content-length', '4')
      reply.raw.write('ab')
      reply.raw.write('cd')
      reply.raw.once('close', () => {
        reply.raw.end()
        ended = true
      })
    })
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const connection = await openConnection((app.server.address() as AddressInfo).port)
      connection.write(formatRequest('GET', '/late-end'))
      await waitForActive(redis.client, 1)
      connection.destroy()

      await waitFor('the late end() call', () => (ended ? true : undefined))
      const stored = await waitForPath(redis.client, '/late-end')
      // A second record would be pushed within a turn of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 200))
      const tasks = tasksFor(await waitForPath(redis.client, '/late-end'), '/late-end')
      expect(tasks).toHaveLength(1)
      expectAborted(tasks[0], 200)
      expect(stored.processors).toEqual({})
    } finally {
      await app.close()
    }
  })
})

describe.each([
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const)('%s onRequestAbort hook', (_name, fastify) => {
  beforeEach(async () => {
    await redis.client.flushall()
  })

  it('records an abort once with the hook', async () => {
    const app = fastify({ logger: false, forceCloseConnections: true })
    const hookCalls: string[] = []
    await app.register(topPlugin, { trackerUrl: redis.url })
    app.addHook('onRequestAbort', async (request) => {
      hookCalls.push(request.url)
    })
    app.get('/hang', () => {})
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const connection = await openConnection((app.server.address() as AddressInfo).port)
      connection.write(formatRequest('GET', '/hang'))
      await waitForActive(redis.client, 1)
      connection.destroy()

      const stored = await waitForPath(redis.client, '/hang')
      await waitFor('the abort hook', () => (hookCalls.length > 0 ? true : undefined))
      expect(hookCalls).toEqual(['/hang'])
      expect(tasksFor(stored, '/hang')).toHaveLength(1)
      expectAborted(tasksFor(stored, '/hang')[0], null)
      expect(stored.processors).toEqual({})
    } finally {
      await app.close()
    }
  })
})
