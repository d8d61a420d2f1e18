/**
 * The completed rate of `web-top-cli live` in a real pseudo-terminal (tmux
 * on a private socket): no rate in the first second, and none from records
 * whose end precedes the span it covers. A private redis-server is
 * restarted without saving, and the test then sends the records that an
 * app would have kept during the outage, with end times inside it. The
 * restart also loses `last_cleared_at`, so the view starts its figures
 * anew, as after a clear, at the read that follows the reconnection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatIsoTime } from '../src/task/time'
import { startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-late-records: the tests are skipped because tmux is not on PATH')

/** Records sent after the restart, each with an end time inside the outage. */
const LATE_RECORDS = 300

/** Time from the stop of the server to its start, in ms. */
const OUTAGE_MS = 3_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.set('last_cleared_at', formatIsoTime(Date.now() - 120_000))
})

afterAll(async () => {
  await redis?.close()
})

/** Returns a completed record that ended at `endedMs` and took 5 ms. */
function lateRecord(index: number, endedMs: number): string {
  return JSON.stringify({
    task_id: `late-${index}`,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path: `/late/${index}`,
    started_at: formatIsoTime(endedMs - 5),
    ended_at: formatIsoTime(endedMs),
    status_code: 200,
  })
}

/** Returns the rate, count and span of the header's `Completed` meter. */
function readCompletedMeter(screen: string): { rate: number; count: number; seconds: number } {
  const match = /Completed ([\d.]+)\/s \((\d+) in (?:the last )?(\d+)s/.exec(screen)
  if (match === null) throw new Error(`no Completed meter on the screen:\n${screen}`)
  return { rate: Number(match[1]), count: Number(match[2]), seconds: Number(match[3]) }
}

describe.skipIf(!TMUX_AVAILABLE)('live rate after an outage (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed 0.00/s') && text.includes('q quit'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('leaves records that ended before the restart out of the rate', { timeout: 40_000 }, async () => {
    const stoppedMs = Date.now()
    await redis.stop()
    await session.waitForScreen((screen) => screen.includes('Update stream lost'), 15_000, 'the lost stream')
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS - (Date.now() - stoppedMs)))
    const startedMs = Date.now()
    await redis.start()
    await session.waitForScreen((screen) => screen.includes('Reconnected after a gap'), 20_000, 'the reconnection')

    // As the recorder does at the end of a request: push the record, then publish it.
    const pipeline = redis.client.pipeline()
    for (let index = 0; index < LATE_RECORDS; index++) {
      const endedMs = stoppedMs + ((startedMs - stoppedMs) * index) / LATE_RECORDS
      const record = lateRecord(index, endedMs)
      pipeline.lpush('past_tasks', record)
      pipeline.publish('task_updates', record)
    }
    await pipeline.exec()
    // The rate shows once the span it divides by reaches a second.
    const screen = await session.waitForScreen(
      (text) => text.includes(`Status 2xx ${LATE_RECORDS}`) && /Completed [\d.]+\/s/.test(text),
      15_000,
      'the late records in the status mix, and a rate',
    )

    // None of the late records ended in the span that the rate covers, which starts at the read after the restart.
    const meter = readCompletedMeter(screen)
    expect(meter.count, screen).toBe(0)
    expect(meter.rate, screen).toBe(0)
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live rate at start (needs tmux)', () => {
  it('shows no rate before a second is covered', { timeout: 20_000 }, async () => {
    // Under a prefix without records, coverage starts at the first read, so the first frame covers under a second.
    const headers: string[] = []
    const session = await startLiveSession(
      redis.url,
      (text) => {
        const header = text.split('\n').find((line) => line.startsWith('Hosts '))
        if (header !== undefined) headers.push(header)
        return /Completed [\d.]+\/s \(0 in 1s/.test(text)
      },
      { TOP_TRACKER_PREFIX: 'empty:' },
    )
    session.kill()

    expect(headers.filter((header) => / in 0s/.test(header)), headers.join('\n')).toEqual([])
    expect(headers[0]).toMatch(/Completed -\/s \(0 in under 1s; window 60s\)$/)
  })
})
