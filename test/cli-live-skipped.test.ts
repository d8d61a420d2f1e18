/**
 * `live` on a store with unreadable records. After its first read, the
 * view reads the completed list only at every 30th resync, so the count
 * of skipped records must not drop to the active ones in between.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveInProcess } from './helpers/fake-terminal'
import { waitFor } from './helpers/http'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

/** How long the test watches the screen: at least three resyncs at the 1 s refresh rate. */
const WATCH_MS = 3_500

describe('live skipped records', () => {
  it('keeps the count between reads', { timeout: 30_000 }, async () => {
    await redis.client.hset('processors', 'web-1/1-0-1.0', JSON.stringify(activeRecord('a-1', '/readable')))
    await redis.client.hset('processors', 'web-1/1-0-1.1', '{"task_id": "cut off')
    await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/done', 200, 20)), 'not json at all')

    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('records skipped') ? true : undefined))
      const counts = new Set<string>()
      const until = Date.now() + WATCH_MS
      while (Date.now() < until) {
        const match = /(\d+) records? skipped/.exec(terminal.screen())
        counts.add(match?.[1] ?? 'none')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect([...counts]).toEqual(['2'])
    } finally {
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})
