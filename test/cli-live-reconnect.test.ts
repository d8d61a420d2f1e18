/**
 * `live` through two Redis outages, run in-process against a private
 * redis-server that is stopped and started again on the same port. The
 * subscriber's SUBSCRIBE is held back after each restart, so the reader's
 * own client is back, and its periodic read succeeds, before the update
 * stream is. Such a read must not close the gap: the gap is closed, and
 * reported, by the first read after the subscription.
 */
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveInProcess } from './helpers/fake-terminal'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Time from the stop of the server to its start, in ms. */
const OUTAGE_MS = 2_000
/** Delay of the subscriber's SUBSCRIBE after a restart, in ms. The view reads the tracker every 1 s meanwhile. */
const SUBSCRIBE_DELAY_MS = 2_500

let redis: TestRedis
let subscribeDelayMs = 0
const originalSubscribe = Redis.prototype.subscribe

beforeAll(async () => {
  redis = await startRedis()
  // Only the view's update stream subscribes in this process.
  Redis.prototype.subscribe = async function (this: Redis, ...args: Parameters<Redis['subscribe']>) {
    if (subscribeDelayMs > 0) await sleep(subscribeDelayMs)
    return originalSubscribe.apply(this, args)
  } as Redis['subscribe']
})

afterAll(async () => {
  Redis.prototype.subscribe = originalSubscribe
  await redis?.close()
})

describe('live across two Redis outages', () => {
  it('reports each gap from loss to subscription', { timeout: 40_000 }, async () => {
    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitUntil(() => terminal.screen().includes('Active HTTP requests'), 'the first frame', 15_000)

      const gaps: number[] = []
      for (let outage = 1; outage <= 2; outage++) {
        const stoppedMs = Date.now()
        await redis.stop()
        await waitUntil(() => terminal.screen().includes('Update stream lost'), 'the lost stream', 15_000)
        // The first reconnection's notice, still recent, gives way to the new loss.
        if (outage === 2) expect(terminal.screen()).not.toContain('Reconnected after a gap')
        await sleep(OUTAGE_MS - (Date.now() - stoppedMs))
        subscribeDelayMs = SUBSCRIBE_DELAY_MS
        await redis.start()

        await sleep(SUBSCRIBE_DELAY_MS)
        await waitUntil(() => !terminal.screen().includes('Update stream lost'), 'the stream back', 20_000)
        subscribeDelayMs = 0
        // The read that the subscription starts draws the notice within a refresh, or later on a loaded machine.
        await waitUntil(() => terminal.screen().includes('Reconnected after a gap'), 'the reconnection notice', 15_000)
        gaps.push(readNoticeGap(terminal.screen()))
      }

      // Each gap runs from the loss to the subscription, past the outage and the held-back SUBSCRIBE.
      const minimumGapSeconds = (OUTAGE_MS + SUBSCRIBE_DELAY_MS) / 1000
      expect(gaps[0], 'gap of the first outage').toBeGreaterThanOrEqual(minimumGapSeconds)
      expect(gaps[1], 'gap of the second outage').toBeGreaterThanOrEqual(minimumGapSeconds)
    } finally {
      subscribeDelayMs = 0
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})

/** Returns the gap in seconds of the reconnection notice on screen, or NaN without one. */
function readNoticeGap(screen: string): number {
  const gap = /Reconnected after a gap of (\d+\.\d+)s/.exec(screen)?.[1]
  return gap === undefined ? Number.NaN : Number(gap)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

async function waitUntil(check: () => boolean, description: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)
    await sleep(10)
  }
}
