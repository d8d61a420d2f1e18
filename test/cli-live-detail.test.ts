/**
 * The detail pane of `web-top-cli live` in a real pseudo-terminal (tmux on
 * a private socket) against a private Redis: opened on an active request,
 * it shows each newer copy of the record and the completed record once the
 * request ends. Its header names a completed request's end time that is
 * unreadable, missing or in the future. Home and End jump to the top and
 * the bottom of a record longer than the screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { startLiveSession } from './helpers/cli'
import { CLI_VARIABLES, CLI_PATH } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-detail: the tests are skipped because tmux is not on PATH')

const PROCESSOR_ID = 'web-1/42-0-1.1'
const STARTED_MS = Date.now() - 3_000

let redis: TestRedis
let writer: RedisTracker

/** Returns the record of the one request of this test, at `stage`, ended with `status` when given. */
function record(stage: string, status?: number): HttpTask {
  return {
    task_id: 'upload-1',
    method: 'POST',
    path: '/upload',
    started_at: formatIsoTime(STARTED_MS),
    ended_at: status === undefined ? null : formatIsoTime(Date.now()),
    tags: { stage },
    ...(status === undefined ? {} : { status_code: status }),
  }
}

/** Request headers of a completed record under the prefix `long:`, more than a 30-row screen shows. */
const LONG_HEADERS: Array<[string, string]> = Array.from({ length: 40 }, (_, index) => [`X-Header-${index}`, `value-${index}`])

/** Completed records under the prefix `odd:`, with the header each should get. */
const ODD_END_TIMES: Array<[string, unknown, RegExp]> = [
  ['/unreadable-end', 'x', /^GET \/unreadable-end {2}\(ended at an unreadable time\)$/m],
  ['/missing-end', null, /^GET \/missing-end {2}\(completed, end time unknown\)$/m],
  ['/future-end', '2999-01-01T00:00:00.000Z', /^GET \/future-end {2}\(end time is in the future\)$/m],
]

beforeAll(async () => {
  redis = await startRedis()
  writer = new RedisTracker({ url: redis.url })
  writer.recordStart(PROCESSOR_ID, JSON.stringify(record('receiving')))
  await writer.flush()
  for (const [path, endedAt] of ODD_END_TIMES) {
    const task = { task_id: path, method: 'GET', path, started_at: formatIsoTime(STARTED_MS), ended_at: endedAt, status_code: 200 }
    await redis.client.rpush('odd:past_tasks', JSON.stringify(task))
  }
  const long = {
    task_id: 'long-1',
    method: 'GET',
    path: '/long',
    started_at: formatIsoTime(STARTED_MS),
    ended_at: formatIsoTime(STARTED_MS + 5),
    status_code: 200,
    request_headers: LONG_HEADERS,
  }
  await redis.client.rpush('long:past_tasks', JSON.stringify(long))
})

afterAll(async () => {
  await writer?.close()
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live detail pane (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('/upload') && text.includes('q quit'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('follows the request until it ends', async () => {
    // With no row selected, Enter opens the first one: the only active request.
    session.sendKeys('Enter')
    let screen = await session.waitForScreen((text) => text.includes('Repeat with curl'), 15_000, 'the detail pane')
    expect(screen).toMatch(/^POST \/upload {2}\(active for \S+\)$/m)
    expect(screen).toContain('  stage: receiving')

    writer.recordStart(PROCESSOR_ID, JSON.stringify(record('processing')))
    await writer.flush()
    screen = await session.waitForScreen((text) => text.includes('  stage: processing'), 15_000, 'the newer record')
    expect(screen).toMatch(/^POST \/upload {2}\(active for \S+\)$/m)
    expect(screen).toContain('  ended_at: null')

    writer.recordEnd(PROCESSOR_ID, JSON.stringify(record('done', 201)))
    await writer.flush()
    screen = await session.waitForScreen((text) => text.includes('  stage: done'), 15_000, 'the completed record')
    expect(screen).toMatch(/^POST \/upload {2}\(took \S+, ended \S+ ago\)$/m)
    expect(screen).toContain('  status_code: 201')
    expect(screen).not.toContain('  ended_at: null')

    // Esc goes back to the tables, with the completed row still selected.
    session.sendKeys('Escape')
    screen = await session.waitForScreen((text) => text.includes('Active HTTP requests (0)'), 15_000, 'the tables')
    // The selected row is the one in reverse video (SGR 7), below the title, which is always reversed.
    const selected = session
      .captureWithColours()
      .split('\n')
      .slice(1)
      .find((line) => /\x1b\[(?:[\d;]*;)?7m/.test(line))
    expect(selected).toContain('/upload')
    expect(selected).toContain('201')
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live detail header (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = TmuxSession.start({
      width: 120,
      height: 30,
      env: { TOP_TRACKER_URL: redis.url, TOP_TRACKER_PREFIX: 'odd:' },
      unset: CLI_VARIABLES,
    })
    await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    await session.waitForScreen((text) => text.includes('Completed HTTP responses (3)'), 10_000, 'the live view')
  })

  afterAll(() => {
    session?.kill()
  })

  it('names odd end times', async () => {
    for (const [index, [path, , header]] of ODD_END_TIMES.entries()) {
      // The filter leaves one row, and Enter opens the first row.
      session.sendKeys('/')
      session.type(path)
      session.sendKeys('Enter')
      await session.waitForScreen((text) => text.includes('Completed HTTP responses (1 of 3)'), 15_000, `the row of ${path}`)
      session.sendKeys('Enter')
      const screen = await session.waitForScreen((text) => text.includes(`path: ${path}`), 15_000, `the record of ${path}`)
      expect(screen, `record ${index}`).toMatch(header)
      expect(screen).not.toContain('undefined')
      // Esc closes the pane, then clears the selection, then the filter.
      session.sendKeys('Escape', 'Escape', 'Escape')
      await session.waitForScreen((text) => text.includes('Completed HTTP responses (3)'), 15_000, 'every row')
    }
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live detail scrolling (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (1)'), {
      TOP_TRACKER_PREFIX: 'long:',
    })
  })

  afterAll(() => {
    session?.kill()
  })

  it('jumps to the bottom and top on End and Home', async () => {
    const top = /^GET \/long {2}\(took /m
    session.sendKeys('Enter')
    let screen = await session.waitForScreen((text) => top.test(text), 15_000, 'the top of the record')
    expect(screen).not.toContain('Repeat with curl')

    session.sendKeys('End')
    screen = await session.waitForScreen((text) => text.includes('Repeat with curl'), 15_000, 'the bottom of the record')
    expect(screen).toContain('X-Header-39: value-39')
    expect(screen).not.toMatch(top)

    session.sendKeys('Home')
    screen = await session.waitForScreen((text) => top.test(text), 15_000, 'the top of the record again')
    expect(screen).not.toContain('Repeat with curl')
    expect(screen.trimEnd().split('\n').at(-1)).toBe('Esc close  ↑↓ PgUp PgDn Home End scroll  q quit')
    session.sendKeys('Escape')
  })
})
