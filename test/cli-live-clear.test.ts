/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * while `web-top-cli clear` empties a private Redis. The view drops what
 * ended before the clear, and keeps the requests that ended after it, which
 * the update stream brings before the view's next read finds the clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { runCli, startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-clear: the terminal tests are skipped because tmux is not on PATH')

const REQUESTS_AFTER_CLEAR = 5

let redis: TestRedis
let writer: RedisTracker

beforeAll(async () => {
  redis = await startRedis()
  writer = new RedisTracker({ url: redis.url })
})

afterAll(async () => {
  await writer?.close()
  await redis?.close()
})

function completedRecord(path: string): HttpTask {
  const endedMs = Date.now()
  return {
    task_id: `clear-${path}`,
    host_name: 'web-1',
    process_id: 4242,
    thread_id: 0,
    started_at: formatIsoTime(endedMs - 5),
    updated_at: formatIsoTime(endedMs),
    ended_at: formatIsoTime(endedMs),
    recorded_successfully: true,
    method: 'GET',
    path,
    status_code: 200,
  }
}

describe.skipIf(!TMUX_AVAILABLE)('live during a clear (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterAll(() => {
    session?.kill()
  })

  it('keeps the requests that ended after the clear', async () => {
    writer.recordEnd('p-before', JSON.stringify(completedRecord('/before')))
    await writer.flush()
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (1)'))

    const cleared = await runCli(['clear', '--tracker-url', redis.url, '--yes'])
    expect(cleared.code).toBe(0)
    for (let index = 1; index <= REQUESTS_AFTER_CLEAR; index++) {
      writer.recordEnd(`p-after-${index}`, JSON.stringify(completedRecord(`/after-${index}`)))
    }
    await writer.flush()

    // Two reads at least, at the view's refresh rate of 1 s.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const screen = await session.waitForScreen(
      (text) => text.includes(`Completed HTTP responses (${REQUESTS_AFTER_CLEAR})`),
      15_000,
      'the requests that ended after the clear',
    )
    expect(screen).not.toContain('/before')
    expect(screen).toMatch(new RegExp(`Completed [\\d.]+/s \\(${REQUESTS_AFTER_CLEAR} in `))
  })
})
