/**
 * The built CLI's `recent --limit` with a filter, on a past_tasks list
 * longer than the 10 000 records that a filtered read takes by default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RECENT_COMPLETED_LIMIT } from '../src/cli/recent'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

const RECORD_COUNT = RECENT_COMPLETED_LIMIT + 50

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const records: string[] = []
  for (let index = 0; index < RECORD_COUNT; index++) {
    records.push(JSON.stringify({ task_id: index, method: 'GET', path: `/limit/${index}`, status_code: 200 }))
  }
  await redis.client.rpush('past_tasks', ...records)
})

afterAll(async () => {
  await redis.close()
})

describe('recent --limit with a filter', () => {
  it('reads as many records as the limit', async () => {
    const result = await runCli([
      'recent',
      '--tracker-url',
      redis.url,
      '--json',
      '--method',
      'GET',
      '--limit',
      String(RECORD_COUNT),
    ])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const tasks = JSON.parse(result.stdout) as unknown[]
    expect(tasks).toHaveLength(RECORD_COUNT)
  })
})
