import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MemoryTracker, type TopOptions } from '../src/index'
import { sendRequest, startApp, waitFor, type FrameworkName, type TestApp } from './helpers/http'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { waitForPath } from './helpers/records'

let redis: TestRedis
let app: TestApp | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  await app?.close()
  app = undefined
})

/** Subscribes to the update channel and collects the messages. */
async function collectUpdates(): Promise<{ messages: string[]; close: () => void }> {
  const subscriber = redis.client.duplicate()
  const messages: string[] = []
  subscriber.on('message', (_channel: string, text: string) => messages.push(text))
  await subscriber.subscribe('task_updates')
  return { messages, close: () => subscriber.disconnect() }
}

describe.each<FrameworkName>(['express5', 'fastify5'])('%s completedSampleRate', (framework) => {
  async function start(options: TopOptions): Promise<TestApp> {
    app = await startApp(framework, { trackerUrl: redis.url, ...options })
    return app
  }

  it('0 keeps active entries only', async () => {
    const running = await start({ completedSampleRate: 0 })
    const updates = await collectUpdates()
    const pending = sendRequest(`${running.url}/wait`)
    await waitFor('the active entry', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.keys(stored.processors).length === 1 ? true : undefined
    })

    running.releaseWaiting()
    await pending
    for (let i = 0; i < 5; i++) await sendRequest(`${running.url}/users/${i}`)
    await waitFor('no active entry', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.keys(stored.processors).length === 0 ? true : undefined
    })
    await running.closeRecorder()
    updates.close()

    expect(await redis.client.llen('past_tasks')).toBe(0)
    expect(updates.messages).toEqual([])
  })

  it('1 records every request', async () => {
    const running = await start({ completedSampleRate: 1 })
    for (let i = 0; i < 5; i++) await sendRequest(`${running.url}/users/${i}`)
    const stored = await waitForPath(redis.client, '/users/4')
    expect(stored.pastTasks).toHaveLength(5)
  })

  it('0.5 records some requests', async () => {
    const running = await start({ completedSampleRate: 0.5 })
    for (let i = 0; i < 60; i++) await sendRequest(`${running.url}/health`)
    await running.closeRecorder()

    const recorded = await redis.client.llen('past_tasks')
    // With 60 requests, fewer than 10 or more than 50 kept has a chance below 1e-7.
    expect(recorded).toBeGreaterThan(10)
    expect(recorded).toBeLessThan(50)
    expect(await redis.client.hlen('processors')).toBe(0)
  })
})

describe('completedSampleRate with the memory tracker', () => {
  it('0 keeps active entries only', async () => {
    const tracker = new MemoryTracker()
    const published: string[] = []
    await tracker.subscribe((json) => published.push(json))
    app = await startApp('express5', { tracker, completedSampleRate: 0 })
    const pending = sendRequest(`${app.url}/wait`)
    await waitFor('the active entry', async () => ((await tracker.read()).active.size === 1 ? true : undefined))

    app.releaseWaiting()
    await pending
    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toEqual([])
    expect(published).toEqual([])
  })
})
