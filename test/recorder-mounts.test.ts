/**
 * Recorders that an app opens by mistake: one per request, and a second
 * middleware whose options never apply because the first one records the
 * request. Both cost nothing visible, so each must log one warning. Also
 * the start line, which must name where the tracker URL came from.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type NextFunction, type Request, type Response } from 'express'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { Recorder, topMiddleware, type Logger, type TopMiddleware } from '../src/index'
import { MAX_AWAKE_RECORDERS } from '../src/recorder/recorder'
import { sendRequest, waitFor } from './helpers/http'
import { captureLogger, type LogLine } from './helpers/logger'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

afterEach(async () => {
  vi.unstubAllEnvs()
  await redis.reset()
})

const isTooManyLine = (line: LogLine) => line.message.includes('recorders awake in this process')
const isEarlierRecorderLine = (line: LogLine) => line.message.includes('a middleware mounted before it records the request')

// Runs first: the warning is logged once per process.
describe('recorders of closed servers', () => {
  it('logs nothing for an app per test', async () => {
    const logger = captureLogger()
    const created: TopMiddleware[] = []
    // A test suite that builds an app per test and closes its server, not its middleware.
    for (let i = 0; i < MAX_AWAKE_RECORDERS + 8; i++) {
      const middleware = topMiddleware({ trackerUrl: redis.url, logger, handleSignals: false })
      created.push(middleware)
      const app = express()
      app.use(middleware)
      app.get('/', (_req: Request, res: Response) => {
        res.send('ok')
      })
      const server = await listen(app.listen(0, '127.0.0.1'))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      expect((await sendRequest(url, { abortAfterMs: 5_000 })).status).toBe(200)
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    await Promise.all(created.map((middleware) => middleware.close()))

    expect(logger.lines.filter(isTooManyLine)).toEqual([])
  })
})

describe('recorders open at once', () => {
  it('logs nothing for a few', async () => {
    const logger = captureLogger()
    const middlewares = Array.from({ length: 4 }, () => topMiddleware({ trackerUrl: redis.url, logger, handleSignals: false }))
    await Promise.all(middlewares.map((middleware) => middleware.close()))
    expect(logger.lines.filter(isTooManyLine)).toEqual([])
  })

  it('warns once about one middleware per request', async () => {
    const logger = captureLogger()
    const created: TopMiddleware[] = []
    const app = express()
    // The mistake: a new middleware, with its own connection, for every request.
    app.use((req: Request, res: Response, next: NextFunction) => {
      const middleware = topMiddleware({ trackerUrl: redis.url, logger, handleSignals: false })
      created.push(middleware)
      middleware(req, res, next)
    })
    app.get('/', (_req: Request, res: Response) => {
      res.send('ok')
    })
    const server = await listen(app.listen(0, '127.0.0.1'))

    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      for (let i = 0; i < MAX_AWAKE_RECORDERS + 8; i++) {
        expect((await sendRequest(url, { abortAfterMs: 5_000 })).status).toBe(200)
      }
    } finally {
      await new Promise((resolve) => server.close(resolve))
      await Promise.all(created.map((middleware) => middleware.close()))
    }

    const warnings = logger.lines.filter(isTooManyLine)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.fields.awakeRecorders).toBe(MAX_AWAKE_RECORDERS + 1)
    expect(warnings[0]?.message).toContain('create the middleware or plugin once per app')
    expect(warnings[0]?.message).toContain('app.use(topMiddleware())')
  })
})

describe('second middleware on a request', () => {
  it('warns once when its options differ', async () => {
    const logger = captureLogger()
    const outer = topMiddleware({ trackerUrl: redis.url, keyPrefix: 'outer:', logger, handleSignals: false })
    const admin = topMiddleware({
      trackerUrl: redis.url,
      keyPrefix: 'admin:',
      tags: { area: 'admin' },
      logger,
      handleSignals: false,
    })
    const app = express()
    app.use(outer)
    const router = express.Router()
    router.use(admin)
    router.get('/users', (_req: Request, res: Response) => {
      res.send('ok')
    })
    app.use('/admin', router)
    const server = await listen(app.listen(0, '127.0.0.1'))

    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/users`
      for (let i = 0; i < 3; i++) expect((await sendRequest(url, { abortAfterMs: 5_000 })).status).toBe(200)
      await waitFor('the records under outer:', async () => {
        const stored = await readStoredTasks(redis.client, 'outer:')
        return stored.pastTasks.length === 3 ? true : undefined
      })
    } finally {
      await new Promise((resolve) => server.close(resolve))
      await Promise.all([outer.close(), admin.close()])
    }

    // The first middleware records the request, under its own prefix and without the router's tags.
    expect((await readStoredTasks(redis.client, 'admin:')).pastTasks).toEqual([])
    const warnings = logger.lines.filter(isEarlierRecorderLine)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.fields).toEqual({ option: 'keyPrefix', keyPrefix: 'admin:', earlierKeyPrefix: 'outer:' })
    expect(warnings[0]?.message).toContain('the first web-top middleware that a request passes records it')
  })

  it('logs nothing when its options are the same', async () => {
    const logger = captureLogger()
    const innerLogger = captureLogger()
    const options = () => ({ trackerUrl: redis.url, keyPrefix: 'same:', ignore: [/^\/health/], logger, handleSignals: false })
    // The same values in a class instance, with a logger of its own, as a config module may build them.
    class InnerOptions {
      constructor() {
        Object.assign(this, options(), { logger: innerLogger })
      }
    }
    const outer = topMiddleware(options())
    const inner = topMiddleware(new InnerOptions())
    const app = express()
    app.use(outer)
    app.use(inner)
    app.get('/', (_req: Request, res: Response) => {
      res.send('ok')
    })
    const server = await listen(app.listen(0, '127.0.0.1'))

    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      for (let i = 0; i < 2; i++) expect((await sendRequest(url, { abortAfterMs: 5_000 })).status).toBe(200)
    } finally {
      await new Promise((resolve) => server.close(resolve))
      await Promise.all([outer.close(), inner.close()])
    }
    expect(logger.lines.filter(isEarlierRecorderLine)).toEqual([])
    expect(innerLogger.lines.filter(isEarlierRecorderLine)).toEqual([])
  })
})

describe('start line', () => {
  /** Creates a logger with `info`, which the start line needs, that keeps its lines. */
  function infoLogger(): Logger & { lines: LogLine[] } {
    const logger = captureLogger()
    return { ...logger, info: (fields, message) => logger.lines.push({ message, fields }) }
  }

  it.each([
    ['null', null],
    ['undefined', undefined],
  ])('names TOP_TRACKER_URL for trackerUrl %s', async (_label, trackerUrl) => {
    vi.stubEnv('TOP_TRACKER_URL', redis.url)
    const logger = infoLogger()
    const recorder = new Recorder({ trackerUrl: trackerUrl as undefined, logger, handleSignals: false })
    await recorder.close()
    const start = logger.lines.find((line) => line.message.startsWith('web-top records to'))
    expect(start?.message).toBe(`web-top records to ${redis.url} (from TOP_TRACKER_URL)`)
  })

  it('names the option when it is given', async () => {
    vi.stubEnv('TOP_TRACKER_URL', 'memory://')
    const logger = infoLogger()
    const recorder = new Recorder({ trackerUrl: redis.url, logger, handleSignals: false })
    await recorder.close()
    const start = logger.lines.find((line) => line.message.startsWith('web-top records to'))
    expect(start?.message).toBe(`web-top records to ${redis.url} (from the trackerUrl option)`)
  })
})

async function listen(server: Server): Promise<Server> {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  return server
}
