/**
 * The `/` filter of `web-top-cli live` in a real pseudo-terminal (tmux on a
 * private socket): a status class or range, as `--status` takes them,
 * selects the completed requests with a matching status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLiveSession } from './helpers/cli'
import { hasTmux, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-status-filter: the tests are skipped because tmux is not on PATH')

let redis: TestRedis

/** Returns a completed record that ended a second ago, with its own task id so that live keeps each. */
function record(path: string, status: number): string {
  const endedMs = Date.now() - 1_000
  return JSON.stringify({
    task_id: path,
    path,
    method: 'GET',
    started_at: new Date(endedMs - 50).toISOString(),
    ended_at: new Date(endedMs).toISOString(),
    status_code: status,
  })
}

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush(
    'past_tasks',
    record('/internal-error', 500),
    record('/unavailable', 503),
    record('/ok', 200),
    record('/missing', 404),
  )
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live status filter (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (4)') && text.includes('q quit'))
  })

  afterAll(() => {
    session?.kill()
  })

  /** Applies `text` as the filter and returns the screen once `title` shows. */
  async function applyFilter(text: string, title: string): Promise<string> {
    session.sendKeys('/')
    session.type(text)
    session.sendKeys('Enter')
    try {
      return await session.waitForScreen(
        (screen) => screen.includes(`Filter: ${text}`) && screen.includes(title),
        15_000,
        `the filter ${text}`,
      )
    } finally {
      session.sendKeys('Escape')
      await session.waitForScreen(
        (screen) => screen.includes('Completed HTTP responses (4)'),
        15_000,
        'the filter cleared',
      )
    }
  }

  it('filters by status class', async () => {
    const screen = await applyFilter('5xx', 'Completed HTTP responses (2 of 4)')

    expect(screen).toContain('/internal-error')
    expect(screen).toContain('/unavailable')
    expect(screen).not.toContain('/ok')
    expect(screen).not.toContain('/missing')
  })

  it('filters by status range', async () => {
    const screen = await applyFilter('400-499', 'Completed HTTP responses (1 of 4)')

    expect(screen).toContain('/missing')
    expect(screen).not.toContain('/internal-error')
  })

  it('filters by status code', async () => {
    const screen = await applyFilter('500', 'Completed HTTP responses (1 of 4)')

    expect(screen).toContain('/internal-error')
    expect(screen).not.toContain('/unavailable')
  })
})
