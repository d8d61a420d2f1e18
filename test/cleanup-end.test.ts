/**
 * Tasks ended by cleanup. A request still in flight when its recorder
 * closes, and an entry that an earlier process left under the same
 * prefix, are not deleted. They become completed tasks with
 * `recorded_successfully: false` and the tag `web_top.outcome`, pushed to
 * `past_tasks` and published.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MemoryTracker, pruneStaleTasks, RedisTracker, type Heartbeat, type HttpTask } from '../src/index'
import { endByCleanup } from '../src/task/cleanup-end'
import { sendRequest, startApp, waitFor, type FrameworkName, type TestApp } from './helpers/http'
import { recorderStartText, waitForActive } from './helpers/records'
import { WRITER_TIMESTAMP } from './helpers/recording-cases'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let app: TestApp | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  app?.releaseWaiting()
  await app?.close()
  app = undefined
})

/** Text of a query parameter, a header and a path that look like the fields cleanup rewrites. */
const LOOKALIKE = '","ended_at":null,"recorded_successfully":null,"tags":{"'

describe.each<FrameworkName>(['express5', 'fastify5'])('%s recorder close', (framework) => {
  it('ends a request in flight', async () => {
    app = await startApp(framework, { trackerUrl: redis.url, handleSignals: false })
    const running = app
    const query = `?ended_at=&updated_at=1&tags=${encodeURIComponent(LOOKALIKE)}`
    const response = sendRequest(`${running.url}/wait${query}`, { headers: [['x-note', LOOKALIKE]] })
    await waitForActive(redis.client, 1)
    const activeText = Object.values(await redis.client.hgetall('processors'))[0] as string
    const subscriber = redis.client.duplicate()
    const published: string[] = []
    subscriber.on('message', (_channel: string, text: string) => published.push(text))
    await subscriber.subscribe('task_updates')

    await running.closeRecorder()
    const stored = await readStoredTasks(redis.client)
    expect(stored.processors).toEqual({})
    expect(stored.pastTasks).toHaveLength(1)
    const [endedText] = await redis.client.lrange('past_tasks', 0, -1)
    const ended = JSON.parse(endedText as string) as Record<string, unknown>
    const active = JSON.parse(activeText) as Record<string, unknown>
    expect(ended.ended_at).toMatch(WRITER_TIMESTAMP)
    expect(ended.recorded_successfully).toBe(false)
    expect(ended.status_code).toBeNull()
    expect(ended.tags).toEqual({ 'web_top.outcome': 'recorder_closed', ...(active.tags as object) })
    expect(ended).toEqual({
      ...active,
      updated_at: ended.ended_at,
      ended_at: ended.ended_at,
      recorded_successfully: false,
      tags: ended.tags,
    })
    expect(ended.params).toEqual({ ended_at: '', updated_at: '1', tags: LOOKALIKE })
    expect(ended.request_headers).toContainEqual(['X-NOTE', LOOKALIKE])
    await waitFor('the published end', () => (published.includes(endedText as string) ? true : undefined))
    await subscriber.quit()

    // The app still responds to the request, and its own end is not written.
    running.releaseWaiting()
    expect((await response).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await redis.client.llen('past_tasks')).toBe(1)
  })
})

describe('RedisTracker.removeProcessors', () => {
  const startedAt = '2026-12-04T10:00:00.000000+00:00'
  const start = (path: string, extra: Partial<HttpTask> = {}) =>
    recorderStartText({ task_id: path, started_at: startedAt, path, ...extra })

  it('ends each layout of tags', async () => {
    await redis.client.hset('processors', {
      'h/1-0-1.0': start('/tags', { tags: { 'service.name': 'shop' } }),
      'h/1-0-1.1': start('/empty-tags', { tags: {} }),
      'h/1-0-1.2': start('/no-tags'),
      'h/1-0-1.3': start('/null-tags', { tags: null }),
      'h/1-0-1.4': JSON.stringify({ path: '/other-writer', ended_at: null }),
      'h/1-0-10.0': start('/other-recorder'),
    })
    const tracker = new RedisTracker({ url: redis.url })
    try {
      expect(await tracker.removeProcessors('h/1-0-1.', 'process_stopped')).toBe(5)
    } finally {
      await tracker.close()
    }

    const stored = await readStoredTasks(redis.client)
    expect(Object.keys(stored.processors)).toEqual(['h/1-0-10.0'])
    const byPath = new Map(stored.pastTasks.map((task) => [task.path, task]))
    expect([...byPath.keys()].sort()).toEqual(['/empty-tags', '/no-tags', '/null-tags', '/tags'])
    const outcome = { 'web_top.outcome': 'process_stopped' }
    expect(byPath.get('/tags')?.tags).toEqual({ ...outcome, 'service.name': 'shop' })
    expect(byPath.get('/empty-tags')?.tags).toEqual(outcome)
    expect(byPath.get('/no-tags')?.tags).toEqual(outcome)
    expect(byPath.get('/null-tags')?.tags).toEqual(outcome)
    for (const task of stored.pastTasks) {
      expect(task.started_at).toBe(startedAt)
      expect(task.ended_at).toMatch(WRITER_TIMESTAMP)
      expect(task.recorded_successfully).toBe(false)
    }
  })

  it('changes nothing when past_tasks is not a list', async () => {
    await redis.client.set('past_tasks', 'not a list')
    await redis.client.hset('processors', { 'h/1-0-1.0': start('/a') })
    const tracker = new RedisTracker({ url: redis.url })
    try {
      await expect(tracker.removeProcessors('h/1-0-1.')).rejects.toThrow(/WRONGTYPE/)
    } finally {
      await tracker.close()
    }

    expect(await redis.client.hkeys('processors')).toEqual(['h/1-0-1.0'])
    expect(await redis.client.get('past_tasks')).toBe('not a list')
  })

  it('never shortens the completed list', async () => {
    await redis.client.rpush('past_tasks', ...['1', '2', '3', '4', '5'].map((id) => JSON.stringify({ task_id: id })))
    await redis.client.hset('processors', { 'h/1-0-1.0': start('/a'), 'h/1-0-1.1': start('/b') })
    const tracker = new RedisTracker({ url: redis.url, maxCompletedTasks: 2 })
    try {
      await tracker.removeProcessors('h/1-0-1.')
    } finally {
      await tracker.close()
    }

    const ids = (await redis.client.lrange('past_tasks', 0, -1)).map((text) => (JSON.parse(text) as HttpTask).task_id)
    expect(ids).toHaveLength(5)
    expect(ids.slice(2)).toEqual(['1', '2', '3'])
  })

  it('ends leftovers before a repair', async () => {
    // The recorder's first start is queued before the connection is ready,
    // so the first batch repairs. The leftovers must still be ended, and
    // the new entry at the same id must stay active.
    await redis.client.hset('processors', { 'h/1-0-1.0': start('/left-0'), 'h/1-0-1.7': start('/left-7') })
    const tracker = new RedisTracker({ url: redis.url })
    try {
      tracker.queueRemoveProcessors('h/1-0-1.', 'process_stopped')
      tracker.recordStart('h/1-0-1.0', start('/new'))
      await tracker.flush()
    } finally {
      await tracker.close()
    }

    const stored = await readStoredTasks(redis.client)
    expect(Object.values(stored.processors).map((task) => task.path)).toEqual(['/new'])
    expect(stored.processors['h/1-0-1.0']?.recorded_successfully).toBeNull()
    expect(stored.pastTasks.map((task) => task.path).sort()).toEqual(['/left-0', '/left-7'])
  })
})

describe('cleanup and repairs', () => {
  const start = (taskId: string) =>
    recorderStartText({ task_id: taskId, started_at: '2026-12-04T10:00:00.000000+00:00', path: `/${taskId}`, tags: {} })
  const end = (taskId: string) =>
    JSON.stringify({ ...(JSON.parse(start(taskId)) as object), ended_at: '2026-12-04T10:00:01.000000+00:00', status_code: 200 })

  it('keeps one record after a repair', async () => {
    const prefix = 'h/1-0-1.'
    const heartbeat = { processor_id_prefix: prefix } as Heartbeat
    const tracker = new RedisTracker({ url: redis.url })
    const pruner = new RedisTracker({ url: redis.url })
    try {
      tracker.writeHeartbeat(heartbeat, 300)
      tracker.recordStart(`${prefix}0`, start('slow'))
      await tracker.flush()
      await waitFor('the expired heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 0 ? true : undefined))

      // The recorder was too busy to refresh its heartbeat, and prune ended its request.
      expect(await pruneStaleTasks(pruner)).toMatchObject({ endedTasks: 1 })
      tracker.writeHeartbeat(heartbeat, 300)
      await waitFor('the repaired entry', async () => ((await redis.client.hexists('processors', `${prefix}0`)) === 1 ? true : undefined))
      expect(await redis.client.llen('past_tasks')).toBe(0)

      tracker.recordEnd(`${prefix}0`, end('slow'))
      await tracker.flush()
      const stored = await readStoredTasks(redis.client)
      expect(stored.processors).toEqual({})
      expect(stored.pastTasks.map((task) => [task.task_id, task.status_code])).toEqual([['slow', 200]])
    } finally {
      await pruner.close()
      await tracker.close()
    }
  })

  it('keeps one record after a stall', async () => {
    const prefix = 'h/1-0-1.'
    const heartbeat = { processor_id_prefix: prefix } as Heartbeat
    const tracker = new RedisTracker({ url: redis.url })
    const pruner = new RedisTracker({ url: redis.url })
    try {
      tracker.writeHeartbeat(heartbeat, 300)
      tracker.recordStart(`${prefix}0`, start('blocked'))
      await tracker.flush()
      await waitFor('the expired heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 0 ? true : undefined))
      expect(await pruneStaleTasks(pruner)).toMatchObject({ endedTasks: 1 })

      // The event loop was blocked: the request ends before the next heartbeat.
      tracker.recordEnd(`${prefix}0`, end('blocked'))
      await tracker.flush()
      const stored = await readStoredTasks(redis.client)
      expect(stored.pastTasks.map((task) => [task.task_id, task.status_code])).toEqual([['blocked', 200]])
    } finally {
      await pruner.close()
      await tracker.close()
    }
  })

  it('skips past_tasks without a prune', async () => {
    const prefix = 'h/1-0-1.'
    const heartbeat = { processor_id_prefix: prefix } as Heartbeat
    const tracker = new RedisTracker({ url: redis.url })
    try {
      await redis.client.rpush('past_tasks', ...Array.from({ length: 50 }, (_, index) => end(`old-${index}`)))
      tracker.writeHeartbeat(heartbeat, 300)
      tracker.recordStart(`${prefix}0`, start('gap'))
      await tracker.flush()
      await waitFor('the expired heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 0 ? true : undefined))
      await redis.client.config('RESETSTAT')

      // The heartbeat may have expired, so this end is sent with the check for prune records.
      tracker.recordEnd(`${prefix}0`, end('gap'))
      await tracker.flush()
      const stats = await redis.client.info('commandstats')
      expect(stats).toContain('cmdstat_exists:calls=1,')
      expect(stats).not.toContain('cmdstat_lrange')
      expect(await redis.client.llen('past_tasks')).toBe(51)
      expect(JSON.parse((await redis.client.lindex('past_tasks', 0)) ?? '{}')).toMatchObject({ task_id: 'gap' })
    } finally {
      await tracker.close()
    }
  })

  it('marks a prune that ended entries for a day', async () => {
    const prefix = 'h/1-0-1.'
    const tracker = new RedisTracker({ url: redis.url })
    const pruner = new RedisTracker({ url: redis.url })
    try {
      tracker.writeHeartbeat({ processor_id_prefix: prefix } as Heartbeat, 300)
      tracker.recordStart(`${prefix}0`, start('marked'))
      await tracker.flush()
      await waitFor('the expired heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 0 ? true : undefined))
      expect(await redis.client.exists('last_pruned_at')).toBe(0)

      expect(await pruneStaleTasks(pruner)).toMatchObject({ endedTasks: 1 })
      const ttl = await redis.client.pttl('last_pruned_at')
      expect(ttl).toBeGreaterThan(23 * 3_600_000)
      expect(ttl).toBeLessThanOrEqual(24 * 3_600_000)
      const endedAt = (JSON.parse((await redis.client.lindex('past_tasks', 0)) ?? '{}') as { ended_at?: string }).ended_at
      expect(await redis.client.get('last_pruned_at')).toBe(endedAt)
    } finally {
      await pruner.close()
      await tracker.close()
    }
  })

  it('keeps one record after a late reply', async () => {
    // The heartbeat's TTL starts when Redis runs the write, not when a
    // blocked event loop reads the reply.
    const prefix = 'h/1-0-1.'
    const heartbeat = { processor_id_prefix: prefix } as Heartbeat
    const tracker = new RedisTracker({ url: redis.url })
    const pruner = new RedisTracker({ url: redis.url })
    try {
      tracker.recordStart(`${prefix}0`, start('late'))
      await tracker.flush()
      tracker.writeHeartbeat(heartbeat, 1_500)
      const blockedUntil = Date.now() + 1_100
      while (Date.now() < blockedUntil) {
        // The event loop is blocked while Redis stores the heartbeat.
      }
      await waitFor('the expired heartbeat', async () => ((await redis.client.exists(`heartbeat:${prefix}`)) === 0 ? true : undefined))
      expect(await pruneStaleTasks(pruner)).toMatchObject({ endedTasks: 1 })

      tracker.writeHeartbeat(heartbeat, 1_500)
      await waitFor('the repaired entry', async () => ((await redis.client.hexists('processors', `${prefix}0`)) === 1 ? true : undefined))
      tracker.recordEnd(`${prefix}0`, end('late'))
      await tracker.flush()
      const stored = await readStoredTasks(redis.client)
      expect(stored.pastTasks.map((task) => [task.task_id, task.status_code])).toEqual([['late', 200]])
    } finally {
      await pruner.close()
      await tracker.close()
    }
  })

  it('ends requests in flight after BUSY', async () => {
    // Redis replies BUSY while another client's script runs past 100 ms.
    const busyRedis = await startRedis(['--busy-reply-threshold', '100'])
    const tracker = new RedisTracker({ url: busyRedis.url })
    const blocker = busyRedis.client.duplicate()
    try {
      tracker.recordStart('h/1-0-1.0', start('held-0'))
      tracker.recordStart('h/1-0-1.1', start('held-1'))
      await tracker.flush()
      const busy = blocker.eval(
        "local s = tonumber(redis.call('TIME')[1]) while tonumber(redis.call('TIME')[1]) < s + 2 do end return 1",
        0,
      )
      await new Promise((resolve) => setTimeout(resolve, 300))

      // This batch is rejected with BUSY, kept for a retry and followed by a repair.
      tracker.recordStart('h/1-0-1.2', start('quick'))
      tracker.recordEnd('h/1-0-1.2', end('quick'))
      await new Promise((resolve) => setTimeout(resolve, 100))
      // A write that waits in the batch ahead of the removal.
      tracker.recordStart('h/1-0-1.3', start('quick-2'))
      tracker.recordEnd('h/1-0-1.3', end('quick-2'))
      tracker.queueRemoveProcessors('h/1-0-1.', 'recorder_closed')
      await busy
      await tracker.flush()

      const stored = await readStoredTasks(busyRedis.client)
      expect(stored.processors).toEqual({})
      const outcomes = stored.pastTasks.map((task) => [task.task_id, task.tags?.['web_top.outcome'] ?? 'completed'])
      expect(outcomes.sort()).toEqual([
        ['held-0', 'recorder_closed'],
        ['held-1', 'recorder_closed'],
        ['quick', 'completed'],
        ['quick-2', 'completed'],
      ])
    } finally {
      blocker.disconnect()
      await tracker.close()
      await busyRedis.close()
    }
  })
})

describe('memory tracker', () => {
  it('ends entries like Redis', async () => {
    const tracker = new MemoryTracker()
    tracker.recordStart('h/1-0-1.0', recorderStartText({ task_id: 'a', path: '/a', tags: { k: 'v' } }))
    tracker.recordStart('h/1-0-1.1', 'not json')
    tracker.recordStart('h/1-0-2.0', recorderStartText({ task_id: 'b', path: '/b' }))

    expect(await tracker.removeProcessors('h/1-0-1.')).toBe(2)
    const snapshot = await tracker.read()
    expect([...snapshot.active.keys()]).toEqual(['h/1-0-2.0'])
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.completed[0]?.recorded_successfully).toBe(false)
    expect(snapshot.completed[0]?.tags).toEqual({ k: 'v', 'web_top.outcome': 'recorder_closed' })
  })

  it('tags a record whose tags are null, as Redis does', () => {
    const ended = endByCleanup('{"path":"/a","tags":null}', '2026-12-04T10:00:00.000000+00:00', 'recorder_closed')
    expect((JSON.parse(ended as string) as HttpTask).tags).toEqual({ 'web_top.outcome': 'recorder_closed' })
  })

  it('returns null for text that is not an object', () => {
    expect(endByCleanup('[1]', '2026-12-04T10:00:00.000000+00:00', 'recorder_closed')).toBeNull()
    expect(endByCleanup('{', '2026-12-04T10:00:00.000000+00:00', 'recorder_closed')).toBeNull()
  })
})
