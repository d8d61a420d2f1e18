import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MemoryTracker, OUTCOME_TAG, type TopOptions } from '../src/index'
import { SAMPLED_OUT_TAG } from '../src/task/derived'
import { sendRequest, startApp, waitFor, type FrameworkName, type TestApp } from './helpers/http'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { waitForActive, waitForPath } from './helpers/records'

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

  it('tags the active entries of requests left out', async () => {
    const running = await start({ completedSampleRate: 0.5 })
    const pending = Array.from({ length: 20 }, () => sendRequest(`${running.url}/wait`))
    const active = await waitForActive(redis.client, 20)
    running.releaseWaiting()
    await Promise.all(pending)
    await running.closeRecorder()

    const leftOutIds = active.filter((task) => task.tags?.[SAMPLED_OUT_TAG] !== undefined).map((task) => task.task_id)
    const sampledIds = active.filter((task) => task.tags?.[SAMPLED_OUT_TAG] === undefined).map((task) => task.task_id)
    const completed = (await readStoredTasks(redis.client)).pastTasks
    // Each of the 20 requests is left out with a chance of 0.5, so all or none are with a chance of 2e-6.
    expect(leftOutIds.length).toBeGreaterThan(0)
    expect(sampledIds.length).toBeGreaterThan(0)
    for (const task of active) {
      if (task.tags?.[SAMPLED_OUT_TAG] !== undefined) expect(task.tags[SAMPLED_OUT_TAG]).toBe('true')
    }
    expect(completed.map((task) => task.task_id).sort()).toEqual(sampledIds.sort())
    for (const task of completed) expect(task.tags).not.toHaveProperty(SAMPLED_OUT_TAG)
  })

  it('0 keeps the tag in a cleanup end', async () => {
    const running = await start({ completedSampleRate: 0 })
    const pending = sendRequest(`${running.url}/wait`)
    await waitForActive(redis.client, 1)
    await running.closeRecorder()
    running.releaseWaiting()
    await pending

    const [ended] = (await readStoredTasks(redis.client)).pastTasks
    expect(ended?.tags?.[OUTCOME_TAG]).toBe('recorder_closed')
    expect(ended?.tags?.[SAMPLED_OUT_TAG]).toBe('true')
  })
})

describe('completedSampleRate with the memory tracker', () => {
  it('0 keeps active entries only', async () => {
    const tracker = new MemoryTracker()
    const published: string[] = []
    await tracker.subscribe((json) => published.push(json))
    app = await startApp('express5', { tracker, completedSampleRate: 0 })
    const pending = sendRequest(`${app.url}/wait`)
    const [active] = await waitFor('the active entry', async () => {
      const snapshot = await tracker.read()
      return snapshot.active.size === 1 ? [...snapshot.active.values()] : undefined
    })
    expect(active?.tags?.[SAMPLED_OUT_TAG]).toBe('true')

    app.releaseWaiting()
    await pending
    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toEqual([])
    expect(published).toEqual([])
  })
})
