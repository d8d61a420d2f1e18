/**
 * Completed records whose end time is before their start time, as a clock
 * set back during the request writes them, read by the built `web-top-cli`
 * from a private Redis. `recent`, `tail` and `live` (in a real
 * pseudo-terminal, tmux on a private socket) show the duration as unknown,
 * `-`, instead of a 0 that looks like a fast request. `check --max-p99`
 * fails when no request of its window has a duration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { runCli, startCli, startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { activeRecord, publishUntilPrinted } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { activeTableLines, completedLinesOf, durationOf } from './helpers/screen-tables'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-end-before-start: the live tests are skipped because tmux is not on PATH')

/** Start time of every record. */
const STARTED_MS = Date.now() - 5_000

const BACKWARD_PATH = '/backward'
const TIMED_PATH = '/timed'
/** A completed record that ends 4 s before it starts. */
const BACKWARD = completedRecord(BACKWARD_PATH, STARTED_MS - 4_000)
/** Another completed record that ends before it starts, 1 s before. */
const BACKWARD_TOO = { ...completedRecord(BACKWARD_PATH, STARTED_MS - 1_000), task_id: 'backward-too' }
/** A completed record that ends 0.25 s after it starts. */
const TIMED = completedRecord(TIMED_PATH, STARTED_MS + 250)

/** Paths of the records under the prefix `sort:`, which live sorts by Duration. */
const SLOW_PATH = '/slow'
const ACTIVE_LONG_PATH = '/active-long'
const ACTIVE_SHORT_PATH = '/active-short'
const ACTIVE_UNKNOWN_PATH = '/active-unknown'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush('past_tasks', JSON.stringify(BACKWARD), JSON.stringify(TIMED))
  await redis.client.rpush('backward:past_tasks', JSON.stringify(BACKWARD), JSON.stringify(BACKWARD_TOO))

  const slow = completedRecord(SLOW_PATH, STARTED_MS + 1_500)
  await redis.client.rpush('sort:past_tasks', ...[BACKWARD, TIMED, slow].map((task) => JSON.stringify(task)))
  const active: Array<[string, string]> = [
    [ACTIVE_LONG_PATH, formatIsoTime(STARTED_MS - 2_000)],
    [ACTIVE_SHORT_PATH, formatIsoTime(STARTED_MS + 4_000)],
    [ACTIVE_UNKNOWN_PATH, 'not a time'],
  ]
  for (const [index, [path, startedAt]] of active.entries()) {
    const task = { ...activeRecord(`active-${index}`, path), started_at: startedAt }
    await redis.client.hset('sort:processors', `web-1/4242-0-1.${index}`, JSON.stringify(task))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe('recent with an end before the start', () => {
  it('shows an unknown duration', async () => {
    const result = await runCli(['recent', '--columns', 'Path,Duration'], { env: { TOP_TRACKER_URL: redis.url } })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)

    const lines = result.stdout.trimEnd().split('\n')
    expect(durationOf(lines, BACKWARD_PATH)).toBe('-')
    expect(durationOf(lines, TIMED_PATH)).toBe('250ms')
  })
})

describe('tail with an end before the start', () => {
  it('prints an unknown duration', async () => {
    const tail = startCli(['tail'], { TOP_TRACKER_URL: redis.url })
    try {
      await publishUntilPrinted(redis.client, 'task_updates', tail, BACKWARD)
      await publishUntilPrinted(redis.client, 'task_updates', tail, TIMED)
    } finally {
      await tail.stop()
    }
    const lines = tail.stdout().trimEnd().split('\n')
    // Fields: end time, status, duration, method, path, ...
    const backward = lines.find((line) => line.includes(` ${BACKWARD_PATH} `))?.split(/ +/)
    const timed = lines.find((line) => line.includes(` ${TIMED_PATH} `))?.split(/ +/)
    expect(backward?.[2]).toBe('-')
    expect(timed?.[2]).toBe('250ms')
  })
})

describe('check --max-p99 with an end before the start', () => {
  it('fails when no request has a duration', async () => {
    const result = await runCli(['check', '--max-p99', '100ms', '--prefix', 'backward:'], {
      env: { TOP_TRACKER_URL: redis.url },
    })

    expect(result.code).toBe(1)
    // The oldest record ended about 9 s ago, so the line goes on with how far the completed requests read go back.
    expect(result.stdout).toMatch(
      /^FAIL: p99 unknown \(max 100ms\): no request of the 2 in the window has a known duration, as when a clock is set back during a request; 2 requests in the last 60s /,
    )
    expect(result.stderr).toBe('')
  })

  it('judges the requests that have one', async () => {
    const result = await runCli(['check', '--max-p99', '100ms'], { env: { TOP_TRACKER_URL: redis.url } })

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAIL: p99 25\dms \(max 100ms\); 2 requests in the last 60s /)
  })

  it('passes without completed requests', async () => {
    const result = await runCli(['check', '--max-p99', '100ms', '--prefix', 'empty:'], {
      env: { TOP_TRACKER_URL: redis.url },
    })

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: 0 stalled, 5xx -, p99 -; 0 requests in the last 60s\n$/)
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live with an end before the start (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (2)'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('shows an unknown duration', () => {
    const lines = completedLinesOf(session.capture())
    expect(durationOf(lines, BACKWARD_PATH)).toBe('-')
    expect(durationOf(lines, TIMED_PATH)).toBe('250ms')
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live sorted by Duration with unknown durations (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (3)'), {
      TOP_TRACKER_PREFIX: 'sort:',
    })
  })

  afterAll(() => {
    session?.kill()
  })

  it('lists unknown durations last', async () => {
    session.sendKeys('s')
    const screen = await session.waitForScreen((text) => countSortTitles(text, 'Duration') === 2, 15_000, 'the Duration sort')

    expect(pathOrder(activeTableLines(screen), ACTIVE_PATHS)).toEqual([ACTIVE_LONG_PATH, ACTIVE_SHORT_PATH, ACTIVE_UNKNOWN_PATH])
    expect(pathOrder(completedLinesOf(screen), COMPLETED_PATHS)).toEqual([SLOW_PATH, TIMED_PATH, BACKWARD_PATH])
  })

  it('lists unknown durations last when reversed', async () => {
    session.sendKeys('r')
    const screen = await session.waitForScreen(
      (text) => countSortTitles(text, 'Duration (reversed)') === 2,
      15_000,
      'the reversed Duration sort',
    )

    expect(pathOrder(activeTableLines(screen), ACTIVE_PATHS)).toEqual([ACTIVE_SHORT_PATH, ACTIVE_LONG_PATH, ACTIVE_UNKNOWN_PATH])
    expect(pathOrder(completedLinesOf(screen), COMPLETED_PATHS)).toEqual([TIMED_PATH, SLOW_PATH, BACKWARD_PATH])
  })
})

const ACTIVE_PATHS = [ACTIVE_LONG_PATH, ACTIVE_SHORT_PATH, ACTIVE_UNKNOWN_PATH]
const COMPLETED_PATHS = [SLOW_PATH, TIMED_PATH, BACKWARD_PATH]

/** Counts the table titles on a screen that end with "sorted by `sort`". */
function countSortTitles(screen: string, sort: string): number {
  return screen.split('\n').filter((line) => line.trimEnd().endsWith(`sorted by ${sort}`)).length
}

/** Returns the `paths` that the table lines show, in the order of their rows. */
function pathOrder(lines: readonly string[], paths: readonly string[]): string[] {
  const rowOf = (path: string) => lines.findIndex((line) => line.includes(`${path} `))
  return paths.filter((path) => rowOf(path) >= 0).sort((a, b) => rowOf(a) - rowOf(b))
}

/** Builds a completed record of `path` that started at `STARTED_MS` and ended at `endedMs`. */
function completedRecord(path: string, endedMs: number): HttpTask {
  return {
    task_id: path,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path,
    started_at: formatIsoTime(STARTED_MS),
    ended_at: formatIsoTime(endedMs),
    recorded_successfully: true,
    status_code: 200,
  }
}
