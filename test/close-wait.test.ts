/**
 * What `close()` does with the records it waits for: it sends again the
 * batches Redis rejects without running them, within its 2 s wait.
 * Whatever it gives up on is counted in `dropped` and logged with its
 * count, so written plus dropped equals the records handed to the tracker.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { blockRedis } from './helpers/busy-redis'
import { captureLogger, type LogLine } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Milliseconds a script runs before Redis replies BUSY to other clients. */
const BUSY_AFTER_MS = 100

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis(['--busy-reply-threshold', String(BUSY_AFTER_MS)])
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

const isClosingLine = (line: LogLine) => line.message.startsWith('redis tracker closed before')

function taskJson(id: number): string {
  return JSON.stringify({ processor_id: `p${id}`, path: `/t${id}` })
}

describe('close while Redis replies BUSY', () => {
  it('sends the rejected records again within its wait', async () => {
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0 })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const blocked = await blockRedis(redis.url, 800)
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      await tracker.close({ waitMs: 3_000 })
      const stats = tracker.stats()

      expect(stats.written).toBe(7)
      expect(stats.dropped).toBe(0)
      expect(stats.pendingBytes).toBe(0)
      expect(await redis.client.llen('past_tasks')).toBe(6)
    } finally {
      await blocked.done
      blocked.client.disconnect()
    }
  })

  it('logs the records it gives up on', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0, logger })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const blocked = await blockRedis(redis.url, 3_000)
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      await tracker.close({ waitMs: 500 })
      const stats = tracker.stats()

      expect(stats.written).toBe(1)
      expect(stats.dropped).toBe(6)
      expect(stats.pendingBytes).toBe(0)
      const closing = logger.lines.filter(isClosingLine)
      expect(closing).toHaveLength(1)
      expect(closing[0]?.fields.records).toBe(6)
    } finally {
      await blocked.done
      blocked.client.disconnect()
    }
  })
})

describe('close while its connection is killed', () => {
  it('logs the records lost with it', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0, logger })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const connectionId = await tracker.client.client('ID')
    // CLIENT PAUSE WRITE keeps the batch unanswered until the kill.
    await redis.client.client('PAUSE', 3_000, 'WRITE')
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      const killing = new Promise((resolve) => setTimeout(resolve, 300)).then(() =>
        redis.client.client('KILL', 'ID', String(connectionId)),
      )
      await tracker.close({ waitMs: 2_000 })
      await killing
      const stats = tracker.stats()

      expect(stats.written).toBe(1)
      expect(stats.dropped).toBe(6)
      expect(stats.pendingBytes).toBe(0)
      const counted = logger.lines.filter((line) => line.message.startsWith('task records dropped'))
      expect(counted.map((line) => line.fields.dropped)).toEqual([6])
    } finally {
      await redis.client.client('UNPAUSE')
    }
  })
})
