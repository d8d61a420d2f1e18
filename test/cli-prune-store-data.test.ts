/**
 * `web-top-cli prune` as a child process against a private Redis that
 * contains data of other programs. A `past_tasks` or `processors` key of the wrong
 * type makes prune fail, name the key and change nothing. Records of
 * another writer whose params hold a `tags` key, or whose `tags` is null,
 * get the outcome tag in their own `tags`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { runCli } from './helpers/cli'
import { recorderStartText } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Processor id prefix of a recorder listed in `heartbeats` without a heartbeat key, so stopped. */
const STOPPED = 'h/1-0-1.'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

beforeEach(async () => {
  await redis.client.flushdb()
})

/** Encodes an active record in the recorder's layout. Values in `fields` may be of any JSON type. */
function start(path: string, fields: Record<string, unknown> = {}): string {
  const task = { task_id: path, started_at: formatIsoTime(Date.now() - 1_000), method: 'GET', path, ...fields }
  return recorderStartText(task as HttpTask)
}

/**
 * Encodes an active record of another writer: the recorder's fields up to
 * `recorded_successfully`, then `members` in their order.
 */
function foreignStart(path: string, members: Record<string, unknown>): string {
  const startedAt = formatIsoTime(Date.now() - 1_000)
  const head = JSON.stringify({ task_id: path, started_at: startedAt, updated_at: startedAt })
  const tail = JSON.stringify({ recorded_successfully: null, method: 'GET', path, ...members })
  return `${head.slice(0, -1)},"ended_at":null,${tail.slice(1)}`
}

/** Everything prune may change: the three keys it writes. */
async function readKeys(): Promise<unknown> {
  return {
    processors: await redis.client.hgetall('processors'),
    heartbeats: await redis.client.smembers('heartbeats'),
    pastTasks: await redis.client.type('past_tasks'),
  }
}

function wrongTypeMessage(key: string, actual: string, expected: string): string {
  return (
    `web-top-cli: Cannot prune the tracker at ${redis.url}: the key "${key}" is a ${actual}, not a ${expected} ` +
    '(WRONGTYPE); check the --prefix value, or delete that key if no other program uses it\n'
  )
}

describe('prune with a key of the wrong type', () => {
  it('changes nothing when past_tasks is not a list', async () => {
    await redis.client.sadd('heartbeats', STOPPED)
    await redis.client.hset('processors', `${STOPPED}0`, start('/orphan'))
    await redis.client.set('past_tasks', 'not a list')
    const before = await readKeys()

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(await readKeys()).toEqual(before)
    expect(await redis.client.get('past_tasks')).toBe('not a list')
    expect(result.stderr).toBe(wrongTypeMessage('past_tasks', 'string', 'list'))
    expect(result.stdout).toBe('')
    expect(result.code).toBe(1)
  })

  it('keeps the heartbeat list when processors is not a hash', async () => {
    await redis.client.sadd('heartbeats', STOPPED)
    await redis.client.set('processors', 'not a hash')

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.stderr).toBe(wrongTypeMessage('processors', 'string', 'hash'))
    expect(result.code).toBe(1)
    expect(await redis.client.smembers('heartbeats')).toEqual([STOPPED])
    expect(await redis.client.get('processors')).toBe('not a hash')
  })
})

describe('prune of records from another writer', () => {
  it('tags the record, not a tags key nested in it', async () => {
    await redis.client.sadd('heartbeats', STOPPED)
    await redis.client.hset('processors', {
      [`${STOPPED}1`]: foreignStart('/params-tags', { params: { tags: { a: '1' } }, tags: { 'service.name': 'api' } }),
      [`${STOPPED}2`]: foreignStart('/params-tags-only', { params: { tags: '1' } }),
      [`${STOPPED}3`]: foreignStart('/null-tags', { tags: null }),
      [`${STOPPED}4`]: start('/params-updated-at', { params: { updated_at: '1' }, tags: { k: 'v' } }),
      [`${STOPPED}5`]: start('/recorder', { params: { q: ['a', 'b'] }, tags: { k: 'v' } }),
    })

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')[1]).toBe(
      '5 tasks moved to the completed tasks as ended by cleanup ' +
        '(recorded_successfully false, tag web_top.outcome: process_stopped)',
    )
    const ended = (await redis.client.lrange('past_tasks', 0, -1)).map((text) => JSON.parse(text) as HttpTask)
    const byPath = new Map(ended.map((task) => [task.path, task]))
    const outcome = { 'web_top.outcome': 'process_stopped' }
    expect(byPath.get('/params-tags')?.tags).toEqual({ ...outcome, 'service.name': 'api' })
    expect(byPath.get('/params-tags')?.params).toEqual({ tags: { a: '1' } })
    expect(byPath.get('/params-tags-only')?.tags).toEqual(outcome)
    expect(byPath.get('/params-tags-only')?.params).toEqual({ tags: '1' })
    expect(byPath.get('/null-tags')?.tags).toEqual(outcome)
    expect(byPath.get('/params-updated-at')?.tags).toEqual({ ...outcome, k: 'v' })
    expect(byPath.get('/params-updated-at')?.params).toEqual({ updated_at: '1' })
    expect(byPath.get('/recorder')?.tags).toEqual({ ...outcome, k: 'v' })
    for (const task of ended) {
      expect(task.recorded_successfully).toBe(false)
      expect(task.ended_at).toBe(task.updated_at)
      expect(task.ended_at).toMatch(/^\d{4}-\d{2}-\d{2}T/)
    }
    expect(ended).toHaveLength(5)

    // recent shows the outcome of each.
    const recent = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path,Tags'])
    expect(recent.stdout.match(/web_top\.outcome=process_stopped/g)).toHaveLength(5)
  })
})
