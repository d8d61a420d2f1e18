/**
 * `live` starting while updates arrive. The view subscribes and reads
 * before it switches the terminal to its own screen, and no frame may be
 * written before that switch: it would stay in the terminal after `q`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveInProcess } from './helpers/fake-terminal'
import { waitFor } from './helpers/http'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const ENTER_ALTERNATE_SCREEN = '\x1b[?1049h'
/** Active records seeded, so that the first read takes long enough for updates to arrive during it. */
const SEEDED_RECORDS = 10_000
/** Updates published while the view starts, one a millisecond at most. */
const PUBLISHED_UPDATES = 1_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const fields: string[] = []
  for (let index = 0; index < SEEDED_RECORDS; index++) {
    fields.push(`web-1/1-0-1.${index}`, JSON.stringify(activeRecord(`seed-${index}`, `/seeded/${index}`)))
  }
  await redis.client.hset('processors', ...fields)
})

afterAll(async () => {
  await redis?.close()
})

describe('live startup', () => {
  it('writes no frame before its screen', { timeout: 30_000 }, async () => {
    let publishing = true
    const publisher = redis.client.duplicate()
    let sent = 0
    const published = (async () => {
      for (; publishing && sent < PUBLISHED_UPDATES; sent++) {
        await publisher.publish('task_updates', JSON.stringify(completedRecord(`/update/${sent}`, 200, 5)))
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    })()
    await waitFor('the first updates', () => (sent > 5 ? true : undefined))

    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('Active HTTP requests') ? true : undefined))
      expect(terminal.writes[0]?.startsWith(ENTER_ALTERNATE_SCREEN)).toBe(true)
    } finally {
      publishing = false
      await published
      publisher.disconnect()
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})
