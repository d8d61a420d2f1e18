/**
 * Mounting mistakes a new user makes: `app.use(topMiddleware)` without the
 * call, `app.use(topPlugin)` in Express and `app.register(topPlugin())` in
 * Fastify. Each one must fail at once with a TypeError that names the
 * right way, and must not open a recorder or a connection.
 *
 * Set-up mistakes that used to be accepted and then failed on every
 * request must fail at set-up too: an http(s):// tracker URL given to a
 * recorder, `app.register(topMiddleware())` in Fastify, and topPlugin
 * registered twice.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express5, { type NextFunction, type Request, type Response } from 'express'
import middie from '@fastify/middie'
import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import fastifyPlugin from 'fastify-plugin'
import type Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  createTrackerFromUrl,
  INVALID_OPTION,
  INVALID_TRACKER_URL,
  MemoryTracker,
  Recorder,
  topMiddleware,
  topPlugin,
} from '../src/index'
import { express4, sendRequest, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { runNode } from './helpers/node-process'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

afterEach(() => {
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})

/** The misused middlewares, as an untyped value, the way JavaScript code passes them. */
const MISUSED = [
  ['topMiddleware', topMiddleware, 'app.use(topMiddleware())'],
  ['topPlugin', topPlugin, 'app.use(topMiddleware()) instead of app.use(topPlugin)'],
] as const

describe.each([
  ['express5', express5],
  ['express4', express4],
] as const)('%s app.use without the call', (_name, express) => {
  it.each(MISUSED)('sends 500 for app.use(%s)', async (_label, misused, advice) => {
    // Before the check, the misuse built a recorder from the request's
    // properties. Its default tracker URL points at this test's own Redis,
    // so that a regression opens a connection here and never to port 6379.
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    const stderr = vi.spyOn(process.stderr, 'write')
    const errors: unknown[] = []
    const app = express()
    app.use(misused as unknown as (req: Request, res: Response, next: NextFunction) => void)
    app.get('/users/:id', (_req: Request, res: Response) => {
      res.send('ok')
    })
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(err)
      res.status(500).send('failed')
    })
    const server = await listen(app.listen(0, '127.0.0.1'))
    const clientsBefore = await countClients(redis.client)

    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/users/1`
      const first = await sendRequest(url, { abortAfterMs: 3_000 })
      const second = await sendRequest(url, { abortAfterMs: 3_000 })
      expect(first.status).toBe(500)
      expect(second.status).toBe(500)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }

    expect(errors).toHaveLength(2)
    const error = errors[0] as Error & { code?: unknown }
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe(INVALID_OPTION)
    expect(error.message).toMatch(/^web-top: /)
    expect(error.message).toContain(advice)
    // A recorder connects at once, so a short wait is enough for its connection to show up.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await countClients(redis.client)).toBe(clientsBefore)
    const warnings = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((line) => line.includes('unknown option'))
    expect(warnings).toEqual([])
  })

  it("sends 500 through Express's error handler", async () => {
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    // Express 4 and 5 log the error to standard error unless the app runs in the test environment.
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const app = express()
    app.use(topMiddleware as unknown as (req: Request, res: Response, next: NextFunction) => void)
    app.get('/', (_req: Request, res: Response) => {
      res.send('ok')
    })
    const server = await listen(app.listen(0, '127.0.0.1'))

    try {
      const response = await sendRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
        abortAfterMs: 3_000,
      })
      expect(response.status).toBe(500)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

describe.each(FASTIFY_VERSIONS)('%s topPlugin called directly', (_name, fastify) => {
  const callPlugin = topPlugin as unknown as (...args: unknown[]) => unknown

  it('rejects app.register(topPlugin())', async () => {
    const app = fastify()
    const error = catchError(() => app.register(callPlugin() as never))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('write app.register(topPlugin) or app.register(topPlugin, options)')
    await app.close()
  })

  it('rejects topPlugin(options)', async () => {
    const app = fastify()
    const error = catchError(() => app.register(callPlugin({ trackerUrl: 'memory://' }) as never))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toContain('not app.register(topPlugin())')
    await app.close()
  })

  it('rejects an instance without done', async () => {
    const app = fastify()
    const error = catchError(() => callPlugin(app, { trackerUrl: 'memory://', handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toContain('write app.register(topPlugin)')
    expect(app.hasDecorator('webTop')).toBe(false)
    await app.close()
  })

  it('still registers as documented', async () => {
    const app = fastify()
    await app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    expect(app.hasDecorator('webTop')).toBe(true)
    await app.close()
  })
})

const ENDPOINT_URL = 'http://reader:s3cret@127.0.0.1:1/web-top'
const MASKED_URL = 'http://reader:***@127.0.0.1:1/web-top'

describe('http(s) tracker URL in a recorder', () => {
  // With a key, createTrackerFromUrl accepts the URL, so the rejection comes from the recorder.
  const withKey = () => vi.stubEnv('TOP_WEB_API_KEY', 'a-key-of-at-least-16-characters')

  it.each([
    ['http', ENDPOINT_URL, MASKED_URL],
    ['https', 'https://127.0.0.1:1/web-top?api-key=k1', 'https://127.0.0.1:1/web-top?api-key=***'],
    ['upper case', 'HTTP://127.0.0.1:1/web-top', 'http://127.0.0.1:1/web-top'],
  ])('topMiddleware rejects %s', (_case, url, masked) => {
    withKey()
    const error = catchError(() => topMiddleware({ trackerUrl: url, handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain(`Invalid tracker URL ${JSON.stringify(masked)}`)
    expect(error.message).not.toContain('s3cret')
    expect(error.message).toContain('redis://, rediss://, redis+cluster://, redis+sentinel:// or memory://')
    expect(error.message).toContain('topTrackerEndpoint')
  })

  it('Recorder rejects it', () => {
    withKey()
    const error = catchError(() => new Recorder({ trackerUrl: ENDPOINT_URL, handleSignals: false }))
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
  })

  it('names TOP_TRACKER_URL when it came from there', () => {
    withKey()
    vi.stubEnv('TOP_TRACKER_URL', ENDPOINT_URL)
    const error = catchError(() => topMiddleware({ handleSignals: false }))
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain(MASKED_URL)
    expect(error.message).toContain('(from the TOP_TRACKER_URL environment variable)')
  })

  it('is ignored when the redis option is given', async () => {
    vi.stubEnv('TOP_TRACKER_URL', ENDPOINT_URL)
    const middleware = topMiddleware({ redis: redis.client, handleSignals: false })
    expect(middleware.recorder.tracker.kind).toBe('redis')
    await middleware.close()
  })

  it.each(FASTIFY_VERSIONS)('%s ready() rejects topPlugin with it', async (_name, fastify) => {
    withKey()
    const app = fastify()
    app.register(topPlugin, { trackerUrl: ENDPOINT_URL, handleSignals: false })
    const error = await catchRejection(app.ready(), 'ready()')
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain(MASKED_URL)
    await app.close().catch(() => {})
  })

  it('rejects an HttpTracker as the tracker option', async () => {
    const reader = createTrackerFromUrl(ENDPOINT_URL, { apiKey: 'a-key-of-at-least-16-characters' })
    try {
      const error = catchError(() => topMiddleware({ tracker: reader, handleSignals: false }))
      expect(error).toBeInstanceOf(TypeError)
      expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
      expect(error.message).toContain('the `tracker` option is an HttpTracker')
      expect(error.message).toContain('pass a RedisTracker or MemoryTracker')
    } finally {
      await reader.close()
    }
  })

  it('still opens for readers', async () => {
    const tracker = createTrackerFromUrl(ENDPOINT_URL, { apiKey: 'a-key-of-at-least-16-characters' })
    expect(tracker.kind).toBe('http')
    await tracker.close()
  })
})

describe.each(FASTIFY_VERSIONS)('%s app.register(topMiddleware)', (_name, fastify) => {
  it('rejects ready() for the called form', async () => {
    const clientsBefore = await countClients(redis.client)
    const app = fastify()
    app.register(topMiddleware({ trackerUrl: redis.url, handleSignals: false }) as never)
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toMatch(/^web-top: topMiddleware is Express middleware/)
    expect(error.message).toContain('write app.register(topPlugin) or app.register(topPlugin, options)')
    expect(error.message).toContain('instead of app.register(topMiddleware())')
    await app.close().catch(() => {})
    // The recorder that topMiddleware() opened is closed with the error.
    const clientsAfter = await waitFor('the recorder to disconnect', async () => {
      const count = await countClients(redis.client)
      return count === clientsBefore ? count : undefined
    })
    expect(clientsAfter).toBe(clientsBefore)
  })

  it('rejects listen() for the called form', async () => {
    const app = fastify()
    app.register(topMiddleware({ trackerUrl: 'memory://', handleSignals: false }) as never)
    const error = await app.listen({ port: 0, host: '127.0.0.1' }).then(
      () => new Error('expected listen() to reject'),
      (err: Error) => err,
    )
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('write app.register(topPlugin)')
    await app.close().catch(() => {})
  })

  it('rejects ready() without the call', async () => {
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    const stderr = vi.spyOn(process.stderr, 'write')
    const app = fastify()
    app.register(topMiddleware as never)
    const error = await catchRejection(app.ready(), 'ready()')
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('instead of app.register(topMiddleware)')
    // No recorder was built from the instance's properties, so no option was reported as unknown.
    const warnings = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((line) => line.includes('unknown option'))
    expect(warnings).toEqual([])
    await app.close().catch(() => {})
  })
})

describe.each(FASTIFY_VERSIONS)('%s topPlugin registered twice', (name, fastify) => {
  it('rejects ready() with a web-top error', async () => {
    const app = fastify()
    app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('topPlugin is registered twice on the same Fastify instance')
    expect(error.message).toContain('register it once')
    expect((error.cause as { code?: unknown }).code).toBe('FST_ERR_DEC_ALREADY_PRESENT')
    await app.close().catch(() => {})
  })

  it('lets the process exit after the rejection', async () => {
    // The app logs the error and does not call close(), as many do.
    const script = `
      const fastify = require(process.env.TEST_FASTIFY)
      const { topPlugin } = require('./src/index.ts')
      const app = fastify()
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.ready().catch((err) => console.log(err.code))
    `
    const env = { TEST_REDIS_URL: redis.url, TEST_FASTIFY: name === 'fastify5' ? 'fastify' : 'fastify4' }
    const result = await runNode(['--import', 'tsx', '-e', script], env, 15_000)
    expect(result.stdout).toBe(`${INVALID_OPTION}\n`)
    expect(result.code).toBe(0)
  })

  it('rejects a second registration in a child plugin', async () => {
    const app = fastify()
    app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    app.register(async (child) => {
      await child.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    })
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('topPlugin is registered in a child plugin of an instance that has it already')
    await app.close().catch(() => {})
  })

  it('rejects a registration on the parent of a child that has it', async () => {
    const app = fastify()
    app.register(async (child) => {
      await child.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    })
    app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('topPlugin is registered on an instance whose child plugin has it already')
    await app.close().catch(() => {})
  })

  it('lets sibling child plugins register it', async () => {
    const app = fastify()
    for (const prefix of ['/a', '/b']) {
      app.register(
        async (child) => {
          await child.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
          child.get('/', async () => 'ok')
        },
        { prefix },
      )
    }
    await app.ready()
    await app.close()
  })

  it('still records after one registration', async () => {
    const app = fastify()
    await app.register(topPlugin, { trackerUrl: redis.url, keyPrefix: 'once:', handleSignals: false })
    app.get('/once', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const port = (app.server.address() as AddressInfo).port
      expect((await sendRequest(`http://127.0.0.1:${port}/once`)).status).toBe(200)
      const stored = await waitFor('a completed task', async () => {
        const tasks = await readStoredTasks(redis.client, 'once:')
        return tasks.pastTasks.length > 0 ? tasks : undefined
      })
      expect(stored.pastTasks[0]?.task_name).toBe('/once')
    } finally {
      await app.close()
      await redis.client.flushdb()
    }
  })
})

describe('Express with the instance check', () => {
  it('records a request', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url, keyPrefix: 'express:', handleSignals: false })
    const app = express5()
    app.use(middleware)
    app.get('/users/:id', (_req: Request, res: Response) => {
      res.send('ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const port = (server.address() as AddressInfo).port
      expect((await sendRequest(`http://127.0.0.1:${port}/users/7`)).status).toBe(200)
      const stored = await waitFor('a completed task', async () => {
        const tasks = await readStoredTasks(redis.client, 'express:')
        return tasks.pastTasks.length > 0 ? tasks : undefined
      })
      expect(stored.pastTasks[0]?.task_name).toBe('/users/:id')
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
      await redis.client.flushdb()
    }
  })
})

async function listen(server: Server): Promise<Server> {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  return server
}

function catchError(action: () => unknown): Error {
  try {
    action()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error, but none was thrown')
}

async function countClients(client: Redis): Promise<number> {
  const list = await client.client('LIST')
  return String(list).trim().split('\n').length
}

/**
 * Waits until the test Redis has at most `count` clients. A connection that
 * an earlier test closed may still count when the test starts, so the count
 * may drop below the one read then, but never stays above it.
 */
async function waitForClientCount(count: number): Promise<void> {
  await waitFor('the client count to settle', async () => ((await countClients(redis.client)) <= count ? true : undefined))
}

/** Request hooks that run before the response, so that Fastify sends 500 with the hook's error. */
const HOOKS_BEFORE_RESPONSE = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend']

/** Request hooks that run after the response or beside it, where Fastify only logs the hook's error. */
const HOOKS_AFTER_RESPONSE = ['onResponse', 'onError']

describe.each(FASTIFY_VERSIONS)('%s topMiddleware() as a hook', (_name, fastify) => {
  it.each(HOOKS_BEFORE_RESPONSE)('sends 500 from %s', async (hook) => {
    const logger = captureLogger()
    const middleware = topMiddleware({ trackerUrl: redis.url, logger, handleSignals: false })
    const app = fastify()
    app.addHook(hook as 'onRequest', middleware as never)
    // An object, so that Fastify serializes it and runs `preSerialization`.
    app.get('/users/:id', async () => ({ ok: true }))
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/users/1`
      const first = await sendRequest(url, { abortAfterMs: 3_000 })
      const second = await sendRequest(url, { abortAfterMs: 3_000 })
      expect(first.status).toBe(500)
      expect(second.status).toBe(500)
      const body = JSON.parse(first.body) as { code?: unknown; message?: unknown }
      expect(body.code).toBe(INVALID_OPTION)
      expect(body.message).toContain('topMiddleware is Express middleware, but Fastify called it as a hook')
      expect(body.message).toContain('write app.register(topPlugin) or app.register(topPlugin, options)')
      expect(body.message).toContain(`instead of app.addHook(name, topMiddleware())`)
    } finally {
      await app.close()
    }
    // Rate-limited: one line for both requests.
    expect(logger.lines.map((line) => line.message)).toEqual([
      'web-top records nothing, because Fastify runs its middleware as a hook',
    ])
    expect(middleware.recorder.tracker.kind).toBe('redis')
  })

  it.each(HOOKS_AFTER_RESPONSE)('logs the error from %s', async (hook) => {
    const logger = captureLogger()
    const middleware = topMiddleware({ trackerUrl: 'memory://', logger, handleSignals: false })
    const app = fastify()
    app.addHook(hook as 'onResponse', middleware as never)
    app.get('/ok', async () => 'ok')
    app.get('/fails', async () => {
      throw new Error('handler failed')
    })
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      const ok = await sendRequest(`${base}/ok`, { abortAfterMs: 3_000 })
      const fails = await sendRequest(`${base}/fails`, { abortAfterMs: 3_000 })
      expect(ok.status).toBe(200)
      expect(fails.status).toBe(500)
      expect(JSON.parse(fails.body).message).toBe('handler failed')
    } finally {
      await app.close()
    }
    expect(logger.lines).toHaveLength(1)
    const error = logger.lines[0]?.fields.err as Error & { code?: unknown }
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe(INVALID_OPTION)
    expect(error.message).toContain('write app.register(topPlugin)')
  })

  it.each([
    ['onReady', (app: ReturnType<typeof fastify>) => app.ready()],
    ['preClose', (app: ReturnType<typeof fastify>) => app.ready().then(() => app.close())],
    ['onClose', (app: ReturnType<typeof fastify>) => app.ready().then(() => app.close())],
  ] as const)('rejects from %s', async (hook, run) => {
    const app = fastify()
    app.addHook(hook as 'onReady', topMiddleware({ trackerUrl: 'memory://', handleSignals: false }) as never)
    const error = await catchRejection(run(app), `the ${hook} hook`)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('write app.register(topPlugin)')
    await app.close().catch(() => {})
  })

  it('throws from onRoute', async () => {
    const app = fastify()
    app.addHook('onRoute', topMiddleware({ trackerUrl: 'memory://', handleSignals: false }) as never)
    const error = catchError(() => app.get('/', async () => 'ok'))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toContain('instead of app.addHook(name, topMiddleware())')
    await app.close().catch(() => {})
  })
})

describe.each(FASTIFY_VERSIONS)('%s uncalled mount as a hook', (_name, fastify) => {
  it.each([
    ['topMiddleware', topMiddleware, 'topMiddleware is Express middleware', 'app.addHook(name, topMiddleware)'],
    ['topPlugin', topPlugin, 'topPlugin is a Fastify plugin, but Fastify called it as a hook', 'app.addHook(name, topPlugin)'],
  ] as const)('sends 500 for %s', async (_label, misused, start, written) => {
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    const stderr = vi.spyOn(process.stderr, 'write')
    const clientsBefore = await countClients(redis.client)
    const app = fastify()
    app.addHook('onRequest', misused as never)
    app.get('/', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`
      const response = await sendRequest(url, { abortAfterMs: 3_000 })
      expect(response.status).toBe(500)
      const message = String(JSON.parse(response.body).message)
      expect(message).toContain(`web-top: ${start}`)
      expect(message).toContain('write app.register(topPlugin) or app.register(topPlugin, options)')
      expect(message).toContain(`instead of ${written}`)
    } finally {
      await app.close()
    }
    // No recorder was built from the request's properties.
    await waitForClientCount(clientsBefore)
    const warnings = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((line) => line.includes('unknown option'))
    expect(warnings).toEqual([])
  })

  it('rejects ready() for topMiddleware in onReady', async () => {
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    const clientsBefore = await countClients(redis.client)
    const app = fastify()
    app.addHook('onReady', topMiddleware as never)
    const error = await catchRejection(app.ready(), 'ready()')
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('instead of app.addHook(name, topMiddleware)')
    await app.close().catch(() => {})
    await waitForClientCount(clientsBefore)
  })
})

describe('fastify5 topPlugin through @fastify/middie', () => {
  it('sends 500 naming app.register', async () => {
    const app = fastify5()
    await app.register(middie)
    app.use(topPlugin as never)
    app.get('/', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`
      const response = await sendRequest(url, { abortAfterMs: 3_000 })
      expect(response.status).toBe(500)
      const message = String(JSON.parse(response.body).message)
      expect(message).toContain('topPlugin is a Fastify plugin, but it was called as middleware')
      expect(message).toContain('In Fastify with @fastify/middie or @fastify/express, write app.register(topPlugin)')
    } finally {
      await app.close()
    }
  })
})

describe('fastify5 topMiddleware() through @fastify/middie', () => {
  it('records a request', async () => {
    const tracker = new MemoryTracker()
    const middleware = topMiddleware({ tracker, handleSignals: false })
    const app = fastify5()
    await app.register(middie)
    app.use(middleware)
    app.get('/users/:id', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })

    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/users/4?tab=1`
      expect((await sendRequest(url, { abortAfterMs: 3_000 })).status).toBe(200)
      const snapshot = await waitFor('a completed task', async () => {
        const read = await tracker.read()
        return read.completed.length > 0 ? read : undefined
      })
      expect(snapshot.completed[0]?.path).toBe('/users/4')
      expect(snapshot.completed[0]?.status_code).toBe(200)
    } finally {
      await app.close()
      await middleware.close()
    }
  })
})

const OPTIONS = { trackerUrl: 'memory://', handleSignals: false }

describe.each(FASTIFY_VERSIONS)('%s webTop decorated by another plugin', (_name, fastify) => {
  const otherPlugin = fastifyPlugin(
    (instance: { decorate(name: string, value: unknown): void }, _options: unknown, done: () => void) => {
      instance.decorate('webTop', { dashboard: true })
      done()
    },
    { name: 'other-plugin' },
  )

  it.each([
    [
      'on the same instance',
      'FST_ERR_DEC_ALREADY_PRESENT',
      (app: ReturnType<typeof fastify>) => app.register(topPlugin, OPTIONS),
    ],
    [
      'in a child plugin',
      // Fastify 4 and 5 let a child context decorate a name that its parent has.
      undefined,
      (app: ReturnType<typeof fastify>) =>
        app.register(async (child: ReturnType<typeof fastify>) => {
          await child.register(topPlugin, OPTIONS)
        }),
    ],
  ] as const)('rejects ready() %s', async (_where, causeCode, registerTop) => {
    const app = fastify()
    app.register(otherPlugin as never)
    registerTop(app)
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain(
      'topPlugin decorates the Fastify instance with `webTop`, but another plugin or the app has already decorated it with an object',
    )
    expect(error.message).toContain('rename that decorator')
    expect(error.message).not.toContain('registered')
    expect((error.cause as { code?: unknown } | undefined)?.code).toBe(causeCode)
    await app.close().catch(() => {})
  })

  it('names the class of the value', async () => {
    class Dashboard {}
    const app = fastify()
    app.decorate('webTop', new Dashboard() as never)
    app.register(topPlugin, OPTIONS)
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error.message).toContain('already decorated it with an instance of Dashboard')
    await app.close().catch(() => {})
  })

  it.each([
    [
      'a getter that throws',
      {
        getter() {
          throw new Error('boom')
        },
      },
      'a getter that throws when read',
    ],
    [
      'a getter that returns a Proxy whose reads throw',
      {
        getter() {
          return new Proxy(
            {},
            {
              get() {
                throw new Error('boom')
              },
            },
          )
        },
      },
      'a value whose properties throw when read',
    ],
  ])('rejects ready() on %s', async (_case, decorator, description) => {
    const app = fastify()
    app.decorate('webTop', decorator as never)
    app.register(topPlugin, OPTIONS)
    const error = await catchRejection(app.ready(), 'ready()')
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain(`has already decorated it with ${description}: rename that decorator`)
    await app.close().catch(() => {})
  })
})


/** Returns the error that `promise` rejects with, or fails the test when it resolves. */
async function catchRejection(promise: PromiseLike<unknown>, action: string): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error(`expected ${action} to fail, but it succeeded`)
}
