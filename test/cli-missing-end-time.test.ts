/**
 * Completed records without an end time, read by the built `web-top-cli`
 * from a private Redis: `recent` and `live` (in a real pseudo-terminal,
 * tmux on a private socket) show their duration as unknown instead of one
 * that grows with the clock, and sort them after the known durations.
 * `recent --json` prints them as stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { runCli, startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { completedLinesOf, durationOf } from './helpers/screen-tables'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-missing-end-time: the live tests are skipped because tmux is not on PATH')

/** Start time of every record: long enough ago that a duration counted from it shows. */
const STARTED_MS = Date.now() - 5_000

/** Paths of the completed records in `past_tasks` that have no end time. */
const NULL_END_PATH = '/end-null'
const ABSENT_END_PATH = '/end-absent'
/** Path of a completed record with an end time, 0.25 s after its start. */
const TIMED_PATH = '/timed'
/** Path of an end event, published on the update stream only, without an end time. */
const EVENT_PATH = '/end-event'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  // Neither record has `recorded_successfully`, so the reader can learn
  // that the request ended only from its place in `past_tasks`.
  const nullEnd: HttpTask = { ...completedRecord(NULL_END_PATH), ended_at: null }
  const absentEnd = completedRecord(ABSENT_END_PATH)
  const timed: HttpTask = { ...completedRecord(TIMED_PATH), ended_at: formatIsoTime(STARTED_MS + 250) }
  await redis.client.rpush('past_tasks', JSON.stringify(nullEnd), JSON.stringify(absentEnd), JSON.stringify(timed))
})

afterAll(async () => {
  await redis?.close()
})

describe('recent with missing end times', () => {
  it('shows unknown durations', async () => {
    const result = await runCli(['recent', '--columns', 'Path,Duration'], { env: { TOP_TRACKER_URL: redis.url } })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)

    const lines = result.stdout.trimEnd().split('\n')
    expect(durationOf(lines, NULL_END_PATH)).toBe('-')
    expect(durationOf(lines, ABSENT_END_PATH)).toBe('-')
    expect(durationOf(lines, TIMED_PATH)).toBe('250ms')
  })

  it('leaves them out of --min-duration', async () => {
    const result = await runCli(['recent', '--columns', 'Path,Duration', '--min-duration', '100ms'], {
      env: { TOP_TRACKER_URL: redis.url },
    })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(TIMED_PATH)
    expect(result.stdout).not.toContain(NULL_END_PATH)
    expect(result.stdout).not.toContain(ABSENT_END_PATH)
  })

  it('prints the records as stored with --json', async () => {
    const result = await runCli(['recent', '--json'], { env: { TOP_TRACKER_URL: redis.url } })
    expect(result.code).toBe(0)

    const records = JSON.parse(result.stdout) as HttpTask[]
    const nullEnd = records.find((task) => task.path === NULL_END_PATH)
    const absentEnd = records.find((task) => task.path === ABSENT_END_PATH)
    expect(nullEnd).toHaveProperty('ended_at', null)
    expect(absentEnd).toBeDefined()
    expect(absentEnd).not.toHaveProperty('ended_at')
    expect(absentEnd).not.toHaveProperty('recorded_successfully')
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live with missing end times (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (3)'))
    // An end event whose writer left out the end time but set `recorded_successfully`.
    const event: HttpTask = { ...completedRecord(EVENT_PATH), recorded_successfully: true }
    await redis.client.publish('task_updates', JSON.stringify(event))
    await session.waitForScreen((text) => text.includes(EVENT_PATH), 15_000, 'the end event')
  })

  afterAll(() => {
    session?.kill()
  })

  it('keeps unknown durations across frames', async () => {
    const first = completedLinesOf(session.capture())
    // The view redraws at least once a second, so a duration that counted
    // from the start time would change between these two frames.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const second = completedLinesOf(session.capture())

    for (const [index, lines] of [first, second].entries()) {
      expect(durationOf(lines, NULL_END_PATH), `frame ${index}`).toBe('-')
      expect(durationOf(lines, ABSENT_END_PATH), `frame ${index}`).toBe('-')
      expect(durationOf(lines, EVENT_PATH), `frame ${index}`).toBe('-')
      expect(durationOf(lines, TIMED_PATH), `frame ${index}`).toBe('250ms')
    }
  })

  it('lists the end event as completed', () => {
    const screen = session.capture()
    expect(screen).toContain('Active HTTP requests (0)')
    expect(completedLinesOf(screen).some((line) => line.includes(EVENT_PATH))).toBe(true)
  })

  it('sorts unknown durations last', async () => {
    session.sendKeys('s')
    const screen = await session.waitForScreen((text) => text.includes('sorted by Duration'), 15_000, 'the Duration order')
    const paths = completedLinesOf(screen)
      .slice(1)
      .map((line) => /\/[\w-]+/.exec(line)?.[0])
    expect(paths[0]).toBe(TIMED_PATH)
    expect(paths.slice(1).sort()).toEqual([ABSENT_END_PATH, EVENT_PATH, NULL_END_PATH])
  })
})

/** Builds a completed record of `path` that started at `STARTED_MS`, without an end time. */
function completedRecord(path: string): HttpTask {
  return {
    task_id: path,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path,
    started_at: formatIsoTime(STARTED_MS),
    status_code: 200,
  }
}
