/**
 * Heartbeats and leftovers. Each recorder refreshes a heartbeat with a
 * TTL. Readers find the entries of a process that died without cleaning
 * up, and prune exactly those. A new process with the same host and pid
 * removes the leftovers of its predecessor before its first write.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { threadId } from 'node:worker_threads'
import express from 'express'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  decodeHeartbeat,
  HttpTracker,
  isStaleProcessor,
  MemoryTracker,
  pruneStaleTasks,
  readHeartbeats,
  RedisTracker,
  topMiddleware,
  type Heartbeat,
  type TopMiddleware,
} from '../src/index'
import { toLoopDelayMs } from '../src/recorder/heartbeat-sender'
import { createStaleProcessorTest } from '../src/trackers/heartbeat'
import { startAppProcess, type AppProcess } from './helpers/app-process'
import { waitFor } from './helpers/http'
import { waitForActive } from './helpers/records'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'
import { WRITER_TIMESTAMP } from './helpers/recording-cases'

let redis: TestRedis
let app: AppProcess | undefined
let middleware: TopMiddleware | undefined
let server: Server | undefined

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
  app?.kill('SIGKILL')
  app = undefined
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
  await middleware?.close()
  middleware = undefined
})

/**
 * Serves one request through `handler` on an Express app that stays open.
 * The middleware learns of its server from requests, so its recorder
 * writes no heartbeat before the first one.
 */
async function serveOneRequest(handler: TopMiddleware): Promise<void> {
  const application = express()
  application.use(handler)
  application.get('/', (_req, res) => {
    res.send('ok')
  })
  const listening = application.listen(0, '127.0.0.1')
  server = listening
  await new Promise((resolve) => listening.once('listening', resolve))
  const { port } = listening.address() as AddressInfo
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok')
}

async function readHeartbeatKey(prefix: string): Promise<Heartbeat | undefined> {
  const text = await redis.client.get(`heartbeat:${prefix}`)
  return text === null ? undefined : (JSON.parse(text) as Heartbeat)
}

describe('heartbeat', () => {
  it('is written with its meters and refreshed', async () => {
    middleware = topMiddleware({
      trackerUrl: redis.url,
      heartbeatTtlMs: 900,
      processorName: 'api-1',
      handleSignals: false,
    })
    const recorder = middleware.recorder
    const prefix = recorder.processorIdPrefix
    // Longer than the 300 ms between heartbeats.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(await redis.client.smembers('heartbeats')).toEqual([])

    await serveOneRequest(middleware)
    const first = await waitFor('the first heartbeat', () => readHeartbeatKey(prefix))

    expect(prefix).toBe(`${hostname()}/${process.pid}-${threadId}-${prefix.split('-').at(-1)}`)
    expect(prefix).toMatch(/-\d+\.$/)
    expect(first).toMatchObject({
      processor_id_prefix: prefix,
      host_name: hostname(),
      process_id: process.pid,
      thread_id: threadId,
      processor_name: 'api-1',
      ttl_ms: 900,
      // Sampled as the first request woke the recorder, before it started.
      requests_in_flight: 0,
      requests_completed: 0,
      records_dropped: 0,
    })
    expect(first.started_at).toMatch(WRITER_TIMESTAMP)
    expect(first.updated_at).toMatch(WRITER_TIMESTAMP)
    expect(first.heap_used_bytes).toBeGreaterThan(0)
    expect(first.rss_bytes).toBeGreaterThan(first.heap_used_bytes as number)
    expect(await redis.client.smembers('heartbeats')).toEqual([prefix])
    const ttl = await redis.client.pttl(`heartbeat:${prefix}`)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(900)

    const refreshed = await waitFor('a refreshed heartbeat', async () => {
      const current = await readHeartbeatKey(prefix)
      return current !== undefined && current.updated_at !== first.updated_at ? current : undefined
    })
    expect(refreshed.started_at).toBe(first.started_at)
    expect(refreshed.event_loop_delay_p99_ms).toBeGreaterThanOrEqual(0)

    const report = await readHeartbeats(recorder.tracker)
    expect(report.live.map((heartbeat) => heartbeat.processor_id_prefix)).toEqual([prefix])
    expect(report.stalePrefixes).toEqual([])

    await middleware.close()
    middleware = undefined
    expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(0)
    expect(await redis.client.smembers('heartbeats')).toEqual([])
  })

  it('counts requests in flight and completed', async () => {
    app = await startAppProcess({
      framework: 'express5',
      topOptions: { trackerUrl: redis.url, heartbeatTtlMs: 600 },
    })
    const running = app
    for (let i = 0; i < 3; i++) await fetch(`${running.url}/ok`)
    const held = fetch(`${running.url}/wait`)
    await waitForActive(redis.client, 1)

    const heartbeat = await waitFor('a heartbeat with the counts', async () => {
      const current = await readHeartbeatKey(running.processorIdPrefix)
      return current?.requests_in_flight === 1 ? current : undefined
    })
    expect(heartbeat.requests_completed).toBe(3)
    expect(heartbeat.process_id).toBe(running.pid)

    running.release()
    await held
  })
})

describe('stale entries', () => {
  it('prunes only a crashed process', async () => {
    app = await startAppProcess({
      framework: 'fastify5',
      topOptions: { trackerUrl: redis.url, heartbeatTtlMs: 600 },
    })
    const crashed = app
    const crashedPrefix = crashed.processorIdPrefix
    void fetch(`${crashed.url}/wait`).catch(() => undefined)
    await waitForActive(redis.client, 1)

    // A live recorder in this process, with a request in flight.
    middleware = topMiddleware({ trackerUrl: redis.url, heartbeatTtlMs: 600, handleSignals: false })
    await serveOneRequest(middleware)
    await waitFor('the served request', async () => ((await redis.client.llen('past_tasks')) === 1 ? true : undefined))
    await redis.client.del('past_tasks')
    const livePrefix = middleware.recorder.processorIdPrefix
    middleware.recorder.tracker.recordStart(`${livePrefix}0`, JSON.stringify({ path: '/live' }))
    // Writers without heartbeats: the Python tracker, and a recorder number of the
    // crashed process that never wrote one (`…-1.` must not match `…-10.`).
    const untouched = {
      'pid:4242 tid:140': JSON.stringify({ path: '/python' }),
      [`${crashedPrefix.slice(0, -1)}0.0`]: JSON.stringify({ path: '/recorder-10' }),
    }
    await redis.client.hset('processors', untouched)
    await waitFor('the live heartbeat', () => readHeartbeatKey(livePrefix))

    crashed.kill('SIGKILL')
    await crashed.exited(15_000)
    app = undefined
    const before = await readStoredTasks(redis.client)
    expect(Object.keys(before.processors)).toHaveLength(4)
    const crashedText = (await redis.client.hget('processors', `${crashedPrefix}0`)) as string
    const published: string[] = []
    const subscriber = redis.client.duplicate()
    subscriber.on('message', (_channel: string, text: string) => published.push(text))
    await subscriber.subscribe('task_updates')

    const report = await waitFor(
      'the expired heartbeat',
      async () => {
        const current = await readHeartbeats(middleware!.recorder.tracker)
        return current.stalePrefixes.length > 0 ? current : undefined
      },
      15_000,
    )
    expect(report.stalePrefixes).toEqual([crashedPrefix])
    expect(report.live.map((heartbeat) => heartbeat.processor_id_prefix)).toEqual([livePrefix])
    const activeIds = Object.keys(before.processors)
    const staleIds = activeIds.filter((id) => isStaleProcessor(id, report.stalePrefixes))
    expect(staleIds).toEqual([`${crashedPrefix}0`])

    const result = await pruneStaleTasks(middleware.recorder.tracker)
    expect(result).toEqual({ removedTasks: 1, endedTasks: 1, stalePrefixes: [crashedPrefix] })
    const after = await readStoredTasks(redis.client)
    const kept = [`${livePrefix}0`, ...Object.keys(untouched)]
    expect(Object.keys(after.processors).sort()).toEqual(kept.sort())
    expect(await redis.client.smembers('heartbeats')).toEqual([livePrefix])

    // The request in flight when the process died is a completed task now, ended by cleanup.
    const active = JSON.parse(crashedText) as Record<string, unknown>
    const [endedText] = await redis.client.lrange('past_tasks', 0, -1)
    const ended = JSON.parse(endedText as string) as Record<string, unknown>
    expect(after.pastTasks).toHaveLength(1)
    expect(ended.ended_at).toMatch(WRITER_TIMESTAMP)
    expect(ended.updated_at).toBe(ended.ended_at)
    expect(ended.recorded_successfully).toBe(false)
    expect(ended.tags).toEqual({ 'web_top.outcome': 'process_stopped', ...(active.tags as object) })
    expect(ended).toEqual({
      ...active,
      updated_at: ended.ended_at,
      ended_at: ended.ended_at,
      recorded_successfully: false,
      tags: ended.tags,
    })
    expect(after.pastTasks[0]?.path).toBe('/wait')
    await waitFor('the published end', () => (published.includes(endedText as string) ? true : undefined))
    await subscriber.quit()

    const again = await pruneStaleTasks(middleware.recorder.tracker)
    expect(again).toEqual({ removedTasks: 0, endedTasks: 0, stalePrefixes: [] })
  })

  it('prune skips members that are not prefixes', async () => {
    middleware = topMiddleware({ trackerUrl: redis.url, handleSignals: false })
    const tracker = middleware.recorder.tracker
    await redis.client.hset('processors', 'pid:4242 tid:1', '{"path":"/python"}', 'web-1/77-0-1.0', '{"path":"/node"}')
    await redis.client.sadd('heartbeats', '', 'garbage')

    const report = await readHeartbeats(tracker)
    const result = await pruneStaleTasks(tracker)

    expect(report.stalePrefixes).toEqual([])
    expect(result).toEqual({ removedTasks: 0, endedTasks: 0, stalePrefixes: [] })
    expect(await redis.client.hkeys('processors')).toEqual(expect.arrayContaining(['pid:4242 tid:1', 'web-1/77-0-1.0']))
  })

  it('leftovers of the same host and pid go first', async () => {
    const startedAt = '2026-01-01T00:00:00.000000+00:00'
    // A start record in the recorder's field order, which cleanup can end.
    const leftover = (path: string) =>
      JSON.stringify({
        task_id: `old${path}`,
        path,
        started_at: startedAt,
        task_name: null,
        updated_at: startedAt,
        ended_at: null,
        recorded_successfully: null,
        status_code: null,
        status_message: null,
        response_headers: null,
        host_name: 'old-host',
        tags: { 'service.name': 'shop' },
      })
    let seeded: Record<string, string> = {}

    // The fresh process is recorder 1 of thread 0 of its pid; the entries
    // are seeded before it has loaded any code.
    const options = { framework: 'express5', topOptions: { trackerUrl: redis.url } } as const
    app = await startAppProcess(options, async (pid) => {
      const prefix = `${hostname()}/${pid}-0-1.`
      seeded = {
        [`${prefix}0`]: leftover('/leftover-0'),
        [`${prefix}7`]: leftover('/leftover-7'),
        [`${hostname()}/${pid}-0-10.0`]: leftover('/other-recorder'),
        [`pid:${pid} tid:0`]: leftover('/python'),
      }
      await redis.client.hset('processors', seeded)
    })
    expect(app.processorIdPrefix).toBe(`${hostname()}/${app.pid}-0-1.`)

    // The first request gets slot 0, the id of the first leftover.
    const running = app
    const held = fetch(`${running.url}/wait`)
    const stored = await waitFor('the live request', async () => {
      const current = await readStoredTasks(redis.client)
      return current.processors[`${running.processorIdPrefix}0`]?.path === '/wait' ? current : undefined
    })
    const expected = [
      `${running.processorIdPrefix}0`,
      `${hostname()}/${running.pid}-0-10.0`,
      `pid:${running.pid} tid:0`,
    ]
    expect(Object.keys(stored.processors).sort()).toEqual(expected.sort())
    const ended = stored.pastTasks.map((task) => task.path).sort()
    expect(ended).toEqual(['/leftover-0', '/leftover-7'])
    for (const task of stored.pastTasks) {
      expect(task.recorded_successfully).toBe(false)
      expect(task.started_at).toBe(startedAt)
      expect(task.ended_at).toMatch(WRITER_TIMESTAMP)
      expect(task.tags).toEqual({ 'web_top.outcome': 'process_stopped', 'service.name': 'shop' })
    }

    running.release()
    await held
  })
})

describe('heartbeat fields of the wrong type', () => {
  const prefix = 'vm/4242-0-1.'
  const valid = {
    processor_id_prefix: prefix,
    host_name: 'vm',
    process_id: 4242,
    thread_id: 0,
    processor_name: 'api-1',
    started_at: '2026-12-04T15:00:00.000000+00:00',
    updated_at: '2026-12-04T15:00:10.000000+00:00',
    ttl_ms: 30_000,
    event_loop_delay_p99_ms: 1.25,
    heap_used_bytes: 20_000_000,
    rss_bytes: 90_000_000,
    requests_in_flight: 2,
    requests_completed: 10,
    records_dropped: 0,
  }

  async function readStored(fields: Record<string, unknown>): Promise<Heartbeat | undefined> {
    await redis.client.sadd('heartbeats', prefix)
    await redis.client.set(`heartbeat:${prefix}`, JSON.stringify({ ...valid, ...fields }), 'PX', 60_000)
    const tracker = new RedisTracker({ url: redis.url })
    try {
      return (await readHeartbeats(tracker)).live[0]
    } finally {
      await tracker.close()
    }
  }

  it('keeps valid fields', async () => {
    expect(await readStored({})).toEqual(valid)
  })

  it.each([
    ['process_id', -5],
    ['process_id', 1.5],
    ['thread_id', '0'],
    ['requests_in_flight', 1e20],
    ['requests_completed', -1],
    ['records_dropped', { a: 1 }],
    ['rss_bytes', 'x'],
    ['heap_used_bytes', null],
    ['event_loop_delay_p99_ms', -3],
    ['ttl_ms', [30_000]],
    ['host_name', 42],
    ['processor_name', { name: 'api-1' }],
    ['started_at', 1_765_000_000_000],
    ['updated_at', true],
  ])('reads %s of %j as null', async (field, value) => {
    const heartbeat = await readStored({ [field]: value })

    expect(heartbeat?.[field as keyof Heartbeat]).toBeNull()
    expect(heartbeat).toEqual({ ...valid, [field]: null })
  })

  it('reads a missing field as null', async () => {
    const { records_dropped: _dropped, ...withoutDropped } = valid
    await redis.client.sadd('heartbeats', prefix)
    await redis.client.set(`heartbeat:${prefix}`, JSON.stringify(withoutDropped), 'PX', 60_000)

    expect(decodeHeartbeat(await redis.client.get(`heartbeat:${prefix}`))?.records_dropped).toBeNull()
  })

  it.each([['[]'], ['"text"'], ['{"processor_id_prefix":7}'], ['not json']])(
    'rejects %s as a heartbeat',
    (text) => {
      expect(decodeHeartbeat(text)).toBeNull()
    },
  )
})

describe('trackers without Redis', () => {
  it('memory tracker expires and prunes', async () => {
    const tracker = new MemoryTracker()
    const heartbeat = (prefix: string) => ({ processor_id_prefix: prefix }) as Heartbeat
    tracker.writeHeartbeat(heartbeat('h/1-0-1.'), 50)
    tracker.writeHeartbeat(heartbeat('h/2-0-1.'), 60_000)
    tracker.recordStart('h/1-0-1.0', '{"path":"/dead"}')
    tracker.recordStart('h/1-0-10.0', '{"path":"/other"}')
    tracker.recordStart('h/2-0-1.0', '{"path":"/alive"}')
    await new Promise((resolve) => setTimeout(resolve, 80))

    const report = await readHeartbeats(tracker)
    expect(report.stalePrefixes).toEqual(['h/1-0-1.'])
    expect(report.live.map((item) => item.processor_id_prefix)).toEqual(['h/2-0-1.'])
    expect(await pruneStaleTasks(tracker)).toEqual({ removedTasks: 1, endedTasks: 1, stalePrefixes: ['h/1-0-1.'] })
    const snapshot = await tracker.read()
    expect([...snapshot.active.keys()].sort()).toEqual(['h/1-0-10.0', 'h/2-0-1.0'])
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.completed[0]?.path).toBe('/dead')
    expect(snapshot.completed[0]?.recorded_successfully).toBe(false)
    expect(snapshot.completed[0]?.ended_at).toMatch(WRITER_TIMESTAMP)
    expect(snapshot.completed[0]?.tags).toEqual({ 'web_top.outcome': 'process_stopped' })
  })

  it('http tracker has no heartbeats', async () => {
    const tracker = new HttpTracker({ url: 'http://127.0.0.1:9/web-top', apiKey: 'k'.repeat(24) })
    expect(await readHeartbeats(tracker)).toEqual({ live: [], stalePrefixes: [] })
    expect(await pruneStaleTasks(tracker)).toEqual({ removedTasks: 0, endedTasks: 0, stalePrefixes: [] })
  })
})

describe('event-loop delay', () => {
  it('leaves out the sampling interval', () => {
    // An idle loop records the 20 ms interval and a little more.
    expect(toLoopDelayMs(20_020_000)).toBeCloseTo(0.02, 5)
    expect(toLoopDelayMs(150_000_000)).toBe(130)
    expect(toLoopDelayMs(19_000_000)).toBe(0)
  })

  it('rests on Node recording the interval itself', async () => {
    const histogram = monitorEventLoopDelay({ resolution: 20 })
    histogram.enable()
    await new Promise((resolve) => setTimeout(resolve, 300))
    histogram.disable()
    // libuv runs a timer against the loop's cached time, so a run can come
    // up to about a millisecond before its 20 ms (19.25 ms seen in CI).
    expect(histogram.min / 1e6).toBeGreaterThanOrEqual(18)
  })
})

describe('createStaleProcessorTest', () => {
  const isStale = createStaleProcessorTest(['web-1.example.com/7-0-1.', 'web-2/8-0-1.'])

  it.each([
    ['web-1.example.com/7-0-1.0', true],
    ['web-1.example.com/7-0-1.12', true],
    ['web-2/8-0-1.3', true],
    ['web-2/8-0-10.3', false],
    ['web-1.example.com/7-0-2.0', false],
    ['web-1.example.com/7-0-1', false],
    ['pid:7 tid:1', false],
    ['', false],
  ])('judges %j', (processorId, expected) => {
    expect(isStale(processorId)).toBe(expected)
    expect(isStaleProcessor(processorId, ['web-1.example.com/7-0-1.', 'web-2/8-0-1.'])).toBe(expected)
  })

  it('finds none without prefixes', () => {
    expect(createStaleProcessorTest([])('web-2/8-0-1.3')).toBe(false)
  })
})
