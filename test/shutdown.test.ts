/**
 * When the process stops, its recorder removes its own active entries and
 * heartbeat and closes the Redis connection it opened, so that the process
 * exits by itself. The apps run in child processes, which the tests stop
 * by closing the server, with SIGTERM, or with Redis frozen. With Redis
 * frozen, the process still exits in bounded time and logs how many
 * records it gave up on and why.
 */
import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import express from 'express'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Recorder, topMiddleware, withTop, type TrackerStats } from '../src/index'
import { startAppProcess, type AppProcess } from './helpers/app-process'
import { waitFor } from './helpers/http'
import { captureLogger, type LogLine } from './helpers/logger'
import { formatRequest, openConnection } from './helpers/raw-http'
import { tasksFor, waitForActive, waitForPath } from './helpers/records'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let app: AppProcess | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.reset()
})

afterEach(() => {
  redis.thaw()
  app?.kill('SIGKILL')
  app = undefined
})

/** Checks that the recorder with this prefix left no entry and no heartbeat behind. */
async function expectCleanedUp(processorIdPrefix: string): Promise<void> {
  const stored = await readStoredTasks(redis.client)
  expect(stored.processors).toEqual({})
  expect(await redis.client.exists(`heartbeat:${processorIdPrefix}`)).toBe(0)
  expect(await redis.client.smembers('heartbeats')).not.toContain(processorIdPrefix)
}

/** Sends a request to `/wait` that stays open until released or until the process ends. */
function holdRequest(target: AppProcess): Promise<number | string> {
  return fetch(`${target.url}/wait`).then(
    (response) => response.status,
    (err: unknown) => `failed: ${String(err)}`,
  )
}

describe.each(['express5', 'express4'] as const)('%s server close', (framework) => {
  it('lets the process exit by itself', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    await fetch(`${app.url}/ok`)
    await waitForPath(redis.client, '/ok')
    expect(await redis.client.exists(`heartbeat:${app.processorIdPrefix}`)).toBe(1)

    app.closeServer()
    const { code, signal } = await app.exited(10_000)
    expect(signal).toBeNull()
    expect(code).toBe(0)
    await expectCleanedUp(app.processorIdPrefix)
    expect((await readStoredTasks(redis.client)).pastTasks.map((task) => task.path)).toEqual(['/ok'])
  })
})

describe.each(['express5', 'express4', 'fastify5'] as const)('%s close, then client abort', (framework) => {
  it('exits and records the abort', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    const connection = await openConnection(app.port)
    connection.write(formatRequest('GET', '/wait'))
    await waitForActive(redis.client, 1)

    // The server's `close` event, and so the recorder's cleanup, comes
    // before the `close` event of the response whose client went away.
    app.closeServer()
    const port = app.port
    await waitFor('the closed server', async () => ((await tryConnect(port)) === 'ECONNREFUSED' ? true : undefined))
    connection.destroy()

    const { code, signal } = await app.exited(15_000)
    expect(signal).toBeNull()
    expect(code).toBe(0)
    await expectCleanedUp(app.processorIdPrefix)
    const waited = tasksFor(await readStoredTasks(redis.client), '/wait')
    expect(waited.map((task) => task.tags?.['web_top.outcome'])).toEqual(['aborted'])
  })
})

describe.each(['express5', 'express4'] as const)('%s close before any request', (framework) => {
  it('exits and leaves no heartbeat', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    app.closeServer()

    const { code, signal, elapsedMs } = await app.exited(15_000)
    expect(signal).toBeNull()
    expect(code).toBe(0)
    expect(elapsedMs).toBeLessThan(3_000)
    expect(await redis.client.smembers('heartbeats')).toEqual([])
    expect(await redis.client.keys('heartbeat:*')).toEqual([])
  })
})

describe('express5 close before any request while Redis is down', () => {
  it('exits without waiting for Redis', async () => {
    await redis.stop()
    try {
      app = await startAppProcess({ framework: 'express5', topOptions: { trackerUrl: redis.url } })
      app.closeServer()

      const { code, signal, elapsedMs } = await app.exited(15_000)
      expect(signal).toBeNull()
      expect(code).toBe(0)
      // Redis refuses connections at once, so nothing is left to wait for. A wait for the cleanup
      // would take 2 s, and with two CPU burners on a 2-core machine the exit took 220 to 245 ms.
      expect(elapsedMs).toBeLessThan(1_000)
    } finally {
      await redis.start()
    }
  })
})

describe('express5 server close while Redis pauses writes', () => {
  it('exits once the writes in flight are answered', async () => {
    app = await startAppProcess({ framework: 'express5', topOptions: { trackerUrl: redis.url } })
    await fetch(`${app.url}/ok?round=1`)
    await waitForPath(redis.client, '/ok')

    // Longer than the 2 s that removing the entries and then suspending each wait.
    await redis.client.client('PAUSE', 6_000, 'WRITE')
    await fetch(`${app.url}/ok?round=2`)
    app.closeServer()
    const { code, signal, elapsedMs } = await app.exited(20_000)

    expect(signal).toBeNull()
    expect(code).toBe(0)
    expect(elapsedMs).toBeLessThan(12_000)
    const paths = (await readStoredTasks(redis.client)).pastTasks.map((task) => task.uri)
    expect(paths).toEqual(['/ok?round=2', '/ok?round=1'])
  })
})

describe.each([
  ['a wrong password', (port: number) => `redis://weak:wrongpw@127.0.0.1:${port}`],
  ['a missing database', (port: number) => `redis://127.0.0.1:${port}/99`],
])('server close with %s', (_case, trackerUrl) => {
  it('counts and logs the records it could not write', async () => {
    await redis.client.acl('SETUSER', 'weak', 'on', '>weakpass', '~*', '&*', '+@all')
    const logger = captureLogger()
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: trackerUrl(redis.port), logger })
    const server = createServer(listener)
    try {
      server.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      const port = (server.address() as AddressInfo).port
      for (let round = 1; round <= 5; round++) await (await fetch(`http://127.0.0.1:${port}/?round=${round}`)).text()
      await closeServer(server)

      const isIdleLine = (line: LogLine) => line.message.startsWith('redis tracker went idle after its servers closed')
      const idle = await waitFor('the log of the lost records', () => logger.lines.find(isIdleLine))
      const stats = listener.recorder.tracker.stats()

      // Each request has a start and an end record, and neither was sent.
      expect(idle.fields.records).toBe(10)
      expect(idle.fields.unsent).toBe(10)
      expect(stats.dropped).toBe(10)
      expect(stats.pendingBytes).toBe(0)
    } finally {
      await listener.close()
      await redis.client.acl('DELUSER', 'weak')
    }
  })
})

describe('express5 close while Redis is out of memory', () => {
  it('names the cause and the URL', async () => {
    const logger = captureLogger()
    const middleware = topMiddleware({ trackerUrl: redis.url, logger })
    const server = await serveHello(createHelloApp(middleware), 1)
    await waitForPath(redis.client, '/hello')
    await redis.client.config('SET', 'maxmemory-policy', 'noeviction')
    await redis.client.config('SET', 'maxmemory', '1')
    try {
      await closeServer(server)
      await middleware.close()
    } finally {
      await redis.client.config('SET', 'maxmemory', '0')
    }

    const failed = logger.lines.find((line) => line.message === 'web-top could not remove the heartbeat of this process')
    const message = String((failed?.fields.err as Error | undefined)?.message)
    expect(message).toContain('OOM command not allowed')
    expect(message).toContain(redis.url)
  })
})

/** Creates an Express app with `middleware` and a `GET /hello` route. */
function createHelloApp(middleware: ReturnType<typeof topMiddleware>): ReturnType<typeof express> {
  const application = express()
  application.use(middleware)
  application.get('/hello', (_req, res) => {
    res.send('hello')
  })
  return application
}

/** Starts a server for `application` on a free loopback port and sends it `GET /hello?round=<round>`. */
async function serveHello(application: ReturnType<typeof express>, round: number): Promise<Server> {
  const server = application.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const port = (server.address() as AddressInfo).port
  expect(await (await fetch(`http://127.0.0.1:${port}/hello?round=${round}`)).text()).toBe('hello')
  return server
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

describe('an idle express5 recorder whose connection drops', () => {
  it('records again on the next server', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
    const application = createHelloApp(middleware)
    const serve = async (round: number) => {
      await closeServer(await serveHello(application, round))
    }

    await serve(1)
    await waitForPath(redis.client, '/hello', 1)
    await waitFor('the removed heartbeat', async () => ((await redis.client.scard('heartbeats')) === 0 ? true : undefined))
    await new Promise((resolve) => setTimeout(resolve, 200))
    await redis.client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
    await new Promise((resolve) => setTimeout(resolve, 500))

    await serve(2)
    await waitForPath(redis.client, '/hello', 2)
    const stats = middleware.recorder.tracker.stats()
    await middleware.close()

    expect(stats.dropped).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.uri)).toEqual(['/hello?round=2', '/hello?round=1'])
  })
})

describe('express5 server reopened during the idle cleanup', () => {
  it('keeps the new heartbeat', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
    const prefix = middleware.recorder.processorIdPrefix
    const application = createHelloApp(middleware)
    const serve = (round: number) => serveHello(application, round)

    try {
      const first = await serve(1)
      await waitFor('the first heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 1 ? true : undefined))
      // Paused writes hold the idle cleanup in its flush while the next
      // server wakes the recorder and writes a new heartbeat.
      await redis.client.client('PAUSE', 300, 'WRITE')
      await closeServer(first)
      const second = await serve(2)
      await waitForPath(redis.client, '/hello', 2)
      // Past the pause and the cleanup's removal, well before the next refresh (10 s).
      await new Promise((resolve) => setTimeout(resolve, 700))

      expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(1)
      expect(await redis.client.smembers('heartbeats')).toEqual([prefix])
      await closeServer(second)
    } finally {
      await middleware.close()
    }
  })
})

describe.each(['express5', 'fastify5'] as const)('%s SIGTERM', (framework) => {
  it('cleans up when the app has no handler', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    const held = holdRequest(app)
    await waitForActive(redis.client, 1)

    app.kill('SIGTERM')
    const { code, signal, elapsedMs } = await app.exited(10_000)
    // The process still ends the way Node ends it on SIGTERM.
    expect(signal).toBe('SIGTERM')
    expect(code).toBeNull()
    expect(elapsedMs).toBeLessThan(3_000)
    expect(String(await held)).toMatch(/^failed/)
    await expectCleanedUp(app.processorIdPrefix)
  })

  it.each(['v4', 'v3'] as const)('cleans up beside signal-exit %s', async (signalExit) => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url }, signalExit })
    const held = holdRequest(app)
    await waitForActive(redis.client, 1)

    app.kill('SIGTERM')
    const { code, signal } = await app.exited(10_000)
    expect(signal).toBe('SIGTERM')
    expect(code).toBeNull()
    // signal-exit's own handler still ran, after web-top sent the signal again.
    expect(app.output()).toContain('app: signal-exit saw SIGTERM')
    expect(String(await held)).toMatch(/^failed/)
    await expectCleanedUp(app.processorIdPrefix)
    const stored = await readStoredTasks(redis.client)
    const waited = stored.pastTasks.filter((task) => task.path === '/wait')
    expect(waited.map((task) => task.tags?.['web_top.outcome'])).toEqual(['recorder_closed'])
  })

  it('leaves SIGTERM to the app handler', async () => {
    app = await startAppProcess({
      framework,
      topOptions: { trackerUrl: redis.url },
      signalHandler: 'close-server',
    })
    const held = holdRequest(app)
    await waitForActive(redis.client, 1)

    app.kill('SIGTERM')
    const { code, signal } = await app.exited(10_000)
    expect(app.output()).toContain('app: SIGTERM received, closing the server')
    expect(signal).toBeNull()
    expect(code).toBe(0)
    expect(await held).toBe(200)

    // The held request ended normally before the recorder closed.
    const stored = await readStoredTasks(redis.client)
    const waited = stored.pastTasks.filter((task) => task.path === '/wait')
    expect(waited.map((task) => [task.status_code, task.recorded_successfully])).toEqual([[200, true]])
    await expectCleanedUp(app.processorIdPrefix)
  })

  it('exits in time while Redis is frozen', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    await fetch(`${app.url}/ok`)
    await waitForPath(redis.client, '/ok')
    redis.freeze()
    const held = holdRequest(app)
    await new Promise((resolve) => setTimeout(resolve, 100))

    app.kill('SIGTERM')
    const { signal, elapsedMs } = await app.exited(10_000)
    redis.thaw()
    expect(signal).toBe('SIGTERM')
    // Cleanup gives up after 3 s; the rest is margin for a busy test machine.
    expect(elapsedMs).toBeLessThan(6_000)
    expect(String(await held)).toMatch(/^failed/)
  })

  it('refuses connections during the cleanup', async () => {
    app = await startAppProcess({ framework, topOptions: { trackerUrl: redis.url } })
    await fetch(`${app.url}/ok`)
    await waitForPath(redis.client, '/ok')
    // A frozen Redis keeps the cleanup waiting for its 3 s, while the process still runs.
    redis.freeze()
    try {
      const exited = app.exited(10_000)
      app.kill('SIGTERM')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const running = await Promise.race([exited.then(() => false), Promise.resolve(true)])
      expect(running).toBe(true)
      expect(await tryConnect(app.port)).toBe('ECONNREFUSED')
      expect((await exited).signal).toBe('SIGTERM')
    } finally {
      redis.thaw()
    }
  })
})

/** Opens a TCP connection to a loopback port and returns 'connected' or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

describe('tsx command', () => {
  it('cleans up on SIGTERM', async () => {
    // tsx runs the app in a child process with a signal listener that it
    // hides from process.listenerCount, and relays SIGTERM to it.
    const tsx = spawn(process.execPath, [require.resolve('tsx/cli'), join(__dirname, 'helpers/tsx-cli-app.ts')], {
      env: { ...process.env, TEST_REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    tsx.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => tsx.once('exit', (code) => resolve(code)))
    try {
      const port = await new Promise<number>((resolve, reject) => {
        tsx.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          const match = /listening (\d+)/.exec(output)
          if (match) resolve(Number(match[1]))
        })
        void exited.then(() => reject(new Error(`tsx exited before the app listened: ${output}`)))
      })
      const waiting = fetch(`http://127.0.0.1:${port}/wait`).catch((err: unknown) => `failed: ${String(err)}`)
      await waitForActive(redis.client, 1)
      const [processorIdPrefix] = await redis.client.smembers('heartbeats')

      tsx.kill('SIGTERM')
      expect(await exited).toBe(143)
      expect(String(await waiting)).toMatch(/^failed/)
      await expectCleanedUp(processorIdPrefix as string)
    } finally {
      tsx.kill('SIGKILL')
    }
  }, 20_000)
})

describe('express middleware lifecycle', () => {
  it('close returns while Redis is frozen', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
    const tracker = middleware.recorder.tracker
    await waitFor('the tracker connection', () => (isReady(tracker) ? true : undefined))
    redis.freeze()
    tracker.recordStart('frozen-1', '{"path":"/frozen"}')

    const startedAt = Date.now()
    await middleware.close()
    const elapsedMs = Date.now() - startedAt
    redis.thaw()
    // The removal of the entries and the last writes share one 2 s wait.
    expect(elapsedMs).toBeGreaterThanOrEqual(1_900)
    expect(elapsedMs).toBeLessThan(3_000)
  })

  it('wakes up for a server opened after close', async () => {
    const middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
    const application = express()
    application.use(middleware)
    application.get('/hello', (_req, res) => {
      res.send('hello')
    })
    const clientsAtStart = await countClients()

    for (const round of [1, 2]) {
      const server = application.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      const port = (server.address() as AddressInfo).port
      const response = await fetch(`http://127.0.0.1:${port}/hello?round=${round}`)
      expect(await response.text()).toBe('hello')
      await waitForPath(redis.client, '/hello', round)
      expect(await countClients()).toBe(clientsAtStart + 1)

      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      // The idle recorder removes its heartbeat, then keeps its one
      // connection, unreferenced, for the next round.
      await waitFor('the removed heartbeat', async () => {
        return (await redis.client.scard('heartbeats')) === 0 ? true : undefined
      })
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(await countClients()).toBe(clientsAtStart + 1)
    }

    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.uri)).toEqual(['/hello?round=2', '/hello?round=1'])
    expect(stored.processors).toEqual({})
    await middleware.close()
  })
})

describe('idle recorder with a request in flight', () => {
  it('cleans up when the request ends', async () => {
    const recorder = new Recorder({ trackerUrl: redis.url, handleSignals: false })
    const release: Array<() => void> = []
    const server = createServer((req, res) => {
      recorder.track(req, res)
      release.push(() => res.end('done'))
    })
    server.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const response = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/held`)
    await waitForActive(redis.client, 1)

    try {
      // A watched server that closes while the request's own server,
      // which the recorder has not seen, keeps its connection open.
      const watched = new EventEmitter()
      recorder.watchServer(watched)
      watched.emit('close')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await redis.client.smembers('heartbeats')).toEqual([recorder.processorIdPrefix])

      release.forEach((end) => end())
      expect(await (await response).text()).toBe('done')
      await waitFor('the removed heartbeat', async () => ((await redis.client.scard('heartbeats')) === 0 ? true : undefined))
      const stored = await readStoredTasks(redis.client)
      expect(stored.processors).toEqual({})
      expect(tasksFor(stored, '/held').map((task) => task.status_code)).toEqual([200])
    } finally {
      server.close()
      await recorder.close()
    }
  })
})

function isReady(tracker: unknown): boolean {
  return (tracker as { client?: { status?: string } }).client?.status === 'ready'
}

async function countClients(): Promise<number> {
  const list = await redis.client.client('LIST')
  return String(list).trim().split('\n').length
}

/**
 * Time a test of a frozen Redis may take: the app exits after at most
 * 10 s, and a loaded CI machine adds to that.
 */
const FROZEN_TEST_TIMEOUT_MS = 60_000

/** Max wait for the app to exit before the test fails and kills it. */
const FROZEN_EXIT_TIMEOUT_MS = 40_000

/** Requests sent while Redis is frozen; each has a start and an end record. */
const FROZEN_REQUESTS = 3

/**
 * Starts an Express app, records one request while Redis replies, then
 * freezes Redis and sends `FROZEN_REQUESTS` more, whose writes get no
 * reply. With `givenClient`, the app passes its own ioredis client.
 */
async function startWithFrozenRedis(givenClient = false): Promise<AppProcess> {
  const started = await startAppProcess({ framework: 'express5', topOptions: { trackerUrl: redis.url }, givenClient })
  app = started
  await (await fetch(`${started.url}/ok?round=0`)).text()
  await waitForPath(redis.client, '/ok')
  redis.freeze()
  for (let round = 1; round <= FROZEN_REQUESTS; round++) {
    expect(await (await fetch(`${started.url}/ok?round=${round}`)).text()).toBe('ok')
  }
  return started
}

/** Returns the line of `output` that contains `message`, or undefined. */
function findLine(output: string, message: string): string | undefined {
  return output.split('\n').find((line) => line.includes(message))
}

/** Returns the value of `name=value` in a line of the console logger. */
function readField(line: string | undefined, name: string): string | undefined {
  return new RegExp(` ${name}=(\\S+)`).exec(line ?? '')?.[1]
}

/** Returns the tracker stats that the app printed as it exited. */
function readExitStats(output: string): TrackerStats {
  const match = /app: exit \d+, tracker stats (\{.*\})/.exec(output)
  if (match?.[1] === undefined) throw new Error(`the app printed no stats at exit: ${output}`)
  return JSON.parse(match[1]) as TrackerStats
}

/** Returns the sum of the `dropped` fields of the drop count lines in `output`. */
function sumLoggedDrops(output: string): number {
  const lines = output.split('\n').filter((line) => line.includes('task records dropped'))
  return lines.reduce((sum, line) => sum + Number(readField(line, 'dropped')), 0)
}

const IDLE_GIVE_UP = 'redis tracker went idle after its servers closed, before it could write every record'
const CLOSE_GIVE_UP = 'redis tracker closed before it could write every record'

describe('express5 server close while Redis is frozen', () => {
  it(
    'exits and logs the records it gave up on',
    async () => {
      const target = await startWithFrozenRedis()
      target.closeServer()
      const { code, signal, elapsedMs } = await target.exited(FROZEN_EXIT_TIMEOUT_MS)
      redis.thaw()

      expect(signal).toBeNull()
      expect(code).toBe(0)
      // 2 s for the removal of the entries, then 8 s in all for the replies; the rest is margin for a loaded machine.
      expect(elapsedMs).toBeLessThan(30_000)
      const output = target.output()
      const lines = output.split('\n').filter((line) => line.includes(IDLE_GIVE_UP))
      expect(lines).toHaveLength(1)
      expect(readField(lines[0], 'records')).toBe(String(2 * FROZEN_REQUESTS))
      expect(readField(lines[0], 'unconfirmed')).toBe(String(2 * FROZEN_REQUESTS))
      expect(lines[0]).toContain('reason=redis has not replied to a write sent')
      const stats = readExitStats(output)
      expect(stats.written).toBe(2)
      expect(stats.dropped).toBe(2 * FROZEN_REQUESTS)
      expect(stats.pendingBytes).toBe(0)
    },
    FROZEN_TEST_TIMEOUT_MS,
  )

  it(
    'writes the records when Redis resumes within the wait',
    async () => {
      const target = await startWithFrozenRedis()
      target.closeServer()
      // After the 2 s of the removal and the 2 s of suspend, within the 8 s wait for replies.
      await new Promise((resolve) => setTimeout(resolve, 4_000))
      redis.thaw()
      const { code, signal } = await target.exited(FROZEN_EXIT_TIMEOUT_MS)

      expect(signal).toBeNull()
      expect(code).toBe(0)
      const output = target.output()
      expect(findLine(output, IDLE_GIVE_UP)).toBeUndefined()
      const stats = readExitStats(output)
      expect(stats.written).toBe(2 + 2 * FROZEN_REQUESTS)
      expect(stats.dropped).toBe(0)
      const stored = await readStoredTasks(redis.client)
      expect(stored.pastTasks.map((task) => task.uri)).toEqual(['/ok?round=3', '/ok?round=2', '/ok?round=1', '/ok?round=0'])
      expect(stored.processors).toEqual({})
    },
    FROZEN_TEST_TIMEOUT_MS,
  )
})

describe('express5 SIGTERM while Redis is frozen', () => {
  it(
    'logs the records it gave up on and why',
    async () => {
      const target = await startWithFrozenRedis()
      target.kill('SIGTERM')
      const { signal, elapsedMs } = await target.exited(FROZEN_EXIT_TIMEOUT_MS)
      redis.thaw()

      expect(signal).toBe('SIGTERM')
      // The cleanup gives up after 3 s; the rest is margin for a loaded machine.
      expect(elapsedMs).toBeLessThan(20_000)
      const lines = target.output().split('\n').filter((line) => line.includes(CLOSE_GIVE_UP))
      expect(lines).toHaveLength(1)
      expect(readField(lines[0], 'records')).toBe(String(2 * FROZEN_REQUESTS))
      expect(readField(lines[0], 'unconfirmed')).toBe(String(2 * FROZEN_REQUESTS))
      expect(lines[0]).toContain('reason=redis has not replied to a write sent')
    },
    FROZEN_TEST_TIMEOUT_MS,
  )
})

describe('express5 given client disconnected during server close', () => {
  it(
    'exits and logs every dropped record',
    async () => {
      const target = await startWithFrozenRedis(true)
      target.closeServer()
      await new Promise((resolve) => setTimeout(resolve, 500))
      target.disconnectClient()
      const { code, signal, elapsedMs } = await target.exited(FROZEN_EXIT_TIMEOUT_MS)
      redis.thaw()

      // An unhandled rejection would end the process with code 1.
      expect(signal).toBeNull()
      expect(code).toBe(0)
      // ioredis closes a socket that Redis does not reply on after its disconnectTimeout of 2 s.
      expect(elapsedMs).toBeLessThan(25_000)
      const output = target.output()
      const stats = readExitStats(output)
      expect(stats.written).toBe(2)
      expect(stats.dropped).toBe(2 * FROZEN_REQUESTS)
      expect(sumLoggedDrops(output)).toBe(2 * FROZEN_REQUESTS)
    },
    FROZEN_TEST_TIMEOUT_MS,
  )
})

describe('express5 given client quit before server close', () => {
  it('exits and counts every record', async () => {
    app = await startAppProcess({ framework: 'express5', topOptions: { trackerUrl: redis.url }, givenClient: true })
    for (let round = 1; round <= 3; round++) await (await fetch(`${app.url}/ok?round=${round}`)).text()
    app.quitClient()
    app.closeServer()
    const { code, signal } = await app.exited(20_000)

    expect(signal).toBeNull()
    expect(code).toBe(0)
    const output = app.output()
    expect(output).toContain('app: redis client quit')
    // Whether the last records reached Redis before QUIT depends on timing, but each is written or dropped.
    const stats = readExitStats(output)
    expect(stats.written + stats.dropped).toBe(6)
    const idleGiveUp = Number(readField(findLine(output, IDLE_GIVE_UP), 'records') ?? 0)
    expect(sumLoggedDrops(output) + idleGiveUp).toBe(stats.dropped)
  })
})
