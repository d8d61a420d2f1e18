/**
 * The Koa and NestJS examples, run as a user runs them (child processes on
 * loopback ports), record to a private Redis with their own key prefix.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { sendRequest } from './helpers/http'
import { waitForCompleted } from './helpers/recording-cases'
import {
  countTasksByRoute,
  countTrafficByRoute,
  runTraffic,
  startExample,
  type ExampleProcess,
} from './helpers/example-process'
import { findFreePort, readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

/** Requests of the traffic generator for each app. */
const TRAFFIC_REQUESTS = 60

/** Requests sent one by one, each checked field by field: [method, path, status, task name]. */
const CHECKED_REQUESTS: Array<[string, string, number, string]> = [
  ['GET', '/users/7', 200, '/users/:id'],
  ['GET', '/users/abc', 404, '/users/:id'],
  ['PUT', '/users/8', 200, '/users/:id'],
  ['DELETE', '/users/9', 204, '/users/:id'],
  ['POST', '/users', 201, '/users'],
  ['GET', '/fail', 500, '/fail'],
  ['GET', '/', 200, '/'],
]

let redis: TestRedis
const running: ExampleProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterEach(async () => {
  await Promise.all(running.splice(0).map((example) => example.stop()))
})

afterAll(async () => {
  await redis?.close()
})

describe.each([
  ['koa.ts', 'koa example', 'koa:'],
  ['nestjs-express.ts', 'nestjs-express example', 'nest-express:'],
  ['nestjs-fastify.ts', 'nestjs-fastify example', 'nest-fastify:'],
])('examples/%s', (script, name, prefix) => {
  it('records method, path, status and route', async () => {
    const port = await findFreePort()
    const app = startExample(script, {
      trackerUrl: redis.url,
      args: ['--port', String(port)],
      env: { TOP_TRACKER_PREFIX: prefix, TOP_MAX_COMPLETED_TASKS: '1000' },
    })
    running.push(app)
    const [banner] = await app.waitForLines(/listening/, 1, 30_000)
    expect(banner).toContain(`${name}: process ${app.child.pid} listening on http://127.0.0.1:${port}`)
    const origin = `http://127.0.0.1:${port}`

    expect((await sendRequest(`${origin}/health`)).body).toBe('ok')
    for (const [method, path, status] of CHECKED_REQUESTS) {
      const response = await sendRequest(`${origin}${path}`, { method })
      expect(response.status, `${method} ${path}`).toBe(status)
    }

    const stored = await waitForCompleted(redis.client, CHECKED_REQUESTS.length, prefix)
    const recorded = stored.map((task) => [task.method, task.path, task.status_code, task.task_name])
    expect(recorded.reverse()).toEqual(CHECKED_REQUESTS)
    expect(stored.every((task) => task.recorded_successfully === true)).toBe(true)
    expect(stored.some((task) => task.path === '/health')).toBe(false)
  }, 45_000)

  it('records generated traffic exactly', async () => {
    const port = await findFreePort()
    const trafficPrefix = `${prefix}traffic:`
    const app = startExample(script, {
      trackerUrl: redis.url,
      args: ['--port', String(port)],
      env: { TOP_TRACKER_PREFIX: trafficPrefix, TOP_MAX_COMPLETED_TASKS: '1000' },
    })
    running.push(app)
    await app.waitForLines(/listening/, 1, 30_000)

    const origin = `http://127.0.0.1:${port}`
    const args = ['--url', origin, '--requests', String(TRAFFIC_REQUESTS), '--concurrency', '6', '--slow-share', '0.05']
    const summary = await runTraffic(args)
    const tasks: HttpTask[] = await waitForCompleted(redis.client, TRAFFIC_REQUESTS, trafficPrefix)

    expect(summary.total).toBe(TRAFFIC_REQUESTS)
    expect(summary.byStatus.error).toBeUndefined()
    expect(tasks).toHaveLength(TRAFFIC_REQUESTS)
    expect(countTasksByRoute(tasks)).toEqual(countTrafficByRoute(summary))
    expect(await app.stop()).toBe(0)
    expect((await readStoredTasks(redis.client, trafficPrefix)).processors).toEqual({})
  }, 45_000)
})
