/**
 * Status codes and countries that no HTTP server sends, written by a broken
 * writer: `recent` and `tail` show them as `-` instead of printing them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

const LONG_COUNTRY = 'Q'.repeat(100)

let redis: TestRedis

/** Returns a completed record that ended a second ago, with a country header when given. */
function record(path: string, status: unknown, country?: string): string {
  const endedMs = Date.now() - 1_000
  return JSON.stringify({
    path,
    method: 'GET',
    started_at: new Date(endedMs - 50).toISOString(),
    ended_at: new Date(endedMs).toISOString(),
    status_code: status,
    request_headers: country === undefined ? [] : [['CF-IPCOUNTRY', country]],
  })
}

/** Returns the cells of the table row of `path`, split on the column gaps. */
function cellsOf(stdout: string, path: string): string[] | undefined {
  const rows = stdout.split('\n').map((line) => line.trimEnd().split(/\s{2,}/))
  return rows.find((cells) => cells.includes(path))
}

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush(
    'past_tasks',
    record('/negative', -5),
    record('/huge', 1e308),
    record('/eleven-digits', 99_999_999_999),
    record('/fraction', 200.5),
    record('/long-country', 200, LONG_COUNTRY),
    record('/finland', 404, 'FI'),
    record('/tor', 200, 'T1'),
  )
})

afterAll(async () => {
  await redis?.close()
})

describe('out-of-range values in recent', () => {
  it.each([
    ['/negative', '-5'],
    ['/huge', '1e+308'],
    ['/eleven-digits', '99999999999'],
    ['/fraction', '200.5'],
  ])('shows - for the status of %s', async (path, raw) => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path,Resp'])

    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain(raw)
    expect(cellsOf(result.stdout, path)).toEqual([path, '-'])
  })

  it('shows a valid status', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path,Resp'])

    expect(cellsOf(result.stdout, '/finland')).toEqual(['/finland', '404'])
  })

  it('shows - for a country that is no code', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Cty,Path'])

    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain('QQ')
    expect(cellsOf(result.stdout, '/long-country')).toEqual(['-', '/long-country'])
    expect(cellsOf(result.stdout, '/finland')).toEqual(['🇫🇮 FI', '/finland'])
    expect(cellsOf(result.stdout, '/tor')).toEqual(['T1', '/tor'])
    const widths = result.stdout.trimEnd().split('\n').map((line) => line.length)
    expect(Math.max(...widths)).toBeLessThan(30)
  })
})

describe('out-of-range values in tail', () => {
  it('shows - for the status', async () => {
    const tail = startCli(['tail', '--tracker-url', redis.url])
    try {
      const deadline = Date.now() + 10_000
      // Publishes until tail has subscribed and printed the line.
      while (!tail.stdout().includes('/tail-negative') && Date.now() < deadline) {
        await redis.client.publish('task_updates', record('/tail-negative', -5))
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      await tail.waitFor((stdout) => stdout.includes('/tail-negative'), 'the /tail-negative line')
    } finally {
      await tail.stop()
    }
    const line = tail.stdout().split('\n')[0] ?? ''
    const fields = line.split(/ +/)
    expect(fields[1]).toBe('-')
    expect(line).not.toContain('-5')
  })
})
