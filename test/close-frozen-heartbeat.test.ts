/**
 * A Redis tracker closed while Redis is frozen (SIGSTOP) with a heartbeat
 * write in flight. Closing ends the connection, which fails that write
 * with "Connection is closed.". The close's own line reports what it gave
 * up on, so no line blames the heartbeat for the tracker's own close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import type { Heartbeat } from '../src/trackers/heartbeat'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PREFIX = 'h/1-0-1.'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  redis?.thaw()
  await redis?.close()
})

describe('close with a heartbeat in flight', () => {
  it('logs no heartbeat failure of its own making', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger })
    const heartbeat = { processor_id_prefix: PREFIX } as Heartbeat
    tracker.writeHeartbeat(heartbeat, 60_000)
    await waitFor('the first heartbeat', async () =>
      (await redis.client.exists(`heartbeat:${PREFIX}`)) === 1 ? true : undefined,
    )

    redis.freeze()
    try {
      tracker.writeHeartbeat(heartbeat, 60_000)
      tracker.recordStart(`${PREFIX}0`, JSON.stringify({ task_id: 'frozen', path: '/frozen' }))
      await tracker.close()
      await waitFor('the end of the connection', async () => (tracker.client.status === 'end' ? true : undefined), 20_000)
      // The rejection of the heartbeat write runs after the connection ends.
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      redis.thaw()
    }

    const messages = logger.lines.map((line) => line.message)
    expect(messages.some((message) => message.startsWith('redis tracker closed before'))).toBe(true)
    expect(messages.filter((message) => message.includes('heartbeat write failed'))).toEqual([])
  }, 30_000)
})
