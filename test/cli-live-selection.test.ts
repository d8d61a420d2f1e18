/**
 * The row selection of `web-top-cli live` in a real pseudo-terminal (tmux
 * on a private socket) against a private Redis: Up selects the top row,
 * the status line shows the selection, and the help names the key that
 * clears it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { startLiveSession } from './helpers/cli'
import { findSelectedRow, hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-selection: the terminal tests are skipped because tmux is not on PATH')

const SELECTION_NOTICE = 'Row selected, Esc to follow new requests'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  // More completed requests than the table has rows, /sel/1 the newest.
  for (let index = 1; index <= 40; index++) {
    await redis.client.rpush('past_tasks', JSON.stringify(completedRecord(index)))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live selection (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (40'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('Up selects the top row', async () => {
    session.sendKeys('Up')
    await session.waitForScreen(() => findSelectedRow(session) !== '', 15_000, 'a selected row')
    expect(findSelectedRow(session)).toMatch(/\/sel\/1 /)
  })

  it('status line shows the selection', async () => {
    const screen = await session.waitForScreen((text) => text.includes(SELECTION_NOTICE), 15_000, 'the notice')
    expect(screen.trimEnd().split('\n').at(-2)).toContain(SELECTION_NOTICE)
  })

  it('Esc clears the selection and notice', async () => {
    session.sendKeys('Escape')
    // The notice and the highlight go in one frame, and the wait is for both, so that a capture
    // taken while that frame is being drawn is not read as the result.
    const screen = await session.waitForScreen(
      (text) => !text.includes(SELECTION_NOTICE) && findSelectedRow(session) === '',
      15_000,
      'no notice and no selected row',
    )
    expect(findSelectedRow(session)).toBe('')
    expect(screen).toContain('/sel/1 ')
  })

  it('help names the key that clears it', async () => {
    session.sendKeys('?')
    const screen = await session.waitForScreen((text) => text.includes('Press any other key'), 15_000, 'the help')
    expect(screen).toMatch(/^ +Esc +clear the selection, so that the tables follow new requests again/m)
    session.sendKeys('x')
    await session.waitForScreen((text) => text.includes('Completed HTTP responses'), 15_000, 'the tables')
  })
})

function completedRecord(index: number): HttpTask {
  const endedMs = Date.now() - index * 1_000
  return {
    task_id: `sel-${index}`,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path: `/sel/${index}`,
    started_at: formatIsoTime(endedMs - 20),
    ended_at: formatIsoTime(endedMs),
    recorded_successfully: true,
    status_code: 200,
  }
}
