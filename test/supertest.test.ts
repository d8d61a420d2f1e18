import express from 'express'
import request from 'supertest'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { topMiddleware } from '../src/index'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

// supertest starts a server for each request and closes it after the
// response, so the recorder goes idle and wakes up again between requests
// while its last QUIT may still be under way.
it('records every request of a supertest run', async () => {
  const app = express()
  const middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
  app.use(middleware)
  app.get('/items/:id', (req, res) => {
    res.json({ id: req.params.id })
  })

  const count = 30
  for (let index = 0; index < count; index++) {
    await request(app).get(`/items/${index}`).expect(200)
  }
  await middleware.recorder.tracker.flush()
  const stored = await readStoredTasks(redis.client)
  const stats = middleware.recorder.tracker.stats()
  await middleware.close()

  expect(stats.dropped).toBe(0)
  expect(stored.processors).toEqual({})
  const paths = stored.pastTasks.map((task) => task.path).sort()
  const expected = Array.from({ length: count }, (_, index) => `/items/${index}`).sort()
  expect(paths).toEqual(expected)
  expect(stored.pastTasks.every((task) => task.status_code === 200)).toBe(true)
})
