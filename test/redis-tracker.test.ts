import Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker, type RedisTrackerOptions } from '../src/index'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let trackers: RedisTracker[] = []

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
  await Promise.all(trackers.map((tracker) => tracker.close()))
  trackers = []
})

/** Opens a tracker on the test's Redis and waits until its connection is ready. */
async function openTracker(options: RedisTrackerOptions = {}): Promise<RedisTracker> {
  const tracker = new RedisTracker({ url: redis.url, ...options })
  trackers.push(tracker)
  await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
  return tracker
}

function taskJson(id: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ task_id: id, path: `/t/${id}`, ...extra })
}

async function countEvalshaCalls(): Promise<number> {
  const info = await redis.client.info('commandstats')
  const match = /cmdstat_evalsha:calls=(\d+)/.exec(info)
  return match ? Number(match[1]) : 0
}

describe('RedisTracker writes', () => {
  it('start sets the processors field', async () => {
    const tracker = await openTracker()
    tracker.recordStart('p1', taskJson(1))
    await tracker.flush()

    expect(await redis.client.hget('processors', 'p1')).toBe(taskJson(1))
    expect(await redis.client.llen('past_tasks')).toBe(0)
  })

  it('end moves the task to past_tasks', async () => {
    const tracker = await openTracker()
    tracker.recordStart('p1', taskJson(1))
    await tracker.flush()
    tracker.recordEnd('p1', taskJson(1, { status_code: 200 }))
    await tracker.flush()

    expect(await redis.client.hexists('processors', 'p1')).toBe(0)
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([taskJson(1, { status_code: 200 })])
  })

  it('sends one turn as one EVALSHA', async () => {
    const tracker = await openTracker()
    tracker.recordStart('warm-up', taskJson(0))
    await tracker.flush()
    const callsBefore = await countEvalshaCalls()

    for (let i = 1; i <= 100; i++) tracker.recordStart(`p${i}`, taskJson(i))
    for (let i = 1; i <= 100; i++) tracker.recordEnd(`p${i}`, taskJson(i))
    await tracker.flush()

    expect((await countEvalshaCalls()) - callsBefore).toBe(1)
    expect(await redis.client.hlen('processors')).toBe(1)
    expect(await redis.client.llen('past_tasks')).toBe(100)
  })

  it('caps past_tasks, newest first', async () => {
    const tracker = await openTracker({ maxCompletedTasks: 10 })
    for (let i = 0; i < 100; i++) {
      tracker.recordEnd(`p${i % 7}`, taskJson(i))
      if (i % 9 === 0) await tracker.flush()
    }
    await tracker.flush()

    const list = await redis.client.lrange('past_tasks', 0, -1)
    expect(list).toEqual(Array.from({ length: 10 }, (_, i) => taskJson(99 - i)))
  })

  it('publishes starts and ends', async () => {
    const tracker = await openTracker()
    const subscriber = new Redis(redis.url)
    const messages: string[] = []
    subscriber.on('message', (channel: string, text: string) => messages.push(`${channel} ${text}`))
    await subscriber.subscribe('task_updates')

    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p1', taskJson(2))
    await tracker.flush()
    await waitFor('2 messages', () => (messages.length >= 2 ? true : undefined))
    subscriber.disconnect()

    expect(messages).toEqual([`task_updates ${taskJson(1)}`, `task_updates ${taskJson(2)}`])
  })

  it('prefixes keys and channel', async () => {
    const tracker = await openTracker({ keyPrefix: '{shop}:' })
    const subscriber = new Redis(redis.url)
    const channels: string[] = []
    subscriber.on('message', (channel: string) => channels.push(channel))
    await subscriber.subscribe('{shop}:task_updates')

    tracker.recordStart('p1', taskJson(1))
    tracker.recordStart('p2', taskJson(2))
    tracker.recordEnd('p2', taskJson(2))
    await tracker.flush()
    await waitFor('3 messages', () => (channels.length >= 3 ? true : undefined))
    subscriber.disconnect()

    expect(tracker.keys).toEqual({
      processors: '{shop}:processors',
      pastTasks: '{shop}:past_tasks',
      taskUpdates: '{shop}:task_updates',
      lastClearedAt: '{shop}:last_cleared_at',
    })
    expect(await redis.client.hkeys('{shop}:processors')).toEqual(['p1'])
    expect(await redis.client.llen('{shop}:past_tasks')).toBe(1)
    expect(await redis.client.exists('processors', 'past_tasks')).toBe(0)
    expect(channels).toEqual(['{shop}:task_updates', '{shop}:task_updates', '{shop}:task_updates'])
  })

  it('removes processors by prefix', async () => {
    const tracker = await openTracker()
    for (const id of ['host/[1]-0-1.0', 'host/[1]-0-1.1', 'host/[1]-0-2.0', 'host/11-0-1.0', 'other']) {
      tracker.recordStart(id, taskJson(1))
    }
    await tracker.flush()

    expect(await tracker.removeProcessors('host/[1]-0-1.')).toBe(2)
    expect((await redis.client.hkeys('processors')).sort()).toEqual(['host/11-0-1.0', 'host/[1]-0-2.0', 'other'])
  })

  it('drops writes past the byte budget', async () => {
    const tracker = await openTracker({ maxPendingBytes: 2_000 })
    const big = taskJson(1, { padding: 'x'.repeat(500) })
    for (let i = 0; i < 10; i++) tracker.recordStart(`p${i}`, big)
    await tracker.flush()

    const stats = tracker.stats()
    expect(stats.dropped).toBe(7)
    expect(stats.written).toBe(3)
    expect(stats.pendingBytes).toBe(0)
    expect(await redis.client.hlen('processors')).toBe(3)
  })

  it('repairs processors after a restart', async () => {
    const separate = await startRedis()
    const tracker = new RedisTracker({ url: separate.url })
    trackers.push(tracker)
    try {
      tracker.recordStart('p1', taskJson(1))
      tracker.recordStart('p2', taskJson(2))
      await tracker.flush()
      await waitFor('both entries', async () => ((await separate.client.hlen('processors')) === 2 ? true : undefined))
      tracker.recordEnd('p2', taskJson(2))

      await separate.stop()
      await separate.start()
      await waitFor('the repaired hash', async () => {
        const keys = await separate.client.hkeys('processors').catch(() => [])
        return keys.length === 1 ? keys : undefined
      })
      expect(await separate.client.hget('processors', 'p1')).toBe(taskJson(1))
    } finally {
      await tracker.close()
      await separate.close()
    }
  })

  it('never throws while Redis is down', async () => {
    const separate = await startRedis()
    const tracker = new RedisTracker({ url: separate.url })
    trackers.push(tracker)
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await separate.stop()
    await waitFor('the lost connection', () => (tracker.client.status !== 'ready' ? true : undefined))

    expect(() => tracker.recordStart('p1', taskJson(1))).not.toThrow()
    expect(() => tracker.recordEnd('p1', taskJson(1))).not.toThrow()
    await tracker.close()
    await separate.close()
  })
})

describe('RedisTracker reads', () => {
  it('reads active and completed tasks', async () => {
    const tracker = await openTracker()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p2', taskJson(2))
    tracker.recordEnd('p3', taskJson(3))
    await tracker.flush()

    const snapshot = await tracker.read()
    expect([...snapshot.active.keys()]).toEqual(['p1'])
    expect(snapshot.active.get('p1')?.path).toBe('/t/1')
    expect(snapshot.completed.map((task) => task.task_id)).toEqual([3, 2])
    expect(snapshot.skipped).toBe(0)
  })

  it('reads up to completedLimit', async () => {
    const tracker = await openTracker()
    for (let i = 0; i < 5; i++) tracker.recordEnd('p', taskJson(i))
    await tracker.flush()

    expect((await tracker.read({ completedLimit: 2 })).completed.map((task) => task.task_id)).toEqual([4, 3])
    expect((await tracker.read({ completedLimit: 0 })).completed).toEqual([])
  })

  it('skips records that do not decode', async () => {
    const tracker = await openTracker()
    await redis.client.hset('processors', 'bad', '{not json', 'good', taskJson(1))
    await redis.client.lpush('past_tasks', '[1,2]', taskJson(2))

    const snapshot = await tracker.read()
    expect(snapshot.skipped).toBe(2)
    expect(snapshot.skipReasons).toEqual([
      'active task of processor "bad": invalid JSON',
      'completed task at index 1: not a JSON object',
    ])
    expect([...snapshot.active.keys()]).toEqual(['good'])
    expect(snapshot.completed).toHaveLength(1)
  })

  it('reports a key of the wrong type', async () => {
    const tracker = await openTracker()
    await redis.client.set('processors', 'a string')

    const snapshot = await tracker.read()
    expect(snapshot.skipReasons).toEqual(['key processors: wrong key type'])
    expect(snapshot.active.size).toBe(0)
  })

  it('clear deletes tasks and stamps the time', async () => {
    const tracker = await openTracker()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p2', taskJson(2))
    await tracker.flush()
    await tracker.clear()

    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toEqual([])
    expect(snapshot.lastClearedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/)
    expect(await redis.client.get('last_cleared_at')).toBe(snapshot.lastClearedAt)
  })

  it('subscribes to task updates', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    trackers.push(tracker)
    const received: string[] = []
    const unsubscribe = await tracker.subscribe((json) => received.push(json))

    tracker.recordStart('p1', taskJson(1))
    await tracker.flush()
    await waitFor('the update', () => (received.length > 0 ? true : undefined))
    await unsubscribe()

    expect(received).toEqual([taskJson(1)])
  })
})

describe('RedisTracker lifecycle', () => {
  it('close quits its own connection', async () => {
    const tracker = await openTracker()
    tracker.recordStart('p1', taskJson(1))
    await tracker.close()

    await waitFor('the closed connection', () => (tracker.client.status === 'end' ? true : undefined))
    expect(await redis.client.hget('processors', 'p1')).toBe(taskJson(1))
  })

  it('close leaves a given client open', async () => {
    const client = new Redis(redis.url)
    const tracker = new RedisTracker({ client })
    tracker.recordStart('p1', taskJson(1))
    await tracker.close()

    expect(client.status).toBe('ready')
    expect(await client.hget('processors', 'p1')).toBe(taskJson(1))
    await client.quit()
  })

  it('drops writes after close', async () => {
    const tracker = await openTracker()
    await tracker.close()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p1', taskJson(1))

    expect(tracker.stats().dropped).toBe(2)
    expect(await redis.client.exists('processors')).toBe(0)
  })

  it.each([
    [{ maxCompletedTasks: 0 }, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received 0)'],
    [{ maxPendingBytes: 1.5 }, RangeError, 'The `maxPendingBytes` option must be a whole number of at least 1 (received 1.5)'],
    [{ maxCompletedTasks: '10' }, TypeError, 'The `maxCompletedTasks` option must be a number (received "10")'],
  ])('rejects %j', (options, errorClass, message) => {
    const create = () => new RedisTracker({ client: redis.client, ...(options as RedisTrackerOptions) })
    expect(create).toThrow(errorClass)
    expect(create).toThrow(message)
  })

  it('masks the password in url', () => {
    const tracker = new RedisTracker({ url: `redis://user:secret@127.0.0.1:${redis.port}/3` })
    trackers.push(tracker)
    expect(tracker.url).toBe(`redis://user:***@127.0.0.1:${redis.port}/3`)
  })
})
