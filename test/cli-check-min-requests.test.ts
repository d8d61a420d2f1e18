/**
 * `check --min-requests` through the built CLI against a real Redis: a
 * window with fewer completed requests fails, so a probe notices an app
 * that records nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush(
    'shop:past_tasks',
    JSON.stringify(completedRecord('/orders/1', 200, 20)),
    JSON.stringify(completedRecord('/orders/2', 200, 30)),
  )
})

afterAll(async () => {
  await redis?.close()
})

/** Runs `check` on the test Redis with `args`. */
function check(...args: string[]) {
  return runCli(['check', '--tracker-url', redis.url, ...args])
}

describe('check --min-requests', () => {
  it('fails a prefix without requests', async () => {
    const result = await check('--prefix', 'nothing:', '--max-error-rate', '1%', '--max-p99', '100', '--min-requests', '1')

    expect(result.code).toBe(1)
    expect(result.stdout).toBe('FAIL: too few requests (min 1); 0 requests in the last 60s\n')
    expect(result.stderr).toContain('no app has recorded under the key prefix "nothing:"')
  })

  it('fails a window with fewer requests', async () => {
    const result = await check('--prefix', 'shop:', '--min-requests', '3')

    expect(result.code).toBe(1)
    // Both records ended within the last seconds, so the line also states how far back they go.
    expect(result.stdout).toMatch(/^FAIL: too few requests \(min 3\); 2 requests in the last 60s \(the completed/)
  })

  it('passes a window with enough requests', async () => {
    const result = await check('--prefix', 'shop:', '--min-requests', '2')

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: 0 stalled, 5xx [^,]+, p99 [^;]+; 2 requests in the last 60s/)
  })

  it('keeps passing an empty window without it', async () => {
    const result = await check('--prefix', 'nothing:', '--max-error-rate', '1%', '--max-p99', '100')

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('OK: 0 stalled, 5xx -, p99 -; 0 requests in the last 60s\n')
  })

  it('names other broken limits too', async () => {
    const result = await check('--prefix', 'shop:', '--min-requests', '5', '--max-p99', '1')

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAIL: p99 [^;]+ \(max [^)]+\); too few requests \(min 5\); 2 requests in the last 60s/)
  })

  it.each(['-1', '1.5', 'many'])('rejects %s', async (value) => {
    const result = await check('--min-requests', value)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`option '--min-requests <n>' argument '${value}' is invalid.`)
  })
})
