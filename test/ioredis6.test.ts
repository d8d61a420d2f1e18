/**
 * An app that hands web-top a client of ioredis 6 (installed as the
 * `ioredis6` alias) instead of a URL: its records reach Redis complete,
 * with RESP2 and with RESP3, and a `RedisTracker` reads them back through
 * the same client.
 */
import Redis6 from 'ioredis6'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { startApp, sendRequest, waitFor, type FrameworkName } from './helpers/http'
import { waitForActive } from './helpers/records'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

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

/** Collects what the recorder logs, so that a test can check that no write failed. */
function createLogCollector(): { messages: string[]; warn(...args: unknown[]): void; error(...args: unknown[]): void } {
  const messages: string[] = []
  const log = (...args: unknown[]) => {
    messages.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '))
  }
  return { messages, warn: log, error: log }
}

const CASES: Array<[FrameworkName, 2 | 3]> = [
  ['express5', 2],
  ['express5', 3],
  ['fastify5', 2],
  ['fastify5', 3],
]

describe('ioredis 6 client', () => {
  it.each(CASES)('records %s requests over RESP%d', async (framework, protocol) => {
    const client = new Redis6(redis.url, { protocol })
    const logger = createLogCollector()
    const app = await startApp(framework, { redis: client, logger })
    try {
      for (let id = 1; id <= 5; id++) {
        const response = await sendRequest(`${app.url}/users/${id}`)
        expect(response.status).toBe(200)
      }
      const stored = await waitFor('5 completed tasks', async () => {
        const tasks = await readStoredTasks(redis.client)
        return tasks.pastTasks.length === 5 ? tasks : undefined
      })

      expect(stored.pastTasks.map((task) => task.path).sort()).toEqual(['/users/1', '/users/2', '/users/3', '/users/4', '/users/5'])
      expect(new Set(stored.pastTasks.map((task) => task.status_code))).toEqual(new Set([200]))
      expect(new Set(stored.pastTasks.map((task) => task.task_name))).toEqual(new Set(['/users/:id']))
      expect(stored.processors).toEqual({})
      expect(logger.messages).toEqual([])
    } finally {
      await app.close()
    }
    expect(client.status).toBe('ready')
    client.disconnect()
  })

  it.each([2, 3] as const)('reads active and completed tasks over RESP%d', async (protocol) => {
    const client = new Redis6(redis.url, { protocol })
    const app = await startApp('express5', { redis: client })
    const reader = new RedisTracker({ client })
    try {
      await sendRequest(`${app.url}/health`)
      const waiting = [sendRequest(`${app.url}/wait`), sendRequest(`${app.url}/wait`)]
      await waitForActive(redis.client, 2)

      const snapshot = await reader.read()
      expect([...snapshot.active.values()].map((task) => task.path)).toEqual(['/wait', '/wait'])
      expect(snapshot.completed.map((task) => task.path)).toEqual(['/health'])
      expect(snapshot.skipped).toBe(0)

      app.releaseWaiting()
      await Promise.all(waiting)
    } finally {
      await reader.close()
      await app.close()
    }
    client.disconnect()
  })
})
