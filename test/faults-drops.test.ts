/**
 * While Redis is paused (`CLIENT PAUSE WRITE`) or frozen (SIGSTOP), task
 * records past the `maxPendingBytes` budget are dropped rather than
 * queued without limit. The drops are counted and logged as a few lines
 * that carry the counts. Once Redis replies again, the tracker drains and
 * leaves no finished request in `processors`.
 */
import Redis from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { startEdgeApp, type EdgeApp } from './helpers/edge-apps'
import { waitFor } from './helpers/http'
import { runLoad } from './helpers/load'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { captureLogger, type LogLine } from './helpers/logger'

const DROP_MESSAGE =
  'task records dropped (a request has two, its start and its end): redis was unreachable or slow, ' +
  'or rejected a write (logged apart with its reason)'

function dropLines(lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.message === DROP_MESSAGE)
}

function sumDropped(lines: LogLine[]): number {
  return dropLines(lines).reduce((sum, line) => sum + Number(line.fields.dropped), 0)
}

let redis: TestRedis
let app: EdgeApp | undefined

beforeEach(async () => {
  redis = await startRedis()
})

afterEach(async () => {
  redis.thaw()
  await redis.client.client('UNPAUSE').catch(() => undefined)
  app?.release()
  await app?.close()
  app = undefined
  await redis.close()
})

/** Sends requests until one is in past_tasks, so that the tracker is connected and warmed up. */
async function waitUntilRecording(target: EdgeApp): Promise<void> {
  await waitFor('the first record', async () => {
    await fetch(`${target.url}/ok?warm-up`)
    return (await redis.client.llen('past_tasks')) > 0 ? true : undefined
  })
}

describe.each(['express5', 'fastify5'] as const)('%s while Redis is paused', (framework) => {
  it('caps pending bytes and counts drops', async () => {
    const maxPendingBytes = 64 * 1024
    const logger = captureLogger()
    app = await startEdgeApp(framework, { trackerUrl: redis.url, maxPendingBytes, logger })
    const tracker = app.recorder.tracker
    await waitUntilRecording(app)
    await tracker.flush()
    const writtenBefore = tracker.stats().written

    await redis.client.client('PAUSE', 30_000, 'WRITE')
    let maxSeenPendingBytes = 0
    const sampler = setInterval(() => {
      maxSeenPendingBytes = Math.max(maxSeenPendingBytes, tracker.stats().pendingBytes)
    }, 2)
    const load = await runLoad(`${app.url}/ok`, { count: 3_000, concurrency: 8, expectedBody: 'ok' })
    clearInterval(sampler)

    expect(load.errors).toEqual([])
    expect(load.unexpected).toEqual([])
    const paused = tracker.stats()
    expect(maxSeenPendingBytes).toBeGreaterThan(maxPendingBytes / 2)
    expect(maxSeenPendingBytes).toBeLessThanOrEqual(maxPendingBytes)
    expect(paused.pendingBytes).toBeLessThanOrEqual(maxPendingBytes)
    expect(paused.written).toBe(writtenBefore)
    // 6,000 records (a start and an end per request) and room for a few dozen.
    expect(paused.dropped).toBeGreaterThan(5_000)

    // Thousands of drops make one line at once. The rest is summed until the interval ends.
    expect(dropLines(logger.lines)).toHaveLength(1)
    expect(dropLines(logger.lines)[0]?.fields).toMatchObject({ dropped: 1, maxPendingBytes })

    await redis.client.client('UNPAUSE')
    await waitFor('the drained tracker', () => (tracker.stats().pendingBytes === 0 ? true : undefined))
    await tracker.flush()
    const stored = await waitFor('the repaired processors', async () => {
      const current = await readStoredTasks(redis.client)
      return Object.keys(current.processors).length === 0 ? current : undefined
    })
    expect(stored.pastTasks[0]?.path).toBe('/ok')

    const dropped = tracker.stats().dropped
    await app.close()
    app = undefined
    const lines = dropLines(logger.lines)
    const counts = lines.map((line) => line.fields.dropped).join(' + ')
    console.log(`${framework}: ${dropped} records dropped, max ${maxSeenPendingBytes} pending bytes, logged as ${counts}`)
    expect(lines.length).toBeLessThanOrEqual(3)
    expect(Number(lines.at(-1)?.fields.dropped)).toBeGreaterThan(5_000)
    expect(sumDropped(logger.lines)).toBe(dropped)
    expect(logger.lines.length).toBeLessThanOrEqual(4)
  })

  it('never resurrects a finished request after a freeze', async () => {
    // Room for a handful of records: most ends are dropped while their starts are stuck in flight.
    const logger = captureLogger()
    app = await startEdgeApp(framework, { trackerUrl: redis.url, maxPendingBytes: 16 * 1024, logger })
    const tracker = app.recorder.tracker
    await waitUntilRecording(app)

    redis.freeze()
    const load = await runLoad(`${app.url}/ok`, { count: 300, concurrency: 4, expectedBody: 'ok' })
    expect(load.errors).toEqual([])
    expect(load.unexpected).toEqual([])
    const frozen = tracker.stats()
    expect(frozen.dropped).toBeGreaterThan(500)
    expect(frozen.pendingBytes).toBeGreaterThan(0)
    redis.thaw()

    await waitFor('the drained tracker', () => (tracker.stats().pendingBytes === 0 ? true : undefined))
    await tracker.flush()
    // Give any late write a chance to land before the final check.
    await new Promise((resolve) => setTimeout(resolve, 200))
    const stored = await readStoredTasks(redis.client)
    expect(stored.processors).toEqual({})
    expect(stored.pastTasks.length).toBeGreaterThan(1)
    expect(dropLines(logger.lines).length).toBeLessThanOrEqual(2)
  })
})

describe('drop log', () => {
  it('logs counts once per interval', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger, logIntervalMs: 200, maxPendingBytes: 4_096 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await redis.client.client('PAUSE', 30_000, 'WRITE')

    const json = JSON.stringify({ path: '/x', padding: 'p'.repeat(400) })
    const startedAt = Date.now()
    let made = 0
    while (Date.now() - startedAt < 1_000) {
      for (let i = 0; i < 100; i++) tracker.recordStart(`p${made++ % 50}`, json)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const elapsedMs = Date.now() - startedAt
    const dropped = tracker.stats().dropped
    expect(dropped).toBeGreaterThan(made - 20)

    await redis.client.client('UNPAUSE')
    await tracker.close()
    const lines = dropLines(logger.lines)
    // One line at the first drop, one per elapsed interval, one at close.
    expect(lines.length).toBeGreaterThanOrEqual(3)
    expect(lines.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / 200) + 2)
    expect(sumDropped(logger.lines)).toBe(dropped)
    expect(lines.at(-1)?.fields.droppedTotal).toBe(dropped)
    for (const line of lines) expect(line.fields.maxPendingBytes).toBe(4_096)
  })
})

describe('a failed write with no records in it', () => {
  it('logs the failure without a drop count', async () => {
    // processors of the wrong type makes the removal of old entries fail.
    await redis.client.set('processors', 'not a hash')
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger, batchWindowMs: 0 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    tracker.queueRemoveProcessors('node:1:')
    await tracker.flush()
    const stats = tracker.stats()
    await tracker.close()
    await redis.client.del('processors')

    expect(stats.dropped).toBe(0)
    const messages = logger.lines.map((line) => line.message)
    expect(messages).toContain('redis write failed')
    expect(messages).not.toContain('redis write failed, records dropped')
    expect(messages.filter((message) => message.startsWith('task records dropped'))).toEqual([])
    const failed = logger.lines.find((line) => line.message === 'redis write failed')
    expect(failed?.fields.reason).toContain('WRONGTYPE')
    // The error's message is the reason, so the line shows it once.
    expect(failed?.fields.err).toBeUndefined()
    expect(failed?.fields.write).toBe('ending the active entries of processor ids node:1:*')
  })
})

describe('a write that times out on a given client', () => {
  it('counts it dropped, maybe stored', async () => {
    const client = new Redis(redis.url, { commandTimeout: 50 })
    const logger = captureLogger()
    const tracker = new RedisTracker({ client, logger, batchWindowMs: 0 })
    await waitFor('the client connection', () => (client.status === 'ready' ? true : undefined))
    // Loads the batch script, so that the EVALSHA run after the thaw finds it.
    tracker.recordStart('p-0', JSON.stringify({ task_id: 't-0' }))
    await tracker.flush()

    // Frozen, Redis replies to nothing but runs the write once it is thawed.
    redis.freeze()
    for (let id = 1; id <= 5; id++) {
      tracker.recordStart(`p-${id}`, JSON.stringify({ task_id: `t-${id}` }))
      tracker.recordEnd(`p-${id}`, JSON.stringify({ task_id: `t-${id}`, status_code: 200 }))
    }
    await waitFor('the timed-out write', () => (tracker.stats().dropped > 0 ? true : undefined))
    redis.thaw()
    await tracker.flush()
    const stats = tracker.stats()
    await tracker.close()
    const stored = await redis.client.llen('past_tasks')
    await client.quit()

    expect(stats.dropped).toBe(10)
    expect(stats.pendingBytes).toBe(0)
    // The frozen Redis ran the write after all, which is why the log reports that it may be stored.
    expect(stored).toBe(5)
    const failed = logger.lines.find((line) => line.message === 'redis write failed, records dropped')
    expect(failed?.fields.records).toBe(10)
    expect(failed?.fields.reason).toContain('commandTimeout')
    expect(failed?.fields.reason).toContain('the records may or may not be stored')
  })
})

describe('drop log across idle', () => {
  it('keeps its interval when the tracker goes idle', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger, logIntervalMs: 60_000, maxPendingBytes: 1_000 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const oversized = JSON.stringify({ task_id: 'big', padding: 'p'.repeat(2_000) })

    tracker.recordStart('p-1', oversized)
    expect(dropLines(logger.lines)).toHaveLength(1)
    // An app whose server closed and opened again goes idle and wakes between two drops.
    await tracker.suspend()
    tracker.recordStart('p-2', oversized)
    tracker.recordStart('p-3', oversized)

    expect(tracker.stats().dropped).toBe(3)
    expect(dropLines(logger.lines)).toHaveLength(1)
    await tracker.close()
    // The close reports the two drops summed since the first line.
    expect(dropLines(logger.lines).map((line) => line.fields.dropped)).toEqual([1, 2])
  })
})

describe('record larger than maxPendingBytes', () => {
  it('is dropped with a line that names the budget', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger, maxPendingBytes: 1_000 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    tracker.recordStart('p-1', JSON.stringify({ task_id: 'big', padding: 'p'.repeat(2_000) }))
    tracker.recordStart('p-2', JSON.stringify({ task_id: 'small' }))
    await tracker.flush()
    const stats = tracker.stats()
    await tracker.close()

    expect(stats.dropped).toBe(1)
    expect(stats.written).toBe(1)
    const lines = logger.lines.filter((line) => line.message.startsWith('a task record is larger than maxPendingBytes'))
    expect(lines).toHaveLength(1)
    expect(lines[0]?.fields.maxPendingBytes).toBe(1_000)
    expect(Number(lines[0]?.fields.recordBytes)).toBeGreaterThan(2_000)
  })
})
