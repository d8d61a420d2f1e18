/**
 * The built CLI's `recent` on a past_tasks list longer than the 10 000
 * records that it reads by default: the note on what it left out, and
 * `--limit` with a filter.
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

describe('recent without --limit', () => {
  const notice =
    'web-top-cli: showing the 10,000 most recent of 10,050 completed requests; pass --limit 10050 to read more\n'

  it('notes the unread requests under a table', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--mode', 'complete'])

    expect(result.code).toBe(0)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(RECENT_COMPLETED_LIMIT + 1)
    expect(result.stderr).toBe(notice)
  })

  it('notes the unread requests under JSON', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json'])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toHaveLength(RECENT_COMPLETED_LIMIT)
    expect(result.stderr).toBe(notice)
  })

  it('notes a filtered search of the newest requests', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json', '--path', '/limit/1*'])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe(
      'web-top-cli: searched the 10,000 most recent of 10,050 completed requests; pass --limit 10050 to read more\n',
    )
  })

  it('notes more requests without a total when LLEN is denied', async () => {
    await redis.client.acl('SETUSER', 'no-llen', 'reset', 'on', '>secret-pw', '~*', '&*', '+@all', '-llen')
    const url = `redis://no-llen:secret-pw@127.0.0.1:${redis.port}`

    const result = await runCli(['recent', '--tracker-url', url, '--json'])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toHaveLength(RECENT_COMPLETED_LIMIT)
    expect(result.stderr).toBe(
      'web-top-cli: showing the 10,000 most recent completed requests, and the tracker stores more; ' +
        'pass a --limit above 10000 to read more\n',
    )
  })

  it('prints no note when --limit reads every request', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json', '--limit', String(RECORD_COUNT)])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toHaveLength(RECORD_COUNT)
    expect(result.stderr).toBe('')
  })
})
