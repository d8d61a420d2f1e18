import express5, { type Request, type Response } from 'express'
import Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MemoryTracker, RedisTracker, topMiddleware } from '../src/index'
import { express4, sendRequest, startApp, waitFor, type TestApp } from './helpers/http'
import { ONE_REQUEST_EXPRESS_SCRIPT, runNode } from './helpers/node-process'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { describeRecordFields, waitForCompleted } from './helpers/recording-cases'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describeRecordFields('express5', () => redis)
describeRecordFields('express4', () => redis)

describe.each(['express5', 'express4'] as const)('%s middleware', (framework) => {
  let app: TestApp | undefined

  beforeEach(async () => {
    await redis.client.flushall()
  })

  afterEach(async () => {
    await app?.close()
    app = undefined
  })

  it('records into a MemoryTracker', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 3 })
    app = await startApp(framework, { tracker })
    for (let i = 1; i <= 5; i++) await sendRequest(`${app.url}/users/${i}`)

    const snapshot = await tracker.read()
    expect(snapshot.completed.map((task) => task.path)).toEqual(['/users/5', '/users/4', '/users/3'])
    expect(snapshot.completed[0]?.task_name).toBe('/users/:id')
    expect(snapshot.completed[0]?.status_code).toBe(200)
    expect(snapshot.active.size).toBe(0)
  })

  it('close removes active entries', async () => {
    app = await startApp(framework, { trackerUrl: redis.url })
    const pending = sendRequest(`${app.url}/wait`)
    await waitFor('the active task', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.keys(stored.processors).length === 1 ? true : undefined
    })
    const clientsBefore = await countClients(redis.client)

    await app.closeRecorder()
    expect((await readStoredTasks(redis.client)).processors).toEqual({})
    expect(await countClients(redis.client)).toBe(clientsBefore - 1)

    app.releaseWaiting()
    await pending
  })

  it('follows trust proxy', async () => {
    app = await startApp(framework, { trackerUrl: redis.url, trustProxy: true })
    await sendRequest(`${app.url}/users/1`, {
      headers: [
        ['X-Forwarded-For', '203.0.113.7, 10.0.0.1'],
        ['X-Forwarded-Proto', 'https'],
      ],
    })

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.client_ip_address).toBe('203.0.113.7')
    expect(task?.protocol).toBe('https')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('proxy')
  })

  it('records the socket address for forwarded values that are not valid', async () => {
    app = await startApp(framework, { trackerUrl: redis.url, trustProxy: true })
    const longValue = 'x'.repeat(12_000)
    await sendRequest(`${app.url}/users/1`, {
      headers: [
        ['X-Forwarded-For', `garbage<script>, ${longValue}`],
        ['X-Forwarded-Proto', 'p'.repeat(3_000)],
      ],
    })

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.client_ip_address).toBe('127.0.0.1')
    expect(task?.protocol).toBe('http')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('socket')
  })

  it('ignores forwarded headers by default', async () => {
    app = await startApp(framework, { trackerUrl: redis.url })
    await sendRequest(`${app.url}/users/1`, {
      headers: [
        ['X-Forwarded-For', '203.0.113.7'],
        ['X-Forwarded-Proto', 'https'],
      ],
    })

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.client_ip_address).toBe('127.0.0.1')
    expect(task?.protocol).toBe('http')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('socket')
  })
})

describe('express route watching', () => {
  it('keeps req.route readable by the app', async () => {
    const middleware = topMiddleware({ tracker: new MemoryTracker() })
    const app = express5()
    app.use(middleware)
    app.get('/orders/:id', (req: Request, res: Response) => {
      res.json({ route: req.route?.path })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const port = (server.address() as { port: number }).port

    const response = await sendRequest(`http://127.0.0.1:${port}/orders/9`)
    expect(JSON.parse(response.body)).toEqual({ route: '/orders/:id' })

    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await middleware.close()
  })
})

describe.each([
  ['express5', express5],
  ['express4', express4],
] as const)('%s mounted app', (_name, express) => {
  it('names the routes of a mounted app', async () => {
    const tracker = new MemoryTracker()
    const middleware = topMiddleware({ tracker })
    const outer = express()
    const inner = express()
    inner.get('/items/:id', (req: Request, res: Response) => {
      res.json({ route: req.route?.path })
    })
    outer.use(middleware)
    outer.use('/shop', inner)
    const server = outer.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const port = (server.address() as { port: number }).port

    try {
      const response = await sendRequest(`http://127.0.0.1:${port}/shop/items/7`)
      expect(JSON.parse(response.body)).toEqual({ route: '/items/:id' })
      const [task] = (await tracker.read()).completed
      expect(task?.task_name).toBe('/shop/items/:id')
      expect(task?.path).toBe('/shop/items/7')
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    }
  })
})

describe.each([
  ['express5', express5],
  ['express4', express4],
] as const)('%s mount path params', (_name, express) => {
  /** Mounts `users` at `/orgs/:orgId/users` with a `/:userId` route, requests `path`, and returns its task name. */
  async function recordTaskName(path: string, routerOptions: { mergeParams?: boolean }): Promise<string | null | undefined> {
    const users = express.Router(routerOptions)
    users.get('/:userId', (req: Request, res: Response) => {
      res.json(req.params)
    })
    return recordWith((app) => app.use('/orgs/:orgId/users', users), path)
  }

  /** Starts an app with the middleware first and the routes that `mount` adds, and returns the task name of one request. */
  async function recordWith(mount: (app: ReturnType<typeof express>) => void, path: string): Promise<string | null | undefined> {
    const tracker = new MemoryTracker()
    const middleware = topMiddleware({ tracker, handleSignals: false })
    const app = express()
    app.use(middleware)
    mount(app)
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const port = (server.address() as { port: number }).port

    try {
      const response = await sendRequest(`http://127.0.0.1:${port}${path}`)
      expect(response.status).toBe(200)
      const [task] = (await tracker.read()).completed
      expect(task?.path).toBe(path)
      return task?.task_name
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    }
  }

  it('names params with mergeParams', async () => {
    expect(await recordTaskName('/orgs/acme/users/1', { mergeParams: true })).toBe('/orgs/:orgId/users/:userId')
  })

  it('names params without mergeParams', async () => {
    expect(await recordTaskName('/orgs/acme/users/1', {})).toBe('/orgs/:orgId/users/:userId')
  })

  it('names a percent-encoded value', async () => {
    expect(await recordTaskName('/orgs/a%20b%2Fc/users/1', { mergeParams: true })).toBe('/orgs/:orgId/users/:userId')
  })

  it('names equal mount and route values', async () => {
    expect(await recordTaskName('/orgs/1/users/1', { mergeParams: true })).toBe('/orgs/:orgId/users/:userId')
  })

  it('keeps a later literal equal to a value', async () => {
    expect(await recordTaskName('/orgs/users/users/1', { mergeParams: true })).toBe('/orgs/:orgId/users/:userId')
  })

  it('names an earlier literal equal to a value', async () => {
    // Known limit of the heuristic: the first segment equal to the value
    // takes the name, here the literal `orgs` before the org named `orgs`.
    expect(await recordTaskName('/orgs/orgs/users/1', { mergeParams: true })).toBe('/:orgId/orgs/users/:userId')
  })

  it('names params of nested routers', async () => {
    const taskName = await recordWith((app) => {
      const users = express.Router({ mergeParams: true })
      users.get('/:userId', (req: Request, res: Response) => {
        res.json(req.params)
      })
      const teams = express.Router({ mergeParams: true })
      teams.use('/teams/:teamId/users', users)
      app.use('/orgs/:orgId', teams)
    }, '/orgs/acme/teams/red/users/1')
    expect(taskName).toBe('/orgs/:orgId/teams/:teamId/users/:userId')
  })

  it("keeps a literal equal to the route's param", async () => {
    const taskName = await recordWith((app) => {
      const api = express.Router()
      api.get('/:name', (req: Request, res: Response) => {
        res.json(req.params)
      })
      app.use('/api', api)
    }, '/api/api')
    expect(taskName).toBe('/api/:name')
  })

  it('leaves app routes unchanged', async () => {
    const taskName = await recordWith((app) => {
      app.get('/users/:id', (req: Request, res: Response) => {
        res.json(req.params)
      })
    }, '/users/users')
    expect(taskName).toBe('/users/:id')
  })
})

describe.each([
  ['express5', express5],
  ['express4', express4],
] as const)('%s trust proxy setting', (_name, express) => {
  beforeEach(async () => {
    await redis.client.flushall()
  })

  it('follows the app setting', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url })
    const app = express()
    app.set('trust proxy', 'loopback')
    app.use(middleware)
    app.get('/', (_req: Request, res: Response) => {
      res.send('ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const port = (server.address() as { port: number }).port

    await sendRequest(`http://127.0.0.1:${port}/`, {
      headers: [
        ['X-Forwarded-For', '203.0.113.7'],
        ['X-Forwarded-Proto', 'https'],
      ],
    })
    await sendRequest(`http://127.0.0.1:${port}/`)
    // past_tasks is newest first.
    const [direct, task] = await waitForCompleted(redis.client, 2)
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await middleware.close()

    expect(task?.client_ip_address).toBe('203.0.113.7')
    expect(task?.protocol).toBe('https')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('proxy')
    // Without the header, Express gives the socket's address as req.ip.
    expect(direct?.client_ip_address).toBe('127.0.0.1')
    expect(direct?.tags?.['web_top.client_ip_source']).toBe('socket')
  })
})

describe('express tracker options', () => {
  beforeEach(async () => {
    await redis.client.flushall()
  })

  it('writes through a given ioredis client', async () => {
    const client = new Redis(redis.url)
    const app = await startApp('express5', { redis: client, keyPrefix: 'shop:' })
    await sendRequest(`${app.url}/users/1`)

    const [task] = await waitForCompleted(redis.client, 1, 'shop:')
    expect(task?.path).toBe('/users/1')
    await app.close()
    expect(client.status).toBe('ready')
    await client.quit()
  })

  it('writes to a given tracker', async () => {
    const tracker = new RedisTracker({ url: redis.url, maxCompletedTasks: 5 })
    const app = await startApp('express5', { tracker })
    await sendRequest(`${app.url}/users/1`)

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.path).toBe('/users/1')
    await app.close()
    expect(tracker.client.status).toBe('ready')
    await tracker.close()
  })

  it('lets the process exit after close', async () => {
    const nodeArgs = ['--import', 'tsx', '-e', ONE_REQUEST_EXPRESS_SCRIPT]
    const result = await runNode(nodeArgs, { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    expect(stored.processors).toEqual({})
  })

  it('says once where it records', async () => {
    const nodeArgs = ['--import', 'tsx', '-e', ONE_REQUEST_EXPRESS_SCRIPT]
    const result = await runNode(nodeArgs, { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stderr).toBe(`web-top: info: web-top records to ${redis.url} (from the trackerUrl option)\n`)

    const withPassword = redis.url.replace('redis://', 'redis://:hunter2@')
    const fromEnvironment = await runNode(
      ['--import', 'tsx', '-e', "require('./src/index.ts').topMiddleware({ keyPrefix: 'shop:' }).close()"],
      { TOP_TRACKER_URL: withPassword },
      15_000,
    )
    expect(fromEnvironment.stderr).toMatch(
      new RegExp(`^web-top: info: web-top records to redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port} \\(from TOP_TRACKER_URL\\) keyPrefix=shop:\\n`),
    )
    expect(fromEnvironment.stderr).not.toContain('hunter2')
  })
})

async function countClients(client: Redis): Promise<number> {
  const list = await client.client('LIST')
  return String(list).trim().split('\n').length
}
