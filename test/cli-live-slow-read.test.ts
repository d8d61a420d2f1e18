/**
 * `live` against a redis-server frozen with SIGSTOP: the read in flight
 * gets no reply, and the update stream stays connected but silent. The
 * view must say that its data is from the last read, and stop saying so
 * once Redis replies again. A read that timed out stays on screen only
 * until the next update shows that Redis replies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { startLiveInProcess } from './helpers/fake-terminal'
import { waitFor } from './helpers/http'
import { activeRecord, recorderStartText } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const SLOW_READ = /No reply to a read for (\d+(?:\.\d+)?)s; showing the data of the last read/

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  redis?.thaw()
  await redis?.close()
})

describe('live with a frozen Redis', () => {
  it('says the data is from the last read', { timeout: 30_000 }, async () => {
    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('Active HTTP requests') ? true : undefined))
      expect(terminal.screen()).not.toMatch(SLOW_READ)

      redis.freeze()
      try {
        const notice = await waitFor('the slow read notice', () => SLOW_READ.exec(terminal.screen()) ?? undefined, 10_000)
        const waited = Number(notice[1])
        expect(waited).toBeGreaterThanOrEqual(3)
      } finally {
        redis.thaw()
      }

      await waitFor('the notice to go', () => (SLOW_READ.test(terminal.screen()) ? undefined : true), 10_000)
      expect(terminal.screen()).toContain('Active HTTP requests')
    } finally {
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})

describe('live after a failed read', () => {
  it('reads again on the next update', { timeout: 30_000 }, async () => {
    // Reads every 3 s, so a notice gone within 1.5 s of the thaw was cleared by the update.
    const { terminal, keyboard, exited } = startLiveInProcess(redis.url, 3)
    const writer = new RedisTracker({ url: redis.url })
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('Active HTTP requests') ? true : undefined))
      redis.freeze()
      try {
        // The read times out after 5 s, and the next one is due 3 s after that.
        await waitFor('the read failure', () => (terminal.screen().includes('Reads failing') ? true : undefined), 15_000)
      } finally {
        redis.thaw()
      }

      writer.recordStart('web-1/111-0-1.0', recorderStartText(activeRecord('fresh-1', '/fresh')))
      await writer.flush()
      await waitFor('the notice to go', () => (terminal.screen().includes('Reads failing') ? undefined : true), 1_500)
      expect(terminal.screen()).toContain('/fresh')
    } finally {
      await writer.close()
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})
