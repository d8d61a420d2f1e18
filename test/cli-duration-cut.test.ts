/**
 * Durations near the edges of their printed forms, read by the built
 * `web-top-cli recent` from a private Redis: the Duration column cuts the
 * digits it does not show instead of rounding, so a row never shows more
 * than `--min-duration` lets through. Durations and `--min-duration` are
 * both counted in whole microseconds, so `2.007s`, which is
 * 2007.0000000000002 ms as a double, keeps a request of 2007 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { durationOf } from './helpers/screen-tables'

/** A whole second a minute ago, where every record starts. */
const STARTED_SECOND_MS = Math.floor(Date.now() / 1000) * 1000 - 60_000

/** Path of each record, and how long after `STARTED_SECOND_MS` it ended, in microseconds. */
const RECORDS = [
  ['/under-10ms', 9_996],
  ['/at-10ms', 10_000],
  ['/under-100ms', 99_960],
  ['/under-1s', 999_600],
  ['/under-2007ms', 2_006_999],
  ['/at-2007ms', 2_007_000],
  ['/under-1500ms', 1_499_600],
  ['/under-1m', 59_960_000],
] as const

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const records = RECORDS.map(([path, endedAfterUs]) => JSON.stringify(completedRecord(path, endedAfterUs)))
  await redis.client.rpush('past_tasks', ...records)
})

afterAll(async () => {
  await redis?.close()
})

describe('recent durations at the edges of their forms', () => {
  it('cuts the digits it does not show', async () => {
    const lines = await readDurationTable([])

    expect(durationOf(lines, '/under-10ms')).toBe('9.99ms')
    expect(durationOf(lines, '/at-10ms')).toBe('10.0ms')
    expect(durationOf(lines, '/under-100ms')).toBe('99.9ms')
    expect(durationOf(lines, '/under-1s')).toBe('999ms')
    expect(durationOf(lines, '/at-2007ms')).toBe('2.00s')
    expect(durationOf(lines, '/under-1500ms')).toBe('1.49s')
    expect(durationOf(lines, '/under-1m')).toBe('59.9s')
  })

  it.each([
    ['10ms', '/under-10ms', '/at-10ms'],
    ['2.007s', '/under-2007ms', '/at-2007ms'],
    ['1.5s', '/under-1500ms', '/under-1m'],
  ])('agrees with --min-duration %s', async (minDuration, leftOut, kept) => {
    const lines = await readDurationTable(['--min-duration', minDuration])

    expect(lines.some((line) => line.includes(`${leftOut} `))).toBe(false)
    expect(lines.some((line) => line.includes(`${kept} `))).toBe(true)
  })

  it('leaves out a duration just under a minute for --min-duration 1m', async () => {
    const result = await runCli(['recent', '--json', '--min-duration', '1m'], { env: { TOP_TRACKER_URL: redis.url } })
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual([])
  })
})

/** Runs `recent` with the Path and Duration columns and returns its lines. */
async function readDurationTable(options: readonly string[]): Promise<string[]> {
  const result = await runCli(['recent', '--columns', 'Path,Duration', ...options], {
    env: { TOP_TRACKER_URL: redis.url },
  })
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return result.stdout.trimEnd().split('\n')
}

/** Builds a completed record of `path` that took `endedAfterUs` microseconds, with microsecond times. */
function completedRecord(path: string, endedAfterUs: number): HttpTask {
  return {
    task_id: path,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path,
    started_at: isoWithMicroseconds(STARTED_SECOND_MS, 0),
    ended_at: isoWithMicroseconds(STARTED_SECOND_MS, endedAfterUs),
    recorded_successfully: true,
    status_code: 200,
  }
}

/** Formats `secondMs` plus `afterUs` microseconds as the Python tracker does: six digits and `+00:00`. */
function isoWithMicroseconds(secondMs: number, afterUs: number): string {
  const wholeSeconds = new Date(secondMs + Math.floor(afterUs / 1_000_000) * 1000).toISOString().slice(0, 19)
  const fraction = String(afterUs % 1_000_000).padStart(6, '0')
  return `${wholeSeconds}.${fraction}+00:00`
}
