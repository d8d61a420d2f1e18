/**
 * One `http.Server` object that listens, closes and listens again, as
 * supertest given a server does for each request, or a suite that listens
 * in `beforeEach` and closes in `afterEach`. The recorder must go idle
 * after every close of its last server, not only after the first, so the
 * process exits by itself and leaves no heartbeat.
 */
import express from 'express'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker, topMiddleware } from '../src/index'
import { runNode } from './helpers/node-process'
import { readStoredTasks, startRedis, waitUntil, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

/** Each setup defines `listener`, a request listener with web-top, from `options`. */
const SETUPS = [
  [
    'topMiddleware',
    `const express = require('express')
     const app = express()
     app.use(topMiddleware(options))
     app.get('/', (req, res) => res.send('ok'))
     const listener = app`,
  ],
  ['withTop', `const listener = withTop((req, res) => res.end('ok'), options)`],
  [
    'createRequestTracker',
    `const top = createRequestTracker(options)
     const listener = (req, res) => {
       top.track(req, res)
       res.end('ok')
     }`,
  ],
] as const

describe.each(SETUPS)('%s on a server that listens again', (_name, setup) => {
  it('lets the process exit after the last close', async () => {
    // No close() of the recorder: closing the server must be enough.
    const script = `
      const { createServer } = require('node:http')
      const { createRequestTracker, topMiddleware, withTop } = require('./src/index.ts')
      const options = { trackerUrl: process.env.TEST_REDIS_URL }
      ${setup}
      const server = createServer(listener)
      async function serveOnce() {
        await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
        const response = await fetch('http://127.0.0.1:' + server.address().port + '/')
        await response.text()
        await new Promise((resolve) => server.close(resolve))
      }
      serveOnce()
        .then(serveOnce)
        .then(serveOnce)
        .then(() => console.log('closed 3 times'))
    `
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed 3 times')
    expect(result.code).toBe(0)

    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(3)
    expect(stored.processors).toEqual({})
    expect(await redis.client.smembers('heartbeats')).toEqual([])
    expect(await redis.client.keys('heartbeat:*')).toEqual([])
  })
})

// A tracker that the app passes stays the app's to close, so the recorder
// going idle shows only as its heartbeat being removed.
describe('topMiddleware with a given tracker on a server that listens again', () => {
  it('removes the heartbeat after every close', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    const middleware = topMiddleware({ tracker, handleSignals: false })
    const app = express()
    app.use(middleware)
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    const server = createServer(app)

    try {
      for (let round = 1; round <= 3; round++) {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
        const { port } = server.address() as AddressInfo
        const response = await fetch(`http://127.0.0.1:${port}/`)
        expect(await response.text()).toBe('ok')
        await waitUntil(`the heartbeat of round ${round}`, 15_000, async () => {
          return (await redis.client.smembers('heartbeats')).length === 1
        })

        await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
        await waitUntil(`no heartbeat after close ${round}`, 15_000, async () => {
          return (await redis.client.smembers('heartbeats')).length === 0
        })
      }
      expect((await readStoredTasks(redis.client)).pastTasks).toHaveLength(3)
    } finally {
      await middleware.close()
      await tracker.close()
    }
  })
})
