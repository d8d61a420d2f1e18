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

/** Watches the screen for `WATCH_MS` and returns each "N records skipped (...)" note seen. */
async function watchSkippedNotes(screen: () => string): Promise<Set<string>> {
  const notes = new Set<string>()
  const until = Date.now() + WATCH_MS
  while (Date.now() < until) {
    notes.add(/\d+ records? skipped[^\n]*/.exec(screen())?.[0]?.trimEnd() ?? 'none')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return notes
}

describe('live skipped records', () => {
  it('keeps the count between reads', { timeout: 30_000 }, async () => {
    await redis.client.hset('processors', 'web-1/1-0-1.0', JSON.stringify(activeRecord('a-1', '/readable')))
    await redis.client.hset('processors', 'web-1/1-0-1.1', '{"task_id": "cut off')
    await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/done', 200, 20)), 'not json at all')

    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('records skipped') ? true : undefined))
      const notes = await watchSkippedNotes(() => terminal.screen())
      const counts = new Set([...notes].map((note) => /^\d+|none/.exec(note)?.[0]))
      expect([...counts]).toEqual(['2'])
    } finally {
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })

  it.each([
    ['processors', 'past_tasks'],
    ['past_tasks', 'processors'],
  ])('counts a wrong-type %s key once', { timeout: 30_000 }, async (wrongKey, otherKey) => {
    await redis.client.flushall()
    await redis.client.set(wrongKey, 'not a task store')
    if (otherKey === 'processors') {
      await redis.client.hset('processors', 'web-1/1-0-1.0', JSON.stringify(activeRecord('a-1', '/readable')))
    } else {
      await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/done', 200, 20)))
    }

    const { terminal, keyboard, exited } = startLiveInProcess(redis.url)
    try {
      await waitFor('the first frame', () => (terminal.screen().includes('skipped') ? true : undefined))
      const notes = await watchSkippedNotes(() => terminal.screen())
      expect([...notes]).toEqual([`1 record skipped (key ${wrongKey}: wrong key type)`])
    } finally {
      keyboard.emit('data', 'q')
      expect(await exited).toBe(0)
    }
  })
})
