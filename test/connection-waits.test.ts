/**
 * Many calls that wait at once for the tracker's connection, as reads and
 * server closes do while Redis is frozen or down. They share one `ready`
 * listener on the client, and overlapping suspends close the connection
 * once, so Node prints no MaxListenersExceededWarning for a client that the
 * app may have passed in.
 */
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** More waits than Node's default of 10 listeners per event, past which it warns. */
const WAITS = 25

/** Max listeners of one event on the client: ioredis's, the tracker's and the waits' shared one. */
const MAX_LISTENERS = 3

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** Collects the warnings that the process emits until the returned function stops it. */
function captureWarnings(): { warnings: Error[]; stop: () => void } {
  const warnings: Error[] = []
  const onWarning = (warning: Error) => warnings.push(warning)
  process.on('warning', onWarning)
  return { warnings, stop: () => process.off('warning', onWarning) }
}

function leakWarnings(warnings: Error[]): Error[] {
  return warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')
}

/** Waits for the warnings of the listeners added so far, which Node emits on the next tick. */
async function waitForWarnings(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('concurrent reads while Redis is frozen', () => {
  it('share one ready listener on a given client', async () => {
    redis.freeze()
    let frozen = true
    const capture = captureWarnings()
    // The TCP connection opens, but the ready check gets no reply until the thaw.
    const client = new Redis(redis.url)
    client.on('error', () => {})
    const tracker = new RedisTracker({ client, logger: captureLogger() })
    try {
      const connected = () => (client.status === 'connect' ? true : undefined)
      await waitFor('the connection to the frozen Redis', connected, 15_000)
      const listenersBefore = client.listenerCount('ready')
      // allSettled handles every rejection, so that a failed check leaves no unhandled one behind.
      const reads = Promise.allSettled(Array.from({ length: WAITS }, () => tracker.read()))
      await waitForWarnings()

      expect(leakWarnings(capture.warnings)).toEqual([])
      expect(client.listenerCount('ready')).toBeLessThanOrEqual(MAX_LISTENERS)
      expect(client.listenerCount('close')).toBeLessThanOrEqual(MAX_LISTENERS)

      redis.thaw()
      frozen = false
      const outcomes = await reads
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([])
      expect(outcomes).toHaveLength(WAITS)
      // The waits remove their listener once the last of them ends.
      // ioredis's own one-time listener is gone too.
      expect(client.listenerCount('ready')).toBeLessThanOrEqual(listenersBefore)
    } finally {
      if (frozen) redis.thaw()
      capture.stop()
      await tracker.close()
      client.disconnect()
    }
  })
})

describe('concurrent suspends while Redis is down', () => {
  it('add no listener per call', async () => {
    const down = await startRedis()
    await down.stop()
    const capture = captureWarnings()
    const tracker = new RedisTracker({ url: down.url, logger: captureLogger() })
    tracker.client.on('error', () => {})
    let maxReadyListeners = 0
    const sampler = setInterval(() => {
      maxReadyListeners = Math.max(maxReadyListeners, tracker.client.listenerCount('ready'))
    }, 5)
    try {
      for (let id = 1; id <= WAITS; id++) {
        tracker.recordEnd(`p${id}`, JSON.stringify({ processor_id: `p${id}` }))
      }
      // As a test suite does that closes many servers at once: each close
      // suspends the tracker, which waits up to 2 s.
      await Promise.all(Array.from({ length: WAITS }, () => tracker.suspend()))
      await waitForWarnings()

      expect(leakWarnings(capture.warnings)).toEqual([])
      expect(maxReadyListeners).toBeLessThanOrEqual(MAX_LISTENERS)
      expect(tracker.stats()).toMatchObject({ dropped: WAITS, pendingBytes: 0 })
    } finally {
      clearInterval(sampler)
      capture.stop()
      await tracker.close()
      await down.close()
    }
  })
})
