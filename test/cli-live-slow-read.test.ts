/**
 * `live` against a redis-server frozen with SIGSTOP: the read in flight
 * gets no reply, and the update stream stays connected but silent. The
 * view must say that its data is from the last read, and stop saying so
 * once Redis replies again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveInProcess } from './helpers/fake-terminal'
import { waitFor } from './helpers/http'
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
