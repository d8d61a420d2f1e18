/**
 * Apps whose server never listens: a Fastify boot that fails and that the
 * app catches, and scripts that only send requests through `inject()`.
 * Adding web-top must not change whether such a process exits, nor leave
 * a heartbeat for a process that serves nothing. Each app runs in a child
 * process and records to a Redis of the test's own.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import fastify5 from 'fastify'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topPlugin } from '../src/index'
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

async function expectNoHeartbeat(): Promise<void> {
  expect(await redis.client.smembers('heartbeats')).toEqual([])
  expect(await redis.client.keys('heartbeat:*')).toEqual([])
}

/** Runs `script` with `TEST_REDIS_URL` set and fails if it has not exited after 15 s. */
function runScript(script: string) {
  return runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
}

describe.each(['fastify', 'fastify4'])('%s boot failure caught by the app', (fastifyModule) => {
  it('exits when another plugin throws', async () => {
    const script = `
      const Fastify = require('${fastifyModule}')
      const { topPlugin } = require('./src/index.ts')
      const app = Fastify()
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.register(async () => {
        throw new Error('database plugin failed')
      })
      app.ready().catch((err) => {
        console.log('caught: ' + err.message)
        process.exitCode = 1
      })
    `
    const result = await runScript(script)
    expect(result.stdout.trim()).toBe('caught: database plugin failed')
    expect(result.code).toBe(1)
    await expectNoHeartbeat()
  })

  it('exits when listen finds its port taken', async () => {
    const script = `
      const net = require('node:net')
      const Fastify = require('${fastifyModule}')
      const { topPlugin } = require('./src/index.ts')
      const app = Fastify()
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.get('/', async () => 'ok')
      const blocker = net.createServer()
      blocker.listen(0, '127.0.0.1', () => {
        app.listen({ port: blocker.address().port, host: '127.0.0.1' }).catch((err) => {
          console.log('caught: ' + err.code)
          process.exitCode = 1
          blocker.close()
        })
      })
    `
    const result = await runScript(script)
    expect(result.stdout.trim()).toBe('caught: EADDRINUSE')
    expect(result.code).toBe(1)
    await expectNoHeartbeat()
  })
})

describe('inject() without a server', () => {
  it('lets a Fastify script exit without app.close()', async () => {
    const script = `
      const Fastify = require('fastify')
      const { topPlugin } = require('./src/index.ts')
      const app = Fastify()
      app.register(topPlugin, { trackerUrl: process.env.TEST_REDIS_URL })
      app.get('/items/:id', async () => 'ok')
      app.inject('/items/1').then((response) => console.log('status ' + response.statusCode))
    `
    const result = await runScript(script)
    expect(result.stdout.trim()).toBe('status 200')
    expect(result.code).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.task_name)).toEqual(['/items/:id'])
    expect(stored.processors).toEqual({})
    await expectNoHeartbeat()
  })

  it('lets an Express script exit after light-my-request', async () => {
    const script = `
      const express = require('express')
      const inject = require('light-my-request')
      const { topMiddleware } = require('./src/index.ts')
      const app = express()
      app.use(topMiddleware({ trackerUrl: process.env.TEST_REDIS_URL }))
      app.get('/items/:id', (req, res) => res.send('ok'))
      inject(app, { url: '/items/1' })
        .then(() => inject(app, { url: '/items/2' }))
        .then((response) => console.log('status ' + response.statusCode))
    `
    const result = await runScript(script)
    expect(result.stdout.trim()).toBe('status 200')
    expect(result.code).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.path).sort()).toEqual(['/items/1', '/items/2'])
    expect(stored.processors).toEqual({})
    await expectNoHeartbeat()
  })
})

// The recorder starts idle, and the suspend of that start parks the Redis
// connection when it ends. An app that listens before it ends must still
// get a connection that reconnects by itself.
describe('fastify5 app that listens right after registering', () => {
  it('reconnects to a restarted Redis without traffic', async () => {
    // Refreshed every 20 s, so no heartbeat write reconnects within the wait.
    const app = fastify5({ logger: false })
    await app.register(topPlugin, { trackerUrl: redis.url, heartbeatTtlMs: 60_000, handleSignals: false })
    app.get('/', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      await waitUntil('the first heartbeat', 15_000, async () => {
        return (await redis.client.smembers('heartbeats')).length === 1
      })
      await redis.stop()
      await redis.start()
      await waitUntil("the app's connection to the restarted Redis", 15_000, async () => {
        return (await countOtherClients()) === 1
      })
    } finally {
      await app.close()
    }
  })
})

/** Counts the connections to the test's Redis besides the test's own client. */
async function countOtherClients(): Promise<number> {
  const list = String(await redis.client.client('LIST')).trim().split('\n')
  return list.filter((line) => !line.includes('cmd=client|list')).length
}

// A Fastify app can serve through a server of the app's own, which calls
// `app.routing`, as serverless adapters do; `fastify.server` never listens.
describe('fastify5 app served through another server', () => {
  it('stays awake while that server is open', async () => {
    const app = fastify5({ logger: false })
    await app.register(topPlugin, { trackerUrl: redis.url, handleSignals: false })
    app.get('/', async () => 'ok')
    await app.ready()
    const outer = createServer((req, res) => app.routing(req, res))
    await new Promise<void>((resolve) => outer.listen(0, '127.0.0.1', resolve))
    try {
      const origin = `http://127.0.0.1:${(outer.address() as AddressInfo).port}`
      expect((await fetch(`${origin}/`)).status).toBe(200)
      await waitUntil('the heartbeat', 15_000, async () => (await redis.client.smembers('heartbeats')).length === 1)
      // A recorder that went idle after the request would remove its heartbeat within about 1 s.
      await new Promise((resolve) => setTimeout(resolve, 2_500))
      expect(await redis.client.smembers('heartbeats')).toHaveLength(1)
    } finally {
      await new Promise((resolve) => outer.close(resolve))
    }
    // Once that server closes, the recorder goes idle and removes its heartbeat.
    await waitUntil('no heartbeat', 15_000, async () => (await redis.client.smembers('heartbeats')).length === 0)
    await app.close()
  })
})
