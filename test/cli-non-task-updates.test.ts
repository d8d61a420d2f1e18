/**
 * JSON objects on `task_updates` that are not task records, such as a
 * `{"type":"ping"}` that another program publishes on the channel, read by
 * the built `web-top-cli` from a private Redis. `live` (in a real
 * pseudo-terminal, tmux on a private socket) counts them in its status
 * line instead of showing an active row of dashes, and `tail` reports them
 * on stderr as it reports other unreadable messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli, startLiveSession } from './helpers/cli'
import { hasTmux } from './helpers/pty'
import { activeRecord, completedRecord, publishUntilPrinted } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-non-task-updates: the live test is skipped because tmux is not on PATH')

/** A message with no field of the task JSON. */
const PING = JSON.stringify({ type: 'ping' })
/** A message whose task fields are all null. */
const NULL_FIELDS = JSON.stringify({ task_id: null, path: null, kind: 'status' })
const REASON = 'JSON object with no task field set'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.hset('live:processors', 'web-1/4242-0-1.0', JSON.stringify(activeRecord('a-1', '/live/active')))
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live with non-task updates (needs tmux)', () => {
  it('counts them in the status line', { timeout: 30_000 }, async () => {
    const session = await startLiveSession(redis.url, (screen) => screen.includes('/live/active'), {
      TOP_TRACKER_PREFIX: 'live:',
    })
    try {
      await redis.client.publish('live:task_updates', PING)
      await redis.client.publish('live:task_updates', NULL_FIELDS)
      // The footer wraps between words, so the notice is read with its rows joined.
      const joinRows = (text: string) => text.replace(/\s+/g, ' ')
      // The view may draw a frame between the two messages, so the wait is for the count of both.
      const screen = await session.waitForScreen(
        (text) => joinRows(text).includes('2 messages on task_updates skipped'),
        15_000,
        'the notice of both messages',
      )
      const footer = joinRows(screen)

      // Each reason is listed once, so the second message is counted only.
      expect(footer).toContain(`2 messages on task_updates skipped (${REASON}; and 1 more)`)
      expect(screen).toMatch(/^Hosts \d+ {2}Processes \d+ {2}Active 1 {2}/m)
      expect(screen).toContain('Active HTTP requests (1)')
    } finally {
      session.kill()
    }
  })
})

describe('tail with non-task updates', () => {
  it('reports them on stderr', { timeout: 30_000 }, async () => {
    const tail = startCli(['tail', '--tracker-url', redis.url, '--prefix', 'tail:'])
    try {
      await publishUntilPrinted(redis.client, 'tail:task_updates', tail, completedRecord('/tail/first', 200, 20))
      await redis.client.publish('tail:task_updates', PING)
      await redis.client.publish('tail:task_updates', NULL_FIELDS)
      await publishUntilPrinted(redis.client, 'tail:task_updates', tail, completedRecord('/tail/after', 200, 20))

      const skipLines = tail
        .stderr()
        .split('\n')
        .filter((line) => line.includes('skipped'))
      expect(tail.stdout().trimEnd().split('\n')).toHaveLength(2)
      expect(skipLines).toEqual([
        `web-top-cli: skipped a message on the update stream that is not a task record (${REASON}); ` +
          'further ones are counted',
      ])
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })
})
