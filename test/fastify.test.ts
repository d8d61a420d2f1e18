import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import type Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { INVALID_OPTION, MemoryTracker, topPlugin, type Logger } from '../src/index'
import { sendRequest, startApp, waitFor, type TestApp } from './helpers/http'
import { runNode } from './helpers/node-process'
import { findFreePort, readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { describeRecordFields, waitForCompleted } from './helpers/recording-cases'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describeRecordFields('fastify5', () => redis)
describeRecordFields('fastify4', () => redis)

const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

describe.each(FASTIFY_VERSIONS)('%s plugin', (framework, fastify) => {
  let app: TestApp | undefined

  beforeEach(async () => {
    await redis.client.flushall()
  })

  afterEach(async () => {
    await app?.close()
    app = undefined
  })

  it('app.close removes active entries', async () => {
    app = await startApp(framework, { trackerUrl: redis.url })
    const pending = sendRequest(`${app.url}/wait`).catch(() => undefined)
    await waitFor('the active task', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.keys(stored.processors).length === 1 ? true : undefined
    })
    const clientsBefore = await countClients(redis.client)

    await app.close()
    app = undefined
    expect((await readStoredTasks(redis.client)).processors).toEqual({})
    expect(await countClients(redis.client)).toBe(clientsBefore - 1)
    await pending
  })

  it('records an inject() request with the status it got', async () => {
    const tracker = new MemoryTracker()
    const injected = fastify()
    await injected.register(topPlugin, { tracker })
    injected.get('/users/:id', async () => 'ok')
    try {
      const response = await injected.inject('/users/7')
      expect(response.statusCode).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 20))

      const [task] = (await tracker.read()).completed
      expect(task?.status_code).toBe(200)
      expect(task?.recorded_successfully).toBe(true)
      expect(task?.tags?.['web_top.outcome']).toBeUndefined()
      expect(task?.task_name).toBe('/users/:id')
    } finally {
      await injected.close()
    }
  })

  it('records only the routes of the child it is registered in', async () => {
    const tracker = new MemoryTracker()
    const parent = fastify()
    await parent.register(async (child) => {
      await child.register(topPlugin, { tracker })
      child.get('/inside', async () => 'in')
    })
    parent.get('/outside', async () => 'out')
    try {
      expect((await parent.inject('/outside')).statusCode).toBe(200)
      expect((await parent.inject('/inside')).statusCode).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 20))

      expect((await tracker.read()).completed.map((task) => task.path)).toEqual(['/inside'])
    } finally {
      await parent.close()
    }
  })

  it('records into a MemoryTracker', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 2 })
    app = await startApp(framework, { tracker })
    for (let i = 1; i <= 3; i++) await sendRequest(`${app.url}/users/${i}`)

    const snapshot = await tracker.read()
    expect(snapshot.completed.map((task) => task.path)).toEqual(['/users/3', '/users/2'])
    expect(snapshot.completed[0]?.task_name).toBe('/users/:id')
  })

  it('follows the trustProxy setting', async () => {
    const server = fastify({ logger: false, trustProxy: true })
    await server.register(topPlugin, { trackerUrl: redis.url })
    server.get('/', async () => 'ok')
    await server.listen({ port: 0, host: '127.0.0.1' })
    const port = (server.server.address() as { port: number }).port

    await sendRequest(`http://127.0.0.1:${port}/`, {
      headers: [
        ['X-Forwarded-For', '203.0.113.7'],
        ['X-Forwarded-Proto', 'https'],
      ],
    })
    await sendRequest(`http://127.0.0.1:${port}/`)
    // past_tasks is newest first.
    const [direct, task] = await waitForCompleted(redis.client, 2)
    await server.close()

    expect(task?.client_ip_address).toBe('203.0.113.7')
    expect(task?.protocol).toBe('https')
    expect(task?.tags?.['web_top.client_ip_source']).toBe('proxy')
    // Without the header, Fastify gives the socket's address as request.ip.
    expect(direct?.client_ip_address).toBe('127.0.0.1')
    expect(direct?.tags?.['web_top.client_ip_source']).toBe('socket')
  })

  it('trustProxy option overrides the app', async () => {
    app = await startApp(framework, { trackerUrl: redis.url, trustProxy: true })
    await sendRequest(`${app.url}/users/1`, { headers: [['X-Forwarded-For', '198.51.100.2, 10.0.0.1']] })

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.client_ip_address).toBe('198.51.100.2')
  })

  it('logs through the given logger', async () => {
    const messages: string[] = []
    const logger: Logger = {
      warn: (_object, message) => messages.push(message),
      error: (_object, message) => messages.push(message),
    }
    const throwingIgnore = () => {
      throw new Error('ignore rule failed')
    }
    app = await startApp(framework, { tracker: new MemoryTracker(), logger, ignore: throwingIgnore })
    const response = await sendRequest(`${app.url}/users/1`)
    await sendRequest(`${app.url}/users/2`)

    expect(response.status).toBe(200)
    expect(messages).toEqual([
      "web-top recorded a request on which the `ignore` option's function threw: " +
        'make the function return true or false without throwing',
    ])
  })

  it('logs a failed request without its query', async () => {
    const fields: Array<Record<string, unknown>> = []
    const logger: Logger = { warn: () => {}, error: (object) => fields.push(object) }
    const throwingIgnore = () => {
      throw new Error('ignore rule failed')
    }
    app = await startApp(framework, { tracker: new MemoryTracker(), logger, ignore: throwingIgnore })
    // The path is cut at 200 characters; repeats of the message are rate-limited, so one request.
    await sendRequest(`${app.url}/users/${'a'.repeat(300)}?access_token=LOGGED-TOKEN`)

    expect(fields.map((field) => field.path)).toEqual([`/users/${'a'.repeat(193)}…`])
    expect(fields.map((field) => field.method)).toEqual(['GET'])
    expect(JSON.stringify(fields)).not.toContain('LOGGED-TOKEN')
  })

  it('rejects a second registration', async () => {
    const server = fastify({ logger: false })
    const clientsBefore = await countClients(redis.client)
    server.register(topPlugin, { trackerUrl: redis.url })
    server.register(topPlugin, { trackerUrl: redis.url })

    await expect(server.ready()).rejects.toMatchObject({
      code: INVALID_OPTION,
      cause: { code: 'FST_ERR_DEC_ALREADY_PRESENT' },
    })
    await server.close()
    // Both recorders closed the connections they opened.
    await waitFor('the connections to close', async () =>
      (await countClients(redis.client)) === clientsBefore ? true : undefined,
    )
  })

  it('logs no destination for a second registration', async () => {
    const server = fastify({ logger: false })
    const messages: string[] = []
    const record = (_fields: object, message: string) => void messages.push(message)
    const logger = { info: record, warn: record, error: record }
    server.register(topPlugin, { trackerUrl: redis.url, logger })
    server.register(topPlugin, { trackerUrl: redis.url, logger })

    await expect(server.ready()).rejects.toMatchObject({ code: INVALID_OPTION })
    await server.close()
    expect(messages.filter((message) => message.startsWith('web-top records to'))).toHaveLength(1)
  })

  it('exposes the recorder as webTop', async () => {
    const server = fastify({ logger: false })
    await server.register(topPlugin, { tracker: new MemoryTracker() })
    expect(server.webTop.tracker.kind).toBe('memory')
    await server.close()
  })
})

describe('fastify process exit', () => {
  it('lets the process exit after app.close', async () => {
    await redis.client.flushall()
    const script = `
      const fastify = require('fastify')
      const { topPlugin } = require('./src/index.ts')
      const app = fastify()
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.get('/', async () => 'ok')
      app.listen({ port: 0, host: '127.0.0.1' }).then(async (address) => {
        await fetch(address + '/')
        await app.close()
        console.log('closed')
      })
    `
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    expect(stored.pastTasks[0]?.task_name).toBe('/')
    expect(stored.processors).toEqual({})
  })
})

/**
 * Runs a Fastify app in a child process with `appOptions` (source text)
 * that records to a Redis port with no server, serves one request and
 * closes, printing `closed`.
 */
function runOneRequestApp(fastifyModule: string, appOptions: string, redisPort: number) {
  const script = `
    const fastify = require('${fastifyModule}')
    const { topPlugin } = require('./src/index.ts')
    const app = fastify(${appOptions})
    app.register(topPlugin, { trackerUrl: 'redis://127.0.0.1:${redisPort}' })
    app.get('/', async () => 'ok')
    app.listen({ port: 0, host: '127.0.0.1' }).then(async (address) => {
      await fetch(address + '/')
      await app.close()
      console.log('closed')
    })
  `
  return runNode(['--import', 'tsx', '-e', script], {}, 15_000)
}

describe.each(['fastify', 'fastify4'])('%s with its logger off', (fastifyModule) => {
  it('reports an unreachable Redis on stderr', async () => {
    const port = await findFreePort()
    const result = await runOneRequestApp(fastifyModule, '', port)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.stderr).toMatch(/^web-top: warn: redis connection error/m)
    expect(result.stderr).toContain(`redis://127.0.0.1:${port}`)
    expect(result.stderr).toMatch(/dropped/)
  })
})

describe('fastify with a silent logger', () => {
  it('stays silent', async () => {
    const port = await findFreePort()
    const result = await runOneRequestApp('fastify', "{ logger: { level: 'silent' } }", port)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.stderr).toBe('')
  })
})

describe('fastify4 route names', () => {
  // Fastify prints each deprecation warning once per process, so the check
  // runs in a fresh process where no other test has triggered it yet.
  it('reads 404s without deprecation warnings', async () => {
    const script = `
      const fastify = require('fastify4')
      const { topPlugin, MemoryTracker } = require('./src/index.ts')
      const warnings = []
      process.on('warning', (warning) => warnings.push(warning.code || warning.name))
      const app = fastify()
      app.register(topPlugin, { tracker: new MemoryTracker() })
      app.ready().then(async () => {
        await app.inject('/missing')
        await new Promise((resolve) => setTimeout(resolve, 50))
        await app.close()
        console.log(JSON.stringify(warnings))
      })
    `
    const result = await runNode(['--import', 'tsx', '-e', script], {}, 15_000)
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual([])
  })
})

async function countClients(client: Redis): Promise<number> {
  const list = await client.client('LIST')
  return String(list).trim().split('\n').length
}

describe.each(FASTIFY_VERSIONS)('%s plugin with invalid options', (_framework, fastify) => {
  it.each([
    [{ batchWindowMs: '5' }, TypeError, 'The `batchWindowMs` option must be a number (received "5")'],
    [{ trackerUrl: 'htp://x' }, TypeError, 'htp://x'],
    // Fastify 4 and 5 pass a string as it is, and the plugin rejects it before it spreads the options.
    ['memory://', TypeError, `(received "memory://"); to set the tracker URL, pass it as { trackerUrl: '...' }`],
    [[], TypeError, 'The options must be an object or left out (received an array)'],
  ])('rejects ready() for %o', async (options, errorClass, message) => {
    const app = fastify()
    void app.register(topPlugin, options as never)
    const ready = app.ready()

    await expect(ready).rejects.toThrow(errorClass)
    await expect(ready).rejects.toThrow(message)
    await app.close().catch(() => {})
  })
})
