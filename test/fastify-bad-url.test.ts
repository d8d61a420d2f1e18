/**
 * Responses that Fastify sends without running any hook: 400 for a URL its
 * router cannot decode, 414 for a param over `maxParamLength` (Fastify 5),
 * 500 for a failed async constraint, and what a `frameworkErrors` handler
 * sends in their place. The plugin records them when they finish.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import fastify5, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from 'fastify'
import fastify4 from 'fastify4'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  HttpTracker,
  MemoryTracker,
  topPlugin,
  topTrackerRoute,
  type HttpTask,
  type TopOptions,
} from '../src/index'
import { sendRequest, waitFor } from './helpers/http'
import { formatRequest, openConnection, type RawResponse } from './helpers/raw-http'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { waitForCompleted } from './helpers/recording-cases'

const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

/** Time given to a duplicate record to show up before a test counts the records. */
const SETTLE_MS = 100

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** Apps to close after each test. */
const apps: FastifyInstance[] = []

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close()
})

describe.each(FASTIFY_VERSIONS)('%s bad URL responses', (framework, fastify) => {
  beforeEach(async () => {
    await redis.client.flushall()
  })

  /** Starts an app with the plugin registered first and `GET /users/:id`, and returns its port. */
  async function startPluginApp(
    topOptions: TopOptions,
    serverOptions: FastifyServerOptions = {},
  ): Promise<number> {
    const app = fastify({ logger: false, ...serverOptions })
    apps.push(app)
    await app.register(topPlugin, topOptions)
    app.get('/users/:id', async () => 'ok')
    return listen(app)
  }

  it('records 400 for undecodable URLs', async () => {
    const port = await startPluginApp({ trackerUrl: redis.url })

    const responses = await sendRaw(port, ['/%', '/foo%zz?q=1', '/users/%zz', '/%E9'])
    expect(responses.map((response) => response.status)).toEqual([400, 400, 400, 400])

    const tasks = await waitForCompleted(redis.client, 4)
    await settle()
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(4)
    expect(stored.processors).toEqual({})
    const byPath = new Map(tasks.map((task) => [task.path, task]))
    expect([...byPath.keys()].sort()).toEqual(['/%', '/%E9', '/foo%zz', '/users/%zz'])
    for (const task of tasks) {
      expect(task.status_code).toBe(400)
      expect(task.task_name).toBeNull()
      expect(task.method).toBe('GET')
      expect(task.recorded_successfully).toBe(true)
      // Started when the response finished, so the recorded duration is about 0. The bound
      // leaves room for a process that the loaded test machine suspends between the two clock reads.
      expect(Date.parse(task.ended_at ?? '') - Date.parse(task.started_at ?? '')).toBeLessThan(50)
    }
    expect(byPath.get('/foo%zz')?.params).toEqual({ q: '1' })
  })

  it('records a too-long param once', async () => {
    // Fastify 5 sends 414 without running hooks. Fastify 4.29 routes the
    // request to its 404 handler, which runs them.
    const expectedStatus = framework === 'fastify5' ? 414 : 404
    const tracker = new MemoryTracker()
    const port = await startPluginApp({ tracker }, withRouterOptions(framework, { maxParamLength: 10 }))
    const longPath = `/users/${'x'.repeat(20)}`

    const [response] = await sendRaw(port, [longPath])
    expect(response?.status).toBe(expectedStatus)

    const completed = await readSettledTasks(tracker, 1)
    expect(completed).toHaveLength(1)
    expect(completed[0]?.status_code).toBe(expectedStatus)
    expect(completed[0]?.path).toBe(longPath)
  })

  it('records what frameworkErrors sends later', async () => {
    const tracker = new MemoryTracker()
    const port = await startPluginApp(
      { tracker },
      {
        frameworkErrors: (error, _request, reply) => {
          const send = () => (reply as unknown as FastifyReply).status(422).send({ custom: error.code })
          setTimeout(send, 20)
        },
      },
    )

    const [response] = await sendRaw(port, ['/bad%zz'])
    expect(response?.status).toBe(422)
    expect(JSON.parse(response?.body ?? '')).toEqual({ custom: 'FST_ERR_BAD_URL' })

    const completed = await readSettledTasks(tracker, 1)
    expect(completed).toHaveLength(1)
    expect(completed[0]?.status_code).toBe(422)
    expect(completed[0]?.path).toBe('/bad%zz')
  })

  it('records 500 for a failed async constraint', async () => {
    const tracker = new MemoryTracker()
    // A strategy whose `deriveConstraint` takes a callback makes find-my-way's routing async.
    const constraints = {
      tenant: {
        name: 'tenant',
        storage: createConstraintStore,
        deriveConstraint: (_req: unknown, _ctx: unknown, done: (err: Error | null) => void) => {
          done(new Error('tenant lookup failed on purpose'))
        },
        mustMatchWhenDerived: true,
        validate: () => {},
      },
    }
    const app = fastify({ logger: false, ...withRouterOptions(framework, { constraints }) })
    apps.push(app)
    await app.register(topPlugin, { tracker })
    app.route({
      method: 'GET',
      url: '/tenant',
      constraints: { tenant: 'acme' },
      handler: async () => 'ok',
    })
    const port = await listen(app)

    const [response] = await sendRaw(port, ['/tenant'])
    expect(response?.status).toBe(500)

    const completed = await readSettledTasks(tracker, 1)
    expect(completed).toHaveLength(1)
    expect(completed[0]?.status_code).toBe(500)
    expect(completed[0]?.path).toBe('/tenant')
  })

  it('records a reply from an earlier hook', async () => {
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization === undefined) await reply.code(401).send('login first')
    })
    await app.register(topPlugin, { tracker })
    app.get('/users/:id', async () => 'ok')
    const port = await listen(app)

    const [response] = await sendRaw(port, ['/users/1'])
    expect(response?.status).toBe(401)

    const completed = await readSettledTasks(tracker, 1)
    expect(completed).toHaveLength(1)
    expect(completed[0]?.status_code).toBe(401)
    expect(completed[0]?.task_name).toBeNull()
  })

  it('reads forwarded headers with trustProxy', async () => {
    const tracker = new MemoryTracker()
    const port = await startPluginApp({ tracker, trustProxy: true }, { trustProxy: true })
    const connection = await openConnection(port)
    try {
      connection.write(formatRequest('GET', '/%', ['X-Forwarded-For: 203.0.113.9']))
      const [response] = await connection.readResponses(1)
      expect(response?.status).toBe(400)
    } finally {
      connection.destroy()
    }

    const [task] = await waitForTasks(tracker, 1)
    expect(task?.client_ip_address).toBe('203.0.113.9')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('proxy')
  })

  it('skips bad URLs sent with inject()', async () => {
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    await app.register(topPlugin, { tracker })
    app.get('/users/:id', async () => 'ok')

    expect((await app.inject('/%')).statusCode).toBe(400)
    expect((await app.inject('/users/1')).statusCode).toBe(200)

    const completed = await readSettledTasks(tracker, 1)
    expect(completed.map((task) => task.path)).toEqual(['/users/1'])
  })

  it('records routed requests once', async () => {
    const tracker = new MemoryTracker()
    const port = await startPluginApp({ tracker })

    for (let i = 1; i <= 3; i++) await sendRequest(`http://127.0.0.1:${port}/users/${i}`)
    await sendRequest(`http://127.0.0.1:${port}/missing`)

    const completed = await readSettledTasks(tracker, 4)
    expect(completed.map((task) => task.path)).toEqual(['/missing', '/users/3', '/users/2', '/users/1'])
    expect(completed.map((task) => task.status_code)).toEqual([404, 200, 200, 200])
    expect(completed[1]?.task_name).toBe('/users/:id')
  })

  it('leaves ignored routes unrecorded', async () => {
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    await app.register(topPlugin, { tracker, ignore: ['/health', '/%'] })
    app.get('/internal', { config: { webTop: { ignore: true } } }, async () => 'internal')
    app.get('/health', async () => 'ok')
    app.get('/users/:id', async () => 'ok')
    const port = await listen(app)

    const responses = await sendRaw(port, ['/internal', '/health', '/%', '/users/1'])
    expect(responses.map((response) => response.status)).toEqual([200, 200, 400, 200])

    const completed = await readSettledTasks(tracker, 1)
    expect(completed.map((task) => task.path)).toEqual(['/users/1'])
  })

  it('leaves tracker endpoint requests unrecorded', async () => {
    const apiKey = randomBytes(24).toString('base64url')
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    await app.register(topPlugin, { tracker })
    await app.register(topTrackerRoute, { apiKey })
    app.get('/hello', async () => 'hello')
    const port = await listen(app)

    await sendRequest(`http://127.0.0.1:${port}/hello`)
    const reader = new HttpTracker({ url: `http://127.0.0.1:${port}/web-top`, apiKey })
    await reader.read()
    await reader.read()
    await settle()

    const { completed } = await tracker.read()
    expect(completed.map((task) => task.path)).toEqual(['/hello'])
  })

  it('honors discard() and end() in a route', async () => {
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    await app.register(topPlugin, { tracker })
    app.get('/discarded', async (_request, reply) => {
      app.webTop.discard(reply.raw)
      return 'discarded'
    })
    app.get('/ended-early', async (_request, reply) => {
      app.webTop.end(reply.raw, 'completed')
      return 'ended early'
    })
    const port = await listen(app)

    const statuses = (await sendRaw(port, ['/discarded', '/ended-early'])).map((r) => r.status)
    expect(statuses).toEqual([200, 200])

    const completed = await readSettledTasks(tracker, 1)
    expect(completed.map((task) => task.path)).toEqual(['/ended-early'])
  })

  it('skips bad URLs after the recorder closed', async () => {
    const port = await startPluginApp({ trackerUrl: redis.url })
    await sendRaw(port, ['/users/1'])
    await waitForCompleted(redis.client, 1)

    await apps[0]?.webTop.close()
    const [response] = await sendRaw(port, ['/%'])
    expect(response?.status).toBe(400)
    await settle()

    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.path)).toEqual(['/users/1'])
  })

  it('skips bad URLs when registered in a child', async () => {
    const tracker = new MemoryTracker()
    const app = fastify({ logger: false })
    apps.push(app)
    app.get('/outside', async () => 'outside')
    await app.register(
      async (api) => {
        await api.register(topPlugin, { tracker })
        api.get('/items/:id', async () => 'item')
      },
      { prefix: '/api' },
    )
    const port = await listen(app)

    const statuses = (await sendRaw(port, ['/outside', '/%', '/api/items/1'])).map((r) => r.status)
    expect(statuses).toEqual([200, 400, 200])

    const completed = await readSettledTasks(tracker, 1)
    expect(completed.map((task) => task.path)).toEqual(['/api/items/1'])
  })

  it('records bad URLs with serverFactory', async () => {
    const tracker = new MemoryTracker()
    const port = await startPluginApp(
      { tracker },
      {
        serverFactory: (handler: RequestListener) => createServer((req, res) => handler(req, res)),
      },
    )

    const statuses = (await sendRaw(port, ['/%', '/users/1'])).map((r) => r.status)
    expect(statuses).toEqual([400, 200])

    const completed = await readSettledTasks(tracker, 2)
    const recorded = completed.map((task) => `${task.status_code} ${task.path}`)
    expect(recorded.sort()).toEqual(['200 /users/1', '400 /%'])
  })

  it('keeps two apps apart', async () => {
    const first = new MemoryTracker()
    const second = new MemoryTracker()
    const firstPort = await startPluginApp({ tracker: first })
    const secondPort = await startPluginApp({ tracker: second })

    await sendRaw(firstPort, ['/first%zz'])
    await sendRaw(secondPort, ['/second%zz', '/users/2'])

    await waitForTasks(first, 1)
    await waitForTasks(second, 2)
    await settle()
    expect((await first.read()).completed.map((task) => task.path)).toEqual(['/first%zz'])
    const secondPaths = (await second.read()).completed.map((task) => task.path)
    expect(secondPaths.sort()).toEqual(['/second%zz', '/users/2'])
  })
})

/**
 * Returns router options where each version reads them without a
 * deprecation warning: under `routerOptions` in Fastify 5, at the top level
 * in Fastify 4.
 */
function withRouterOptions(
  framework: string,
  options: Record<string, unknown>,
): FastifyServerOptions {
  return (framework === 'fastify5' ? { routerOptions: options } : options) as FastifyServerOptions
}

/** Listens on 127.0.0.1 with a free port and returns the port. */
async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

/** Sends each path exactly as written, one GET after another on one keep-alive connection. */
async function sendRaw(port: number, paths: string[]): Promise<RawResponse[]> {
  const connection = await openConnection(port)
  try {
    const responses: RawResponse[] = []
    for (const path of paths) {
      connection.write(formatRequest('GET', path))
      const [response] = await connection.readResponses(1)
      if (response !== undefined) responses.push(response)
    }
    return responses
  } finally {
    connection.destroy()
  }
}

/** Waits until the tracker contains at least `count` completed tasks, and returns them. */
function waitForTasks(tracker: MemoryTracker, count: number): Promise<HttpTask[]> {
  return waitFor(`${count} completed tasks`, async () => {
    const { completed } = await tracker.read()
    return completed.length >= count ? completed : undefined
  })
}

/** Waits for `count` completed tasks and then {@link SETTLE_MS} more, and returns all completed tasks. */
async function readSettledTasks(tracker: MemoryTracker, count: number): Promise<HttpTask[]> {
  await waitForTasks(tracker, count)
  await settle()
  return (await tracker.read()).completed
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
}

/** A find-my-way constraint store that keeps one handler per value. */
function createConstraintStore() {
  const handlers = new Map<string, unknown>()
  return {
    get: (value: string) => handlers.get(value) ?? null,
    set: (value: string, handler: unknown) => void handlers.set(value, handler),
  }
}
