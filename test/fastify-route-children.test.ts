/**
 * `topTrackerRoute` on the root of a Fastify app whose `topPlugin` is
 * registered in child plugins only, recording to a real Redis: the route
 * serves what the children record, as `topTrackerEndpoint` does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Fastify from 'fastify'
import { HttpTracker, topPlugin, topTrackerRoute } from '../src/index'
import { waitForCompleted } from './helpers/recording-cases'
import { startRedis, type TestRedis } from './helpers/redis-server'

const API_KEY = 'fastify-route-children-key'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describe('topTrackerRoute with topPlugin in child plugins', () => {
  it('serves what the children record', async () => {
    const app = Fastify()
    for (const prefix of ['/a', '/b']) {
      app.register(
        async (child) => {
          await child.register(topPlugin, { trackerUrl: redis.url, batchWindowMs: 0, handleSignals: false })
          child.get('/item', async () => 'ok')
        },
        { prefix },
      )
    }
    await app.register(topTrackerRoute, { apiKey: API_KEY })
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      for (const path of ['/a/item', '/b/item']) await (await fetch(`${origin}${path}`)).text()
      await waitForCompleted(redis.client, 2)

      const snapshot = await new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY }).read({ completedLimit: 10 })
      expect(snapshot.completed.map((task) => task.path).sort()).toEqual(['/a/item', '/b/item'])
    } finally {
      await app.close()
    }
  })
})
