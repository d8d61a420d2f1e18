/**
 * `topTrackerEndpoint()` without a `tracker` option in an Express app whose
 * middleware records to a private Redis. It serves what the app records,
 * as `web-top-cli` reads it over http://. When the process's recorders
 * write to several trackers, it responds with 500 and a log line.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware, topTrackerEndpoint, type TopMiddleware } from '../src/index'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

const API_KEY = 'endpoint-default-tracker-key'

let redis: TestRedis
let middleware: TopMiddleware
let server: Server
let origin: string
const endpointLogger = captureLogger()

beforeAll(async () => {
  redis = await startRedis()
  middleware = topMiddleware({ trackerUrl: redis.url, keyPrefix: 'shop:', ignore: ['/web-top'] })
  const app = express()
  app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY, logger: endpointLogger }))
  app.use(middleware)
  app.get('/hello', (_req, res) => {
    res.send('hello')
  })
  server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve))
  await middleware?.close()
  await redis?.close()
})

describe('tracker endpoint without a tracker option', () => {
  it("serves the middleware's Redis records", async () => {
    expect((await fetch(`${origin}/hello`)).status).toBe(200)
    await middleware.recorder.tracker.flush()

    const result = await runCli(['recent', '--json', '--tracker-url', `${origin}/web-top`], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records.map((task) => [task.method, task.path, task.status_code])).toEqual([['GET', '/hello', 200]])
  })

  it('serves one of two trackers of the same Redis and prefix', async () => {
    // The same server, with the database written out.
    const twin = topMiddleware({ trackerUrl: `${redis.url}/0`, keyPrefix: 'shop:' })
    try {
      const response = await fetch(`${origin}/web-top?action=completed-tasks`, { headers: { 'X-API-Key': API_KEY } })

      expect(response.status).toBe(200)
      const records = (await response.json()) as HttpTask[]
      expect(records.map((task) => task.path)).toEqual(['/hello'])
    } finally {
      await twin.close()
    }
  })

  it('responds 500 while recorders write to two trackers', async () => {
    const other = topMiddleware({ trackerUrl: redis.url, keyPrefix: 'blog:' })
    try {
      const response = await fetch(`${origin}/web-top?action=completed-tasks`, { headers: { 'X-API-Key': API_KEY } })

      expect(response.status).toBe(500)
      expect(await response.text()).toContain('no tracker to serve')
      const line = endpointLogger.lines.find((candidate) => candidate.message.includes('no tracker to serve'))
      expect(String((line?.fields.err as Error | undefined)?.message)).toContain(
        "the app's recorders write to 2 trackers, so the tracker endpoint cannot choose one",
      )
    } finally {
      await other.close()
    }

    const after = await fetch(`${origin}/web-top?action=completed-tasks`, { headers: { 'X-API-Key': API_KEY } })
    expect(after.status).toBe(200)
  })
})
