/**
 * `web-top-cli check`, `recent` and `live` against data that a health probe
 * must not trust: keys of the wrong type, records that cannot be decoded,
 * times far ahead of the clock and dates out of range.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime, MAX_CLOCK_SKEW_MS } from '../src/task/time'
import { runCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let sequence = 0

/** Writes records to `<prefix>past_tasks`, as JSON text or as given. */
async function pushPastTasks(prefix: string, records: Array<HttpTask | string>): Promise<void> {
  const texts = records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record)))
  await redis.client.rpush(`${prefix}past_tasks`, ...texts)
}

/** Returns the rows of a piped `recent` table as arrays of cells. */
function tableRows(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((row) => row.trim().split(/ {2,}/))
}

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

describe('check on unreadable data', () => {
  beforeAll(async () => {
    await redis.client.set('strings:processors', 'not a hash')
    await redis.client.set('strings:past_tasks', 'not a list')

    await redis.client.set('onekey:processors', 'not a hash')
    await pushPastTasks('onekey:', [completedRecord('/fine', 200, 100)])

    await pushPastTasks('mixed:', [
      completedRecord('/a', 200, 100),
      '{"method": "GET", "path": ',
      completedRecord('/b', 200, 200),
      '[1, 2, 3]',
      completedRecord('/c', 200, 300),
    ])

    await pushPastTasks('garbage:', ['not json', 'null', '42'])

    await redis.client.set('manybad:processors', 'not a hash')
    await pushPastTasks('manybad:', [completedRecord('/fine', 200, 100), ...Array.from({ length: 7 }, () => 'not json')])
  })

  it('fails when both keys have the wrong type', async () => {
    const args = ['--tracker-url', redis.url, '--prefix', 'strings:']
    const check = await runCli(['check', ...args, '--max-p99', '1s'])
    const recent = await runCli(['recent', ...args])

    expect(check.code).toBe(1)
    expect(check.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(check.stdout).toMatch(/^FAIL: /)
    expect(check.stdout).toContain('cannot read key strings:processors: wrong key type')
    expect(check.stdout).toContain('cannot read key strings:past_tasks: wrong key type')
    expect(check.stdout).toContain('2 records skipped')
    expect(check.stdout).not.toMatch(/^OK/)
    expect(recent.stderr).toBe(
      'web-top-cli: 2 records skipped (key strings:processors: wrong key type; key strings:past_tasks: wrong key type)\n',
    )
    expect(check.stderr).toBe(recent.stderr)
  })

  it('fails when one key has the wrong type', async () => {
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'onekey:'])
    expect(check.code).toBe(1)
    expect(check.stdout).toMatch(/^FAIL: cannot read key onekey:processors: wrong key type; /)
    expect(check.stdout).toContain('1 request in the last 60s')
    expect(check.stderr).toBe('web-top-cli: 1 record skipped (key onekey:processors: wrong key type)\n')
  })

  it('fails on a wrong-type key behind many unreadable records', async () => {
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'manybad:'])
    expect(check.code).toBe(1)
    expect(check.stdout).toMatch(/^FAIL: cannot read key manybad:processors: wrong key type; /)
    expect(check.stdout).toContain('8 records skipped')
    expect(check.stderr).toMatch(/^web-top-cli: 8 records skipped \(key manybad:processors: wrong key type; completed task/)
  })

  it('judges the readable records among skipped ones', async () => {
    const args = ['--tracker-url', redis.url, '--prefix', 'mixed:']
    const check = await runCli(['check', ...args, '--max-p99', '1s'])
    const recent = await runCli(['recent', ...args])

    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/^OK: 0 stalled, 5xx 0\.0%, p99 (29\d|30\d)ms; 3 requests in the last 60s/)
    expect(check.stdout.trimEnd()).toMatch(/; 2 records skipped$/)
    expect(check.stderr).toMatch(/^web-top-cli: 2 records skipped \(/)
    expect(check.stderr).toBe(recent.stderr)
  })

  it('still fails a broken limit among skipped records', async () => {
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'mixed:', '--max-p99', '250'])
    expect(check.code).toBe(1)
    expect(check.stdout).toMatch(/^FAIL: p99 (29\d|30\d)ms \(max 250ms\); 3 requests in the last 60s.*; 2 records skipped\n$/)
  })

  it('fails when no record is readable', async () => {
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'garbage:'])
    expect(check.code).toBe(1)
    expect(check.stdout).toBe('FAIL: no readable record; 0 requests in the last 60s; 3 records skipped\n')
    expect(check.stderr).toMatch(/^web-top-cli: 3 records skipped \(/)
  })

  it('prints nothing on stderr for clean data', async () => {
    await pushPastTasks('clean:', [completedRecord('/clean', 200, 100)])
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'clean:'])
    expect(check.code).toBe(0)
    expect(check.stderr).toBe('')
    expect(check.stdout).not.toContain('skipped')
  })
})

describe('times ahead of the clock', () => {
  beforeAll(async () => {
    const nowMs = Date.now()
    const ahead = (path: string, endedAheadMs: number): HttpTask => ({
      task_id: `ahead-${++sequence}`,
      started_at: formatIsoTime(nowMs - 1_000),
      ended_at: formatIsoTime(nowMs + endedAheadMs),
      method: 'GET',
      path,
      status_code: 200,
    })
    await pushPastTasks('future:', [
      completedRecord('/now-1', 200, 100),
      completedRecord('/now-2', 200, 120),
      { ...ahead('/year-2099', 0), ended_at: '2099-01-01T00:00:00.000000+00:00' },
      ahead('/beyond-skew', MAX_CLOCK_SKEW_MS + 60_000),
      ahead('/within-skew', MAX_CLOCK_SKEW_MS - 60_000),
      { ...completedRecord('/starts-2099', 200, 100), started_at: '2099-01-01T00:00:00Z' },
    ])
  })

  it('leaves ends beyond the skew out of check', async () => {
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'future:'])
    expect(check.code).toBe(0)
    // /now-1, /now-2, /within-skew and /starts-2099 (counted, with no duration).
    expect(check.stdout).toMatch(/^OK: 0 stalled, 5xx 0\.0%, p99 \S+; 4 requests in the last 60s/)
    // /within-skew runs from 1 s ago to one minute short of the skew ahead.
    const [, minutes, seconds] = /p99 (\d+)m(\d\d)s/.exec(check.stdout) ?? []
    const p99Ms = (Number(minutes) * 60 + Number(seconds)) * 1000
    expect(p99Ms).toBeGreaterThan((MAX_CLOCK_SKEW_MS - 60_000) * 0.99)
    expect(p99Ms).toBeLessThan((MAX_CLOCK_SKEW_MS - 60_000 + 2_000) * 1.01)
  })

  it('passes a p99 limit that the 2099 record broke', async () => {
    await pushPastTasks('year2099:', [
      completedRecord('/now', 200, 100),
      {
        ...completedRecord('/year-2099', 200, 0),
        started_at: formatIsoTime(Date.now() - 500),
        ended_at: '2099-01-01T00:00:00.000000+00:00',
      },
    ])
    const check = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'year2099:', '--max-p99', '1s'])
    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/^OK: 0 stalled, 5xx 0\.0%, p99 (99\.\d|10\d)ms; 1 request in the last 60s/)
  })

  it('shows - for durations and ages ahead of the clock in recent', async () => {
    const args = ['--tracker-url', redis.url, '--prefix', 'future:', '--columns', 'Path,Duration,Ago']
    const result = await runCli(['recent', ...args])
    expect(result.code).toBe(0)
    const rows = Object.fromEntries(tableRows(result.stdout).map(([path, ...cells]) => [path, cells]))
    expect(rows['/year-2099']).toEqual(['-', '-'])
    expect(rows['/beyond-skew']).toEqual(['-', '-'])
    expect(rows['/starts-2099']?.[0]).toBe('-')
    expect(rows['/within-skew']?.[0]).toMatch(/^\dm\d\ds$/)
    expect(rows['/now-1']).toEqual(['100ms', expect.stringMatching(/^\d\.\d\ds$/)])
  })

  it('leaves ends far ahead out of the live meters', async () => {
    const result = await runCli(['live', '--tracker-url', redis.url, '--prefix', 'future:', '--refresh-rate', '0.5'], {
      interruptWhen: (stdout) => /^Hosts /m.test(stdout),
    })
    const header = result.stdout.split('\n').find((line) => line.startsWith('Hosts '))
    expect(header).toMatch(/Completed \d+\.\d+\/s \(4 in /)
  })
})

describe('dates out of range', () => {
  it.each([
    ['month 13, day 45, 99:99:99', '2026-13-45T99:99:99Z'],
    ['30 February', '2026-02-30T10:00:00Z'],
    ['hour 24', '2026-12-04T24:00:00Z'],
    ['a leap second', '2026-12-31T23:59:60Z'],
    ['an offset of 24 hours', '2026-12-04T10:00:00+24:00'],
  ])('shows - for %s in recent', async (_case, startedAt) => {
    const prefix = `dates-${++sequence}:`
    await pushPastTasks(prefix, [{ ...completedRecord('/odd-date', 200, 100), started_at: startedAt }])
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', prefix, '--columns', 'Path,Duration'])
    expect(result.code).toBe(0)
    expect(tableRows(result.stdout)).toEqual([['/odd-date', '-']])
  })
})

describe('check naming stalled requests', () => {
  beforeAll(async () => {
    const longPath = `/long/${'x'.repeat(5_000)}`
    await redis.client.hset('stalled:processors', {
      'pid:1 tid:1': JSON.stringify({ task_id: 'no-start', method: 'GET', path: '/no-start' }),
      'pid:1 tid:2': JSON.stringify({ task_id: 'bad-start', method: 'GET', path: '/bad-start', started_at: 'garbage' }),
      'pid:1 tid:3': JSON.stringify({
        task_id: 'long',
        method: 'GET',
        path: longPath,
        started_at: formatIsoTime(Date.now() - 60_000),
      }),
    })
  })

  it('names an unknown running time and cuts long paths', async () => {
    const check = await runCli(
      ['check', '--prefix', 'stalled:', '--max-stalled', '0', '--stall-after', '0'],
      { env: { TOP_TRACKER_URL: redis.url } },
    )

    expect(check.code).toBe(1)
    const line = check.stdout.trimEnd()
    expect(line.split('\n')).toHaveLength(1)
    expect(line).toContain('GET /no-start for an unknown time')
    expect(line).toContain('GET /bad-start for an unknown time')
    expect(line).toMatch(new RegExp(`GET /long/${'x'.repeat(114)}… for 1m0\\ds`))
    expect(line).not.toContain('undefined')
    expect(line.length).toBeLessThan(500)
  })

  it('cuts a long path before an emoji, not inside it', async () => {
    await redis.client.hset('stalledemoji:processors', {
      'pid:1 tid:1': JSON.stringify({
        task_id: 'emoji',
        method: 'GET',
        path: `/e/${'x'.repeat(116)}😀😀`,
        started_at: formatIsoTime(Date.now() - 30_000),
      }),
    })
    const check = await runCli(['check', '--prefix', 'stalledemoji:', '--max-stalled', '0', '--stall-after', '0'], {
      env: { TOP_TRACKER_URL: redis.url },
    })

    // 119 characters and the whole first emoji would make 121, so the cut comes before the emoji.
    expect(check.stdout).toContain(`GET /e/${'x'.repeat(116)}… for`)
    expect(check.stdout).not.toContain('\ufffd')
    expect(check.stdout).not.toContain('�')
  })
})

describe('check --max-p99 at the limit', () => {
  beforeAll(async () => {
    await pushPastTasks('atlimit:', Array.from({ length: 50 }, () => completedRecord('/two', 200, 2)))
    await pushPastTasks('overlimit:', Array.from({ length: 50 }, () => completedRecord('/second', 200, 1_000)))
    await pushPastTasks('nearlimit:', Array.from({ length: 50 }, () => completedRecord('/near', 200, 2.009)))
  })

  it('passes requests that took exactly the limit', async () => {
    const check = await runCli(['check', '--prefix', 'atlimit:', '--max-p99', '2ms'], { env: { TOP_TRACKER_URL: redis.url } })

    expect(check.stdout).toMatch(/^OK: .*p99 2\.00ms; 50 requests in the last 60s/)
    expect(check.code).toBe(0)
  })

  it('prints a p99 and a limit that look equal to the microsecond', async () => {
    const check = await runCli(['check', '--prefix', 'nearlimit:', '--max-p99', '2.001ms'], {
      env: { TOP_TRACKER_URL: redis.url },
    })

    // 2.009 ms and 2.001 ms both print as 2.00ms when cut to the display's digits.
    expect(check.stdout).toMatch(/^FAIL: p99 2\.009ms \(max 2\.001ms\)/)
    expect(check.code).toBe(1)
  })

  it('fails requests just over the limit', async () => {
    const check = await runCli(['check', '--prefix', 'overlimit:', '--max-p99', '999ms'], {
      env: { TOP_TRACKER_URL: redis.url },
    })

    expect(check.stdout).toMatch(/^FAIL: p99 1\.00s \(max 999ms\)/)
    expect(check.code).toBe(1)
  })
})
