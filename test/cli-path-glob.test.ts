/**
 * `web-top-cli recent --path` globs as a child process against a private
 * Redis, on paths with characters outside the Basic Multilingual Plane,
 * which UTF-16 stores as two code units: `?` and `*` count code points.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PATHS = ['/emoji/🎉', '/emoji/🎉🎉', '/emoji/ab', '/emoji/🎉🎉🎉🎉', '/emoji/🇩🇪']

/** A path that any client can send, on which a regular expression per glob backtracks for minutes. */
const LONG_PATH = `/${'a'.repeat(2_000)}`

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  for (const path of PATHS) await redis.client.lpush('past_tasks', JSON.stringify(completedRecord(path, 200, 5)))
  await redis.client.lpush('long:past_tasks', JSON.stringify(completedRecord(LONG_PATH, 200, 5)))
})

afterAll(async () => {
  await redis?.close()
})

describe('recent --path glob', () => {
  const cases: Array<[string, string[]]> = [
    ['/emoji/?', ['/emoji/🎉']],
    ['/emoji/??', ['/emoji/🇩🇪', '/emoji/ab', '/emoji/🎉🎉']],
    ['/emoji/????', ['/emoji/🎉🎉🎉🎉']],
    ['/emoji/🎉?', ['/emoji/🎉🎉']],
    ['/emoji/?🎉*', ['/emoji/🎉🎉🎉🎉', '/emoji/🎉🎉']],
    ['/emoji/*🎉', ['/emoji/🎉🎉🎉🎉', '/emoji/🎉🎉', '/emoji/🎉']],
  ]
  for (const [glob, expected] of cases) {
    it(`${glob} matches code points`, async () => {
      const result = await runCli(['recent', '--tracker-url', redis.url, '--json', '--path', glob])

      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      const paths = (JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path)
      expect(paths).toEqual(expected)
    })
  }
})

describe('recent --path glob on a long path', () => {
  it.each([
    ['*a*a*a*b', 0],
    ['/*a*a*a', 1],
    ['*a?a*a*', 1],
  ])('%s ends at once', async (glob, expectedCount) => {
    const startedAt = Date.now()
    const args = ['recent', '--tracker-url', redis.url, '--prefix', 'long:', '--json', '--path', glob]
    const result = await runCli(args, { timeoutMs: 10_000 })

    expect(Date.now() - startedAt).toBeLessThan(5_000)
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as HttpTask[]).length).toBe(expectedCount)
  })
})
