/**
 * The layout of `web-top-cli live` on small screens, in a real
 * pseudo-terminal (tmux on a private socket) against a private
 * redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { activeRecord, completedRecord, recorderStartText } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-layout: the tests are skipped because tmux is not on PATH')

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  for (let index = 1; index <= 3; index++) {
    const task = activeRecord(`active-${index}`, `/active/${index}`)
    await redis.client.hset('processors', `web-1/4242-0-active-${index}`, recorderStartText(task))
  }
  for (let index = 1; index <= 3; index++) {
    await redis.client.lpush('past_tasks', JSON.stringify(completedRecord(`/done/${index}`, 200, 5)))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live layout (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (3)'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('shows request rows on a 20x6 screen', async () => {
    session.resize(20, 6)
    try {
      const screen = await session.waitForScreen(
        (text) => text.split('\n').some((line) => line.startsWith('STALLED')),
        3_000,
        'an active request row',
      )
      const lines = screen.split('\n')
      expect(lines[1]).toMatch(/^Active HTTP request/)
      expect(lines.filter((line) => line.startsWith('STALLED'))).toHaveLength(2)
      expect(screen).not.toContain('Completed HTTP')
    } finally {
      session.resize(120, 30)
    }
  })
})
