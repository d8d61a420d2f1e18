/**
 * The repair of `processors` when the active records or a burst of ends
 * outgrow `maxPendingBytes`, or Redis rejects the ends, against a real
 * redis-server. Ends dropped for the budget or rejected leave no finished
 * request listed, without a further write.
 * A restart that lost the data gets back active records larger than the
 * budget.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** The smallest budget that web-top allows without a warning. */
const BUDGET = 16 * 1024

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

/** Returns a record of about 2 KB, so that 8 of them are more than the budget. */
function record(index: number, ended: boolean): string {
  return JSON.stringify({ task_id: `t${index}`, path: `/held/${index}`, ended_at: ended ? '2026-12-06T00:00:00+00:00' : null, padding: 'x'.repeat(2_000) })
}

/** Starts `count` requests, one flush each, so that no start meets a full budget. */
async function startHeld(tracker: RedisTracker, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    tracker.recordStart(`h/1-0-1.${index}`, record(index, false))
    await tracker.flush()
  }
}

describe('repair past the byte budget', () => {
  it('removes ends dropped in a burst', async () => {
    const tracker = new RedisTracker({ url: redis.url, maxPendingBytes: BUDGET })
    try {
      await startHeld(tracker, 200)
      expect(await redis.client.hlen('processors')).toBe(200)

      // All 200 end in one turn: the budget takes a few, and drops the
      // others, whose deletes then no longer fit beside the ends it took.
      // No flush() follows, as an app calls none: the tracker repairs on its own.
      for (let index = 0; index < 200; index++) tracker.recordEnd(`h/1-0-1.${index}`, record(index, true))
      expect(tracker.stats().dropped).toBeGreaterThan(150)

      await waitFor('an empty processors hash', async () => ((await redis.client.hlen('processors')) === 0 ? true : undefined))
      expect(await redis.client.llen('past_tasks')).toBe(200 - tracker.stats().dropped)
    } finally {
      await tracker.close()
    }
  })

  it('removes ends that Redis rejected', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    try {
      await startHeld(tracker, 20)
      await redis.client.config('SET', 'maxmemory', '1')
      try {
        for (let index = 0; index < 20; index++) tracker.recordEnd(`h/1-0-1.${index}`, record(index, true))
        await waitFor('the rejected ends', async () => (tracker.stats().dropped === 20 ? true : undefined))
      } finally {
        await redis.client.config('SET', 'maxmemory', '0')
      }

      await waitFor('an empty processors hash', async () => ((await redis.client.hlen('processors')) === 0 ? true : undefined))
    } finally {
      await tracker.close()
    }
  })

  it('restores active records past the budget', async () => {
    const tracker = new RedisTracker({ url: redis.url, maxPendingBytes: BUDGET })
    try {
      await startHeld(tracker, 20)
      await redis.stop()
      await redis.start()

      await waitFor('the 20 active records', async () => ((await redis.client.hlen('processors')) === 20 ? true : undefined))
      const stored = await redis.client.hget('processors', 'h/1-0-1.7')
      expect(JSON.parse(stored ?? '{}')).toMatchObject({ task_id: 't7', path: '/held/7' })
    } finally {
      await tracker.close()
    }
  })
})
