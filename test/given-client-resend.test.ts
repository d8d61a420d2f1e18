/**
 * A Redis client that the app passes (`redis` option) keeps ioredis's
 * default `autoResendUnfulfilledCommands: true`, so after a reconnection
 * it writes again the calls that got no reply. Redis may have run such a
 * batch before its connection closed, and the tracker has counted its
 * records as dropped by then, so that write must not run the batch again.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware } from '../src/index'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PREFIX = 'resend:'
/** Requests sent at once while the connections are killed. */
const CONCURRENCY = 10
const KILL_PERIOD_MS = 3_000
const KILL_EVERY_MS = 10

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describe('given client whose connection is killed under load', () => {
  it('stores no request twice', async () => {
    const appClient = new Redis(redis.url)
    appClient.on('error', () => {})
    const logger = captureLogger()
    const middleware = topMiddleware({
      redis: appClient,
      keyPrefix: PREFIX,
      maxCompletedTasks: 100_000,
      logger,
      handleSignals: false,
    })
    const app = express()
    app.use(middleware)
    app.get('/', (_req, res) => res.send('ok'))
    const server: Server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`

    let served = 0
    let killing = true
    const senders = Array.from({ length: CONCURRENCY }, async () => {
      while (killing) {
        const response = await fetch(url)
        await response.text()
        if (response.status === 200) served++
      }
    })
    let killed = 0
    try {
      for (const end = Date.now() + KILL_PERIOD_MS; Date.now() < end; ) {
        killed += Number(await redis.client.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'))
        await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS))
      }
    } finally {
      killing = false
      await Promise.all(senders)
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
      appClient.disconnect()
    }

    const ids = (await redis.client.lrange(`${PREFIX}past_tasks`, 0, -1)).map(
      (text) => (JSON.parse(text) as { task_id: unknown }).task_id,
    )
    const stats = middleware.recorder.tracker.stats()
    expect(killed).toBeGreaterThan(10)
    expect(served).toBeGreaterThan(100)
    expect(ids.length - new Set(ids).size).toBe(0)
    // Each request has a start and an end record, each either written or counted as dropped.
    expect(stats.written + stats.dropped).toBe(2 * served)
  }, 30_000)
})
