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

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  for (const path of PATHS) await redis.client.lpush('past_tasks', JSON.stringify(completedRecord(path, 200, 5)))
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
