/**
 * Mounting mistakes a new user makes: `app.use(topMiddleware)` without the
 * call, `app.use(topPlugin)` in Express and `app.register(topPlugin())` in
 * Fastify. Each one must fail at once with a TypeError that names the
 * right way, and must not open a recorder or a connection.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express5, { type NextFunction, type Request, type Response } from 'express'
import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import type Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { INVALID_OPTION, topMiddleware, topPlugin } from '../src/index'
import { express4, sendRequest } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

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

describe.each([
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const)('%s topPlugin called directly', (_name, fastify) => {
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
