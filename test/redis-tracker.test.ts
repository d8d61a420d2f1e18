import Redis, { Cluster } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTrackerFromUrl, Recorder, RedisTracker, type RedisTrackerOptions } from '../src/index'
import { resolveOptions } from '../src/options'
import { openTracker as openFromOptions } from '../src/recorder/open-tracker'
import { DecodeCache } from '../src/trackers/decode-cache'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { captureLogger } from './helpers/logger'

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
  return countCalls('evalsha')
}

/** Returns how many times Redis ran a command so far, scripts' calls included. */
async function countCalls(command: string): Promise<number> {
  const info = await redis.client.info('commandstats')
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)
  return match ? Number(match[1]) : 0
}

/** Subscribes to the update channel and collects the messages. */
async function collectUpdates(): Promise<{ messages: string[]; close: () => void }> {
  const subscriber = new Redis(redis.url)
  const messages: string[] = []
  subscriber.on('message', (_channel: string, text: string) => messages.push(text))
  await subscriber.subscribe('task_updates')
  return { messages, close: () => subscriber.disconnect() }
}

/** Parts of a record as the recorder passes them: `{fixed,own,shared}`. */
const FIXED = '"task_id":"t-1","path":"/f"'
const START = '"ended_at":null'
const END = '"ended_at":"2026-12-04T15:00:00.000000+00:00","status_code":200'
const SHARED = ',"host_name":"web-1","tags":{"a":"b"}'
const SHARED_ABORTED = ',"host_name":"web-1","tags":{"a":"b","web_top.outcome":"aborted"}'
const START_TEXT = `{${FIXED},${START}${SHARED}}`
const END_TEXT = `{${FIXED},${END}${SHARED}}`

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

describe('RedisTracker records in parts', () => {
  it('merges a start and end of one batch', async () => {
    const tracker = await openTracker()
    const updates = await collectUpdates()
    const setsBefore = await countCalls('hset')

    tracker.recordStartFields('p1', FIXED, START, SHARED, true)
    tracker.recordEndFields('p1', FIXED, END, SHARED)
    await tracker.flush()
    await waitFor('2 messages', () => (updates.messages.length >= 2 ? true : undefined))
    updates.close()

    expect(updates.messages).toEqual([START_TEXT, END_TEXT])
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([END_TEXT])
    expect(await redis.client.hlen('processors')).toBe(0)
    expect((await countCalls('hset')) - setsBefore).toBe(0)
    expect(tracker.stats()).toEqual({ written: 2, dropped: 0, pendingBytes: 0 })
  })

  it('stores a start sent before its end', async () => {
    const tracker = await openTracker()
    tracker.recordStartFields('p1', FIXED, START, SHARED, true)
    await tracker.flush()
    expect(await redis.client.hget('processors', 'p1')).toBe(START_TEXT)

    tracker.recordEndFields('p1', FIXED, END, SHARED)
    await tracker.flush()
    expect(await redis.client.hlen('processors')).toBe(0)
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([END_TEXT])
  })

  it('keeps an aborted end apart', async () => {
    const tracker = await openTracker()
    const updates = await collectUpdates()

    tracker.recordStartFields('p1', FIXED, START, SHARED, true)
    tracker.recordEndFields('p1', FIXED, END, SHARED_ABORTED)
    await tracker.flush()
    await waitFor('2 messages', () => (updates.messages.length >= 2 ? true : undefined))
    updates.close()

    const abortedText = `{${FIXED},${END}${SHARED_ABORTED}}`
    expect(updates.messages).toEqual([START_TEXT, abortedText])
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([abortedText])
    expect(await redis.client.hlen('processors')).toBe(0)
  })

  it('publishes nothing without subscribers', async () => {
    const tracker = await openTracker()
    const publishesBefore = await countCalls('publish')
    tracker.recordStartFields('p1', FIXED, START, SHARED, true)
    tracker.recordEndFields('p1', FIXED, END, SHARED)
    tracker.recordStart('p2', taskJson(2))
    await tracker.flush()

    expect((await countCalls('publish')) - publishesBefore).toBe(0)
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([END_TEXT])
    expect(await redis.client.hget('processors', 'p2')).toBe(taskJson(2))

    const updates = await collectUpdates()
    tracker.recordEnd('p2', taskJson(2, { status_code: 200 }))
    await tracker.flush()
    await waitFor('the end message', () => (updates.messages.length >= 1 ? true : undefined))
    updates.close()
    expect(updates.messages).toEqual([taskJson(2, { status_code: 200 })])
  })

  it('stores an unpublished start quietly', async () => {
    const tracker = await openTracker()
    const updates = await collectUpdates()
    tracker.recordStartFields('p1', FIXED, START, SHARED, false)
    await tracker.flush()
    expect(await redis.client.hget('processors', 'p1')).toBe(START_TEXT)

    tracker.recordDiscard('p1')
    await tracker.flush()
    await new Promise((resolve) => setTimeout(resolve, 100))
    updates.close()

    expect(updates.messages).toEqual([])
    expect(await redis.client.hlen('processors')).toBe(0)
    expect(await redis.client.llen('past_tasks')).toBe(0)
  })

  it('sends nothing for a quick unpublished request', async () => {
    const tracker = await openTracker()
    tracker.recordStart('warm-up', taskJson(0))
    await tracker.flush()
    const callsBefore = await countEvalshaCalls()

    tracker.recordStartFields('p1', FIXED, START, SHARED, false)
    tracker.recordDiscard('p1')
    await tracker.flush()

    expect((await countEvalshaCalls()) - callsBefore).toBe(0)
    expect(tracker.stats().pendingBytes).toBe(0)
  })

  it('sends after the batch window', async () => {
    const tracker = await openTracker({ batchWindowMs: 200 })
    tracker.recordStart('p1', taskJson(1))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await redis.client.hexists('processors', 'p1')).toBe(0)

    await waitFor('the start', async () => ((await redis.client.hexists('processors', 'p1')) === 1 ? true : undefined))
  })

  it('sends 1000 operations at once', async () => {
    const tracker = await openTracker({ batchWindowMs: 1000 })
    for (let i = 0; i < 1000; i++) tracker.recordStart(`p${i}`, taskJson(i))
    await waitFor('1000 entries', async () => ((await redis.client.hlen('processors')) === 1000 ? true : undefined))
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

  it('reports a key of the wrong type in a light read', async () => {
    const tracker = await openTracker()
    await redis.client.set('processors', 'a string')

    const snapshot = await tracker.read({ decodeCache: new DecodeCache(), changedOnly: true })
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

  it('read waits for the first connection', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    trackers.push(tracker)
    tracker.recordStart('p1', taskJson(1))

    const snapshot = await tracker.read()
    expect(snapshot.skipped).toBe(0)
    await tracker.clear()
    expect((await tracker.read()).active.size).toBe(0)
  })

  it('read names the URL while Redis is down', async () => {
    const separate = await startRedis()
    await separate.stop()
    const tracker = new RedisTracker({ url: `redis://reader:s3cret@127.0.0.1:${separate.port}/0` })
    trackers.push(tracker)
    try {
      const failure = await tracker.read().then(
        () => undefined,
        (err: unknown) => err as Error,
      )
      expect(failure?.message).toMatch(
        new RegExp(`^web-top: Failed to read tasks: Redis at redis://reader:\\*\\*\\*@127\\.0\\.0\\.1:${separate.port}/0 is not connected`),
      )
      expect(failure?.message).not.toContain('s3cret')
      await expect(tracker.clear()).rejects.toThrow(/^web-top: Failed to clear tasks: Redis at /)
    } finally {
      await tracker.close()
      await separate.close()
    }
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

describe('RedisTracker with a database the server does not have', () => {
  it('writes nothing to database 0 and logs why', async () => {
    const errors: string[] = []
    const logger = { warn() {}, error: (_object: Record<string, unknown>, message: string) => errors.push(message) }
    const tracker = new RedisTracker({ url: `${redis.url}/99`, logger })
    trackers.push(tracker)
    await waitFor('the SELECT failure', () => (errors.length > 0 ? true : undefined))

    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p2', taskJson(2))
    await tracker.flush()

    expect(errors[0]).toContain(`has no database 99`)
    expect(await redis.client.exists('processors', 'past_tasks')).toBe(0)
    expect(tracker.stats().written).toBe(0)
    await expect(tracker.read()).rejects.toThrow('has no database 99')
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

  it('counts and logs writes lost at close', async () => {
    const separate = await startRedis()
    const logger = captureLogger()
    const lines = logger.lines
    const tracker = new RedisTracker({ url: separate.url, logger })
    trackers.push(tracker)
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await separate.stop()
    await waitFor('the lost connection', () => (tracker.client.status !== 'ready' ? true : undefined))

    for (let id = 1; id <= 5; id++) {
      tracker.recordStart(`p${id}`, taskJson(id))
      tracker.recordEnd(`p${id}`, taskJson(id))
    }
    await tracker.close()

    expect(tracker.stats().dropped).toBe(10)
    const closing = lines.filter((line) => line.message.startsWith('redis tracker closed before'))
    expect(closing).toHaveLength(1)
    expect(closing[0]?.fields.records).toBe(10)
    expect(closing[0]?.fields.unsent).toBe(10)
    expect(closing[0]?.fields.unconfirmed).toBe(0)
    await separate.close()
  })

  it('counts writes in flight at close as dropped', async () => {
    const logger = captureLogger()
    const tracker = await openTracker({ logger, batchWindowMs: 0 })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()

    // CLIENT PAUSE WRITE keeps the batch script unanswered past the close wait.
    await redis.client.client('PAUSE', 3_000, 'WRITE')
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      const startedAt = Date.now()
      await tracker.close({ waitMs: 300 })
      const closeMs = Date.now() - startedAt
      const stats = tracker.stats()

      expect(closeMs).toBeLessThan(1_500)
      expect(stats.dropped).toBe(6)
      expect(stats.pendingBytes).toBe(0)
      const closing = logger.lines.filter((line) => line.message.startsWith('redis tracker closed before'))
      expect(closing).toHaveLength(1)
      expect(closing[0]?.fields.records).toBe(6)
      // close() sends the records still waiting, so all of them are in flight.
      expect(closing[0]?.fields.unconfirmed).toBe(6)
      expect(closing[0]?.fields.unsent).toBe(0)
      expect(closing[0]?.message).toContain('may or may not be stored')
    } finally {
      await redis.client.client('UNPAUSE')
    }
  })

  it('closes quietly once every write landed', async () => {
    const lines: string[] = []
    const tracker = await openTracker({ logger: { warn: (_fields, message) => lines.push(message), error() {} } })
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p1', taskJson(1))
    await tracker.close()

    expect(tracker.stats().dropped).toBe(0)
    expect(lines).toEqual([])
    expect(await redis.client.llen('past_tasks')).toBe(1)
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

  it.each([-1, 1.5, 1001, '2'])('rejects batchWindowMs %j', (value) => {
    const create = () => new RedisTracker({ client: redis.client, batchWindowMs: value as number })
    expect(create).toThrow(typeof value === 'number' ? RangeError : TypeError)
    expect(create).toThrow('The `batchWindowMs` option must be')
  })

  it('rejects a Cluster prefix without a hash tag', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true })
    try {
      const create = () => new RedisTracker({ client: cluster, keyPrefix: 'shop:' })
      expect(create).toThrow(RangeError)
      expect(create).toThrow('The `keyPrefix` option must be a prefix with a hash tag')
      expect(() => new RedisTracker({ client: cluster })).toThrow(RangeError)
      const tracker = new RedisTracker({ client: cluster, keyPrefix: '{shop}:' })
      expect(tracker.keys.processors).toBe('{shop}:processors')
    } finally {
      cluster.disconnect()
    }
  })

  it('takes maxPendingBytes from a tracker URL', async () => {
    const tracker = createTrackerFromUrl(redis.url, { maxPendingBytes: 4_096 }) as RedisTracker
    trackers.push(tracker)
    expect(tracker).toBeInstanceOf(RedisTracker)
    expect(tracker.maxPendingBytes).toBe(4_096)

    const recorder = new Recorder({ trackerUrl: redis.url, maxPendingBytes: 5_000, handleSignals: false })
    try {
      expect((recorder.tracker as RedisTracker).maxPendingBytes).toBe(5_000)
    } finally {
      await recorder.close()
    }
  })

  it('masks the password in url', () => {
    const tracker = new RedisTracker({ url: `redis://user:secret@127.0.0.1:${redis.port}/3` })
    trackers.push(tracker)
    expect(tracker.url).toBe(`redis://user:***@127.0.0.1:${redis.port}/3`)
  })

  it('masks secret query parameters in url, as the CLI does', () => {
    const tracker = new RedisTracker({ url: `redis://127.0.0.1:${redis.port}/3?password=s3cret` })
    trackers.push(tracker)
    expect(tracker.url).toBe(`redis://127.0.0.1:${redis.port}/3?password=***`)
  })
})

describe('batchWindowMs from the recorder options', () => {
  it('holds writes for the window', async () => {
    const options = resolveOptions({ trackerUrl: redis.url, batchWindowMs: 400 }, {})
    const { tracker } = openFromOptions(options, console)
    trackers.push(tracker as RedisTracker)
    await waitFor('the tracker connection', () => ((tracker as RedisTracker).client.status === 'ready' ? true : undefined))

    const startedMs = Date.now()
    tracker.recordStart('p-window', taskJson(1))
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(await redis.client.hlen('processors')).toBe(0)

    await waitFor('the held write', async () => ((await redis.client.hlen('processors')) === 1 ? true : undefined))
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(390)
  })
})

describe('RedisTracker url', () => {
  it('names the server of a client given without a URL', async () => {
    const client = new Redis({ host: '127.0.0.1', port: redis.port, db: 3, password: 'hunter2', lazyConnect: true })
    const tracker = new RedisTracker({ client })
    try {
      expect(tracker.url).toBe(`redis://127.0.0.1:${redis.port}/3`)
    } finally {
      await tracker.close()
      client.disconnect()
    }
  })

  it('names the seed nodes of a Cluster client', async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: redis.port }, `redis://:hunter2@127.0.0.1:${redis.port + 1}`], {
      lazyConnect: true,
    })
    const tracker = new RedisTracker({ client, keyPrefix: '{app}:' })
    try {
      expect(tracker.url).toBe(`redis+cluster://127.0.0.1:${redis.port},127.0.0.1:${redis.port + 1}`)
    } finally {
      await tracker.close()
      client.disconnect()
    }
  })

  // ioredis reads any scheme as a Redis address, so each of these would open
  // a connection if the constructor let it through: PORT is this file's own
  // Redis, so that a regression connects there and nowhere else.
  it.each([
    ['memory://127.0.0.1:PORT', 'use createTrackerFromUrl()'],
    ['http://127.0.0.1:PORT/web-top', 'use createTrackerFromUrl()'],
    ['redis+cluster://127.0.0.1:PORT', 'use createTrackerFromUrl()'],
    [' redis://127.0.0.1:PORT', 'it starts with whitespace; remove it'],
    ['redis://127.0.0.1:PORT/x', 'not a whole number'],
  ])('rejects %j', (template, reason) => {
    const url = template.replace('PORT', String(redis.port))
    const error = catchError(() => new RedisTracker({ url }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe('WEB_TOP_INVALID_TRACKER_URL')
    expect(error.message).toContain(`Invalid tracker URL "${url}"`)
    expect(error.message).toContain(reason)
  })

  it('masks the password of a rejected URL', () => {
    const error = catchError(() => new RedisTracker({ url: `http://u:hunter2@127.0.0.1:${redis.port}` }))
    expect(error.message).toContain(`u:***@127.0.0.1:${redis.port}`)
    expect(error.message).not.toContain('hunter2')
  })
})

function catchError(run: () => unknown): Error {
  try {
    run()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error, but none was thrown')
}
