/**
 * `createRequestTracker().track()` called too late, and task names that are
 * not strings or whose function throws, on real `node:http` servers
 * recording to a private Redis.
 */
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createRequestTracker, type NodeHttpTrackContext, type RequestTracker } from '../src/index'
import { sendRequest, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { waitForCompleted } from './helpers/recording-cases'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
const servers: Server[] = []
const trackers: RequestTracker[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  await Promise.all(trackers.splice(0).map((tracker) => tracker.close()))
})

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Sends a GET on `agent`, whose keep-alive connection outlives the response, and reads the whole body. */
function getWithAgent(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(5_000, () => req.destroy(new Error('no response within 5 s')))
    req.end()
  })
}

/** Reads the `task_name` of the newest completed record as Redis stores it, before any decoding. */
async function readRawTaskNames(): Promise<unknown[]> {
  const list = await redis.client.lrange('past_tasks', 0, -1)
  return list.map((text) => (JSON.parse(text) as { task_name: unknown }).task_name)
}

describe('createRequestTracker track() after the response', () => {
  it('returns false and records nothing once the response closed', async () => {
    const top = createRequestTracker({ trackerUrl: redis.url, handleSignals: false })
    trackers.push(top)
    const lateResults = new Map<string, boolean>()
    const url = await listen((req, res) => {
      const path = req.url ?? ''
      if (path === '/late-finish' || path === '/late-close') {
        const event = path === '/late-finish' ? 'finish' : 'close'
        res.on(event, () => setImmediate(() => lateResults.set(path, top.track(req, res))))
      } else {
        top.track(req, res)
      }
      res.end('ok')
    })

    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect(await getWithAgent(`${url}/late-finish`, agent)).toBe(200)
      expect(await getWithAgent(`${url}/late-close`, agent)).toBe(200)
      await waitFor('both late track() calls', () => (lateResults.size === 2 ? true : undefined))
      expect(lateResults.get('/late-finish')).toBe(false)
      expect(lateResults.get('/late-close')).toBe(false)

      // A request tracked in time, on the same connection, shows when the writes before it have landed.
      expect(await getWithAgent(`${url}/in-time`, agent)).toBe(200)
      const tasks = await waitForCompleted(redis.client, 1)
      expect(tasks.map((task) => task.path)).toEqual(['/in-time'])
      expect((await readStoredTasks(redis.client)).processors).toEqual({})
    } finally {
      agent.destroy()
    }
  })

  it('still records a response ended in the same turn', async () => {
    const top = createRequestTracker({ trackerUrl: redis.url, handleSignals: false })
    trackers.push(top)
    const results: boolean[] = []
    const url = await listen((req, res) => {
      res.end('ok')
      results.push(top.track(req, res))
    })

    expect((await sendRequest(`${url}/ended`)).status).toBe(200)
    const [task] = await waitForCompleted(redis.client, 1)
    expect(results).toEqual([true])
    expect(task?.path).toBe('/ended')
    expect(task?.status_code).toBe(200)
    expect(task?.recorded_successfully).toBe(true)
  })
})

describe('createRequestTracker task names that are not strings', () => {
  it.each([
    ['taskName', (pattern: RegExp): NodeHttpTrackContext => ({ taskName: pattern as never })],
    ['resolveTaskName', (pattern: RegExp): NodeHttpTrackContext => ({ resolveTaskName: () => pattern as never })],
  ])('stores a RegExp from %s as its source text', async (_label, contextOf) => {
    const top = createRequestTracker({ trackerUrl: redis.url, handleSignals: false })
    trackers.push(top)
    const pattern = /^\/items\/(\d+)$/
    const url = await listen((req, res) => {
      top.track(req, res, contextOf(pattern))
      res.end('ok')
    })

    expect((await sendRequest(`${url}/items/5`)).status).toBe(200)
    await waitForCompleted(redis.client, 1)
    expect(await readRawTaskNames()).toEqual(['/^\\/items\\/(\\d+)$/'])
  })

  it('stores null for a name whose toString() throws', async () => {
    const logger = captureLogger()
    const top = createRequestTracker({ trackerUrl: redis.url, logger, handleSignals: false })
    trackers.push(top)
    const unprintable = {
      toString(): string {
        throw new Error('toString failed')
      },
    }
    const contexts: Record<string, NodeHttpTrackContext> = {
      '/named': { taskName: '42' },
      '/unprintable': { taskName: unprintable as never },
    }
    const results: boolean[] = []
    const url = await listen((req, res) => {
      results.push(top.track(req, res, contexts[req.url ?? '']))
      res.end('ok')
    })

    expect((await sendRequest(`${url}/named`)).status).toBe(200)
    await waitForCompleted(redis.client, 1)
    expect((await sendRequest(`${url}/unprintable`)).status).toBe(200)
    const tasks = await waitForCompleted(redis.client, 2)

    expect(results).toEqual([true, true])
    const namesByPath = Object.fromEntries(tasks.map((task) => [task.path, task.task_name]))
    expect(namesByPath).toEqual({ '/named': '42', '/unprintable': null })
    expect(logger.lines.map((line) => line.message)).not.toContain('web-top failed to record a request')
  })

  it('records the request when resolveTaskName throws', async () => {
    const logger = captureLogger()
    const top = createRequestTracker({ trackerUrl: redis.url, logger, handleSignals: false })
    trackers.push(top)
    const url = await listen((req, res) => {
      top.track(req, res, {
        taskName: '/orders/:id',
        resolveTaskName: () => {
          throw new Error('route lookup failed')
        },
      })
      res.end('ok')
    })

    for (const id of [1, 2]) expect((await sendRequest(`${url}/orders/${id}?token=secret`)).status).toBe(200)
    const tasks = await waitForCompleted(redis.client, 2)

    expect(tasks.map((task) => task.path).sort()).toEqual(['/orders/1', '/orders/2'])
    expect(tasks.map((task) => task.status_code)).toEqual([200, 200])
    expect(tasks.map((task) => task.task_name)).toEqual(['/orders/:id', '/orders/:id'])
    expect((await readStoredTasks(redis.client)).processors).toEqual({})

    const lines = logger.lines.filter((line) => line.message.includes('`resolveTaskName`'))
    expect(lines).toHaveLength(1)
    expect((lines[0]?.fields.err as Error).message).toBe('route lookup failed')
    expect(lines[0]?.fields.path).toBe('/orders/1')
    expect(JSON.stringify(logger.lines)).not.toContain('secret')
  })
})
