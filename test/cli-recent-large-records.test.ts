/**
 * `recent --limit` over a completed list of large records, read by the
 * built CLI from a private Redis: the process exits as soon as it printed,
 * and an unreadable record past the limit does not push out a readable one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const MIB = 1024 * 1024

/** Returns `task` as JSON text grown by a tag to at least `bytes` bytes. */
function padRecord(task: HttpTask, bytes: number): string {
  return JSON.stringify({ ...task, tags: { pad: 'x'.repeat(bytes) } })
}

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  // Oldest first: LPUSH leaves the newest record, /large/newest, at index 0.
  for (let index = 0; index < 5; index++) {
    await redis.client.lpush('large:past_tasks', padRecord(completedRecord(`/large/big-${index}`, 200, 20), MIB))
  }
  await redis.client.lpush('large:past_tasks', JSON.stringify(completedRecord('/large/newest', 200, 20)))

  // Over a --max-record-size of 700 bytes: an active record and the 3 newest completed ones.
  await redis.client.hset('sized:processors', 'web-1-4242-0', padRecord(activeRecord('sized-1', '/sized/active'), 1_000))
  await redis.client.rpush('sized:past_tasks', JSON.stringify(completedRecord('/sized/older', 200, 20)))
  for (let index = 0; index < 3; index++) {
    await redis.client.lpush('sized:past_tasks', padRecord(completedRecord(`/sized/big-${index}`, 200, 20), 1_000))
  }
}, 30_000)

afterAll(async () => {
  await redis?.close()
})

describe('recent --limit over large records', () => {
  it('exits as soon as it printed', async () => {
    const startedAt = Date.now()
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'large:', '--limit', '2'])
    const elapsedMs = Date.now() - startedAt

    // redis-parser shrinks its buffer pool on an interval for about 2 s
    // after reading the 1 MiB records, which kept the process up until then.
    // With two CPU burners on a 2-core machine the whole run took 408 to 837 ms.
    expect(elapsedMs).toBeLessThan(2_000)
    expect(result.code).toBe(0)
  })

  it('keeps the readable record when the extra one is skipped', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'large:', '--limit', '2'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/large/newest')
    expect(result.stderr).toContain('1 record skipped (completed task at index 1: record of 1.0 MiB')
    expect(result.stderr).not.toContain('index 2')
    expect(result.stderr).toContain(
      'read the 2 most recent of 6 completed requests and skipped 1 of them, so 1 is shown; pass --limit 6 to read more',
    )
  })

  it('keeps the readable record at --limit 1', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'large:', '--limit', '1'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/large/newest')
    expect(result.stderr).not.toContain('skipped')
  })

  it('prints the same rows as JSON', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'large:', '--limit', '2', '--json'])

    expect(result.code).toBe(0)
    const paths = (JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path)
    expect(paths).toEqual(['/large/newest'])
  })
})

describe('recent --limit with skipped records', () => {
  const args = (limit: string) => [
    'recent',
    '--tracker-url',
    redis.url,
    '--prefix',
    'sized:',
    '--max-record-size',
    '700',
    '--columns',
    'Path,Resp',
    '--limit',
    limit,
  ]

  it('claims no row that it did not print', async () => {
    const result = await runCli(args('3'))

    expect(result.code).toBe(0)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('4 records skipped (')
    expect(result.stderr).toContain(
      'web-top-cli: read the 3 most recent of 4 completed requests and skipped 3 of them, so 0 are shown; ' +
        'pass --limit 4 to read more\n',
    )
    expect(result.stderr).not.toContain('showing the 3')
  })

  it('prints the readable row at the --limit it advises', async () => {
    const result = await runCli(args('4'))

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/sized/older')
    expect(result.stderr).not.toContain('to read more')
  })
})
