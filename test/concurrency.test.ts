import Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { decodeTask, type HttpTask } from '../src/index'
import { sendRequest, startApp, waitFor, type TestApp } from './helpers/http'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { waitForCompleted } from './helpers/recording-cases'

const CONCURRENT_REQUESTS = 50

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describe.each(['express5', 'fastify5'] as const)('%s under load', (framework) => {
  let app: TestApp | undefined

  beforeEach(async () => {
    await redis.reset()
  })

  afterEach(async () => {
    app?.releaseWaiting()
    await app?.close()
    app = undefined
  })

  it('gives each in-flight request a processor', async () => {
    app = await startApp(framework, { trackerUrl: redis.url })
    const running = app
    const responses = Array.from({ length: CONCURRENT_REQUESTS }, (_, i) => sendRequest(`${running.url}/wait?n=${i}`))
    await waitFor(`${CONCURRENT_REQUESTS} held requests`, () =>
      running.waitingCount() === CONCURRENT_REQUESTS ? true : undefined,
    )

    const hash = await waitFor(`${CONCURRENT_REQUESTS} processors`, async () => {
      const entries = await redis.client.hgetall('processors')
      return Object.keys(entries).length === CONCURRENT_REQUESTS ? entries : undefined
    })
    const active = Object.values(hash).map(decodeOrFail)
    expect(new Set(active.map((task) => task.task_id)).size).toBe(CONCURRENT_REQUESTS)
    expect(new Set(active.map((task) => task.process_internal_id)).size).toBe(CONCURRENT_REQUESTS)
    expect(new Set(active.map((task) => task.params?.n)).size).toBe(CONCURRENT_REQUESTS)
    for (const task of active) expect(task.ended_at).toBeNull()

    running.releaseWaiting()
    const results = await Promise.all(responses)
    for (const result of results) expect(result.status).toBe(200)

    const completed = await waitForCompleted(redis.client, CONCURRENT_REQUESTS)
    expect(completed).toHaveLength(CONCURRENT_REQUESTS)
    expect(new Set(completed.map((task) => task.task_id))).toEqual(new Set(active.map((task) => task.task_id)))
    expect(await redis.client.hlen('processors')).toBe(0)
  })

  it('keeps maxCompletedTasks, newest first', async () => {
    app = await startApp(framework, { trackerUrl: redis.url, maxCompletedTasks: 10 })
    for (let i = 0; i < 100; i++) await sendRequest(`${app.url}/users/${i}`)

    await waitFor('the last request in past_tasks', async () => {
      const [latest] = await redis.client.lrange('past_tasks', 0, 0)
      return latest?.includes('"/users/99"') ? true : undefined
    })
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks.map((task) => task.path)).toEqual(
      Array.from({ length: 10 }, (_, i) => `/users/${99 - i}`),
    )
    expect(stored.processors).toEqual({})
  })

  it('publishes starts and ends', async () => {
    const subscriber = new Redis(redis.url)
    const messages: HttpTask[] = []
    subscriber.on('message', (_channel: string, text: string) => messages.push(decodeOrFail(text)))
    await subscriber.subscribe('task_updates')

    try {
      app = await startApp(framework, { trackerUrl: redis.url })
      for (let i = 0; i < 3; i++) await sendRequest(`${app.url}/users/${i}`)
      await waitFor('6 published updates', () => (messages.length >= 6 ? true : undefined))
    } finally {
      subscriber.disconnect()
    }

    expect(messages).toHaveLength(6)
    const byTask = new Map<unknown, HttpTask[]>()
    for (const message of messages) byTask.set(message.task_id, [...(byTask.get(message.task_id) ?? []), message])
    expect(byTask.size).toBe(3)
    for (const [start, end] of byTask.values()) {
      expect(start?.ended_at).toBeNull()
      expect(start?.status_code).toBeNull()
      expect(end?.ended_at).not.toBeNull()
      expect(end?.status_code).toBe(200)
    }
  })
})

describe('responses while Redis is unavailable', () => {
  let app: TestApp | undefined

  beforeEach(async () => {
    await redis.reset()
  })

  afterEach(async () => {
    redis.thaw()
    await app?.close()
    app = undefined
  })

  it('answers while Redis is frozen', async () => {
    app = await startApp('express5', { trackerUrl: redis.url })
    await sendRequest(`${app.url}/users/0`)
    await waitForCompleted(redis.client, 1)

    redis.freeze()
    const startedAt = Date.now()
    for (let i = 1; i <= 20; i++) {
      const response = await sendRequest(`${app.url}/users/${i}`)
      expect(response.status).toBe(200)
    }
    const elapsedMs = Date.now() - startedAt
    redis.thaw()

    // 20 sequential requests on loopback take a few ms each, Redis or not.
    expect(elapsedMs).toBeLessThan(2_000)
    const completed = await waitForCompleted(redis.client, 21)
    expect(completed[0]?.path).toBe('/users/20')
    expect(await redis.client.hlen('processors')).toBe(0)
  })

  it('answers while Redis is stopped', async () => {
    const separate = await startRedis()
    try {
      app = await startApp('express5', { trackerUrl: separate.url })
      await sendRequest(`${app.url}/users/0`)
      await waitForCompleted(separate.client, 1)

      await separate.stop()
      for (let i = 1; i <= 5; i++) {
        const response = await sendRequest(`${app.url}/users/${i}`)
        expect(response.status).toBe(200)
      }
      await separate.start()

      const running = app
      const completed = await waitFor('a request after the restart', async () => {
        await sendRequest(`${running.url}/users/after`)
        const stored = await readStoredTasks(separate.client).catch(() => undefined)
        return stored?.pastTasks.some((task) => task.path === '/users/after') ? stored : undefined
      })
      expect(completed.processors).toEqual({})
    } finally {
      await app?.close()
      app = undefined
      await separate.close()
    }
  })
})

function decodeOrFail(text: string): HttpTask {
  const result = decodeTask(text)
  if (!result.ok) throw new Error(`record does not decode (${result.reason}): ${text}`)
  return result.task
}
