/**
 * `close()` while the tracker's connection waits between two connection
 * attempts (ioredis status `reconnecting`), as just after Redis dropped
 * it. The cleanup that ends the requests in flight carries no record of
 * its own. With Redis up, it must still reach Redis within the close's
 * wait. With Redis down, the log must report that the entries stay. With
 * Redis frozen, the log names the cleanup step that timed out.
 */
import { createServer, type Server } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware } from '../src/index'
import { waitFor } from './helpers/http'
import { startRecordedExpress } from './helpers/express-app'
import { captureLogger } from './helpers/logger'
import { findFreePort, readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

const HELD_REQUESTS = 3

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/**
 * Starts a loopback TCP proxy to the test Redis that can stop accepting and cut
 * its connections (`down()`) and accept again on the same port (`up()`),
 * while Redis keeps its data.
 */
async function startProxy(): Promise<{ url: string; up(): Promise<void>; down(): void }> {
  const port = await findFreePort()
  const sockets = new Set<Socket>()
  let server = createTcpServer()
  const up = () =>
    new Promise<void>((resolve) => {
      server = createTcpServer((client) => {
        const upstream = connect(redis.port, '127.0.0.1')
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on('error', drop)
          socket.on('close', drop)
        }
        client.pipe(upstream)
        upstream.pipe(client)
      })
      server.listen(port, '127.0.0.1', () => resolve())
    })
  const down = () => {
    server.close()
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }
  await up()
  return { url: `redis://127.0.0.1:${port}`, up, down }
}

/** Starts an Express app with web-top and sends `HELD_REQUESTS` requests that wait for `releaseAll()`. */
async function startHeldRequests(trackerUrl = redis.url) {
  const logger = captureLogger()
  const middleware = topMiddleware({ trackerUrl, logger, handleSignals: false })
  const releases: Array<() => void> = []
  const app = express()
  app.use(middleware)
  app.get('/hold', (_req, res) => {
    releases.push(() => res.send('released'))
  })
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hold`
  const pending = Array.from({ length: HELD_REQUESTS }, () => fetch(url).then((response) => response.text()))
  await waitFor('the active entries', async () =>
    (await redis.client.hlen('processors')) === HELD_REQUESTS ? true : undefined,
  )
  const releaseAll = async () => {
    for (const release of releases) release()
    await Promise.all(pending)
    await new Promise((resolve) => server.close(resolve))
  }
  return { logger, middleware, prefix: middleware.recorder.processorIdPrefix, releaseAll }
}

describe('close right after Redis dropped the connection', () => {
  it('ends the requests in flight', async () => {
    await redis.reset()
    const { middleware, prefix, releaseAll } = await startHeldRequests()
    try {
      expect(Number(await redis.client.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'))).toBe(1)
      // ioredis waits 50 ms or more before its next attempt (the tracker's retryStrategy).
      await new Promise((resolve) => setTimeout(resolve, 20))
      await middleware.close()
    } finally {
      await releaseAll()
    }

    const stored = await readStoredTasks(redis.client)
    expect(stored.processors).toEqual({})
    expect(stored.pastTasks.map((task) => task.tags?.['web_top.outcome'])).toEqual(
      Array.from({ length: HELD_REQUESTS }, () => 'recorder_closed'),
    )
    expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(0)
    expect(await redis.client.smembers('heartbeats')).not.toContain(prefix)
  })
})

describe('close while Redis is unreachable for 300 ms', () => {
  it('ends the requests in flight and removes the heartbeat', async () => {
    await redis.reset()
    const proxy = await startProxy()
    const { middleware, prefix, releaseAll } = await startHeldRequests(proxy.url)
    await waitFor('the heartbeat', async () => ((await redis.client.sismember('heartbeats', prefix)) === 1 ? true : undefined))
    proxy.down()
    const back = new Promise((resolve) => setTimeout(resolve, 300)).then(() => proxy.up())
    try {
      await middleware.close()
    } finally {
      await back
      await releaseAll()
      proxy.down()
    }

    const stored = await readStoredTasks(redis.client)
    expect(stored.processors).toEqual({})
    expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(0)
    expect(await redis.client.smembers('heartbeats')).not.toContain(prefix)
  })
})

/** Starts an Express app with web-top that has served one request and has none in flight. */
async function startIdleApp(trackerUrl: string) {
  const logger = captureLogger()
  const { middleware, url, closeServer } = await startRecordedExpress({ trackerUrl, logger })
  await (await fetch(url)).text()
  const prefix = middleware.recorder.processorIdPrefix
  await waitFor('the heartbeat', async () => ((await redis.client.sismember('heartbeats', prefix)) === 1 ? true : undefined))
  return { logger, middleware, prefix, closeServer }
}

describe('close while Redis is unreachable, with no request in flight', () => {
  it('removes the heartbeat when Redis is back within the wait', async () => {
    await redis.reset()
    const proxy = await startProxy()
    const { logger, middleware, prefix, closeServer } = await startIdleApp(proxy.url)
    proxy.down()
    const back = new Promise((resolve) => setTimeout(resolve, 500)).then(() => proxy.up())
    try {
      await middleware.close()
    } finally {
      await back
      await closeServer()
      proxy.down()
    }

    expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(0)
    expect(await redis.client.smembers('heartbeats')).not.toContain(prefix)
    expect(logger.lines.map((line) => line.message)).not.toContainEqual(expect.stringContaining('heartbeat'))
  })

  it('logs that the heartbeat stays when Redis stays away', async () => {
    await redis.reset()
    const proxy = await startProxy()
    const { logger, middleware, prefix, closeServer } = await startIdleApp(proxy.url)
    proxy.down()
    try {
      await middleware.close()
    } finally {
      await closeServer()
    }

    const lines = logger.lines.filter((line) => line.message.includes('could not remove the heartbeat'))
    expect(lines).toHaveLength(1)
    expect(lines[0]?.fields.processorIdPrefixes).toEqual([prefix])
    expect(lines[0]?.message).toContain('until the heartbeat expires')
    expect(await redis.client.sismember('heartbeats', prefix)).toBe(1)
  })
})

describe('close after Redis stopped', () => {
  it('logs that the entries in flight stay', async () => {
    await redis.reset()
    const { logger, middleware, prefix, releaseAll } = await startHeldRequests()
    await redis.stop()
    try {
      await middleware.close()
    } finally {
      await releaseAll()
      await redis.start()
    }

    const lines = logger.lines.filter((line) => line.message.includes('entries of its requests in flight may stay'))
    expect(lines).toHaveLength(1)
    expect(String(lines[0]?.fields.processorIds)).toContain(prefix)
    expect(lines[0]?.message).toContain('web-top-cli prune')
  })
})

describe('close while Redis is frozen, with no request in flight', () => {
  it('names the cleanup step that timed out', async () => {
    await redis.reset()
    const logger = captureLogger()
    const middleware = topMiddleware({ trackerUrl: redis.url, logger, handleSignals: false })
    const app = express()
    app.use(middleware)
    app.get('/', (_req, res) => res.send('ok'))
    const server: Server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)).text()
    // Its record and the heartbeat landed, so the connection is ready and the close's first write goes out on it.
    const prefix = middleware.recorder.processorIdPrefix
    await waitFor('the record', async () => ((await redis.client.llen('past_tasks')) === 1 ? true : undefined))
    await waitFor('the heartbeat', async () => ((await redis.client.sismember('heartbeats', prefix)) === 1 ? true : undefined))

    redis.freeze()
    try {
      await middleware.close()
    } finally {
      redis.thaw()
      await new Promise((resolve) => server.close(resolve))
    }

    const lines = logger.lines.filter((line) => line.message.startsWith('web-top timed out'))
    // The removal of the entries is the step in flight; removing the heartbeat would be named as such.
    expect(lines.map((line) => line.message)).toEqual([
      'web-top timed out trying to end the active tasks of this process: readers list this process and its ' +
        'active tasks until its heartbeat expires (heartbeatTtlMs), and then web-top-cli prune ends those tasks',
    ])
  })
})

