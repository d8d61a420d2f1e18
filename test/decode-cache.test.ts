import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseColumnList, DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS } from '../src/cli/columns'
import { LIVE_COMPLETED_LIMIT, LIVE_DEFAULTS } from '../src/cli/live'
import { createViewSettings } from '../src/cli/live-input'
import { renderLiveFrame } from '../src/cli/live-render'
import { LiveState } from '../src/cli/live-state'
import type { HttpTask } from '../src/task/http-task'
import { DecodeCache } from '../src/trackers/decode-cache'
import { MemoryTracker } from '../src/trackers/memory-tracker'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let tracker: RedisTracker

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
  tracker = new RedisTracker({ url: redis.url })
  await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
})

afterEach(async () => {
  await tracker.close()
})

const startedAt = '2026-12-04T10:00:00.000000+00:00'

function activeJson(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ task_id: id, path: `/a/${id}`, started_at: startedAt, ended_at: null, ...extra })
}

function completedJson(id: string): string {
  const endedAt = `2026-12-04T10:00:${id.padStart(2, '0').slice(-2)}.000000+00:00`
  return JSON.stringify({ task_id: id, path: `/c/${id}`, started_at: startedAt, ended_at: endedAt, status_code: 200 })
}

/** Stores active records under processor ids `p-<id>`. */
async function storeActive(ids: string[], extra: Record<string, unknown> = {}): Promise<void> {
  const fields = ids.flatMap((id) => [`p-${id}`, activeJson(id, extra)])
  await redis.client.hset('processors', ...fields)
}

/** Pushes completed records the way the recorder does: newest first. */
async function pushCompleted(ids: string[]): Promise<void> {
  await redis.client.lpush('past_tasks', ...ids.map(completedJson))
}

function activeTask(snapshot: { active: Map<string, HttpTask> }, processorId: string): HttpTask {
  const task = snapshot.active.get(processorId)
  if (task === undefined) throw new Error(`no active task under processor id ${processorId}`)
  return task
}

describe('decode cache with the Redis tracker', () => {
  it('reuses unchanged records', async () => {
    await storeActive(['1', '2'])
    await pushCompleted(['10', '11'])
    const cache = new DecodeCache()

    const first = await tracker.read({ decodeCache: cache })
    const second = await tracker.read({ decodeCache: cache })

    expect(activeTask(second, 'p-1')).toBe(activeTask(first, 'p-1'))
    expect(activeTask(second, 'p-2')).toBe(activeTask(first, 'p-2'))
    expect(second.completed).toHaveLength(2)
    expect(second.completed[0]).toBe(first.completed[0])
    expect(second.completed[1]).toBe(first.completed[1])
  })

  it('decodes changed records again', async () => {
    await storeActive(['1', '2'])
    const cache = new DecodeCache()
    const first = await tracker.read({ decodeCache: cache })

    await storeActive(['2'], { method: 'POST' })
    const second = await tracker.read({ decodeCache: cache })

    expect(activeTask(second, 'p-1')).toBe(activeTask(first, 'p-1'))
    expect(activeTask(second, 'p-2')).not.toBe(activeTask(first, 'p-2'))
    expect(activeTask(second, 'p-2').method).toBe('POST')
    expect(activeTask(first, 'p-2').method).toBeUndefined()
  })

  it('reuses completed records after a push', async () => {
    await pushCompleted(['10', '11'])
    const cache = new DecodeCache()
    const first = await tracker.read({ decodeCache: cache })

    await pushCompleted(['12'])
    const second = await tracker.read({ decodeCache: cache })

    expect(second.completed.map((task) => task.task_id)).toEqual(['12', '11', '10'])
    expect(second.completed[1]).toBe(first.completed[0])
    expect(second.completed[2]).toBe(first.completed[1])
  })

  it('drops removed, decodes added records', async () => {
    await storeActive(['1', '2'])
    const cache = new DecodeCache()
    await tracker.read({ decodeCache: cache })

    await redis.client.hdel('processors', 'p-1')
    await storeActive(['3'])
    const second = await tracker.read({ decodeCache: cache })

    expect([...second.active.keys()].sort()).toEqual(['p-2', 'p-3'])
    expect(activeTask(second, 'p-3').task_id).toBe('3')
    expect(cache.size.active).toBe(2)
  })

  it('skips a record turned invalid JSON', async () => {
    await storeActive(['1', '2'])
    await pushCompleted(['10'])
    const cache = new DecodeCache()
    const first = await tracker.read({ decodeCache: cache })

    await redis.client.hset('processors', 'p-2', '{"task_id": "2", broken')
    await redis.client.lpush('past_tasks', 'not json')
    const second = await tracker.read({ decodeCache: cache })

    expect(second.skipped).toBe(2)
    expect(second.skipReasons).toEqual([
      'active task of processor "p-2": invalid JSON',
      'completed task at index 0: invalid JSON',
    ])
    expect(second.active.has('p-2')).toBe(false)
    expect(activeTask(second, 'p-1')).toBe(activeTask(first, 'p-1'))
    expect(second.completed).toEqual([first.completed[0]])

    const third = await tracker.read({ decodeCache: cache })
    expect(third.skipped).toBe(2)

    await storeActive(['2'])
    const fourth = await tracker.read({ decodeCache: cache })
    expect(fourth.skipped).toBe(1)
    expect(activeTask(fourth, 'p-2').task_id).toBe('2')
  })

  it('size follows Redis under churn', async () => {
    const cache = new DecodeCache()
    await storeActive(Array.from({ length: 50 }, (_, index) => String(index)))
    await pushCompleted(Array.from({ length: 20 }, (_, index) => String(index)))
    let nextId = 50

    for (let read = 0; read < 40; read++) {
      // Each round removes 5 active records, adds 5, rewrites 5 and pushes 3 completed ones.
      const ids = (await redis.client.hkeys('processors')).slice(0, 10)
      await redis.client.hdel('processors', ...ids.slice(0, 5))
      await storeActive(ids.slice(5).map((id) => id.slice(2)), { updated_at: `round ${read}` })
      await storeActive(Array.from({ length: 5 }, () => String(nextId++)))
      await pushCompleted(Array.from({ length: 3 }, () => String(nextId++)))
      await redis.client.ltrim('past_tasks', 0, 19)

      const snapshot = await tracker.read({ decodeCache: cache })

      expect(snapshot.skipped).toBe(0)
      expect(cache.size.active).toBe(await redis.client.hlen('processors'))
      expect(cache.size.completed).toBe(new Set(await redis.client.lrange('past_tasks', 0, -1)).size)
    }
    expect(cache.size).toEqual({ active: 50, completed: 20 })
  })

  it('keeps completed records within limit', async () => {
    await pushCompleted(['10', '11', '12', '13'])
    const cache = new DecodeCache()

    const snapshot = await tracker.read({ completedLimit: 2, decodeCache: cache })

    expect(snapshot.completed.map((task) => task.task_id)).toEqual(['13', '12'])
    expect(cache.size.completed).toBe(2)
  })

  it('new objects without a cache', async () => {
    await storeActive(['1'])

    const first = await tracker.read()
    const second = await tracker.read()

    expect(activeTask(second, 'p-1')).not.toBe(activeTask(first, 'p-1'))
    expect(activeTask(second, 'p-1')).toEqual(activeTask(first, 'p-1'))
  })
})

describe('decode cache', () => {
  it('keeps entries of unfinished read', () => {
    const cache = new DecodeCache()
    const first = cache.beginRead()
    const decoded = first.decodeActive('p-1', activeJson('1'))
    first.finish()

    const unfinished = cache.beginRead()
    unfinished.decodeActive('p-2', activeJson('2'))
    const next = cache.beginRead()

    expect(next.decodeActive('p-1', activeJson('1'))).toBe(decoded)
    expect(cache.size.active).toBe(1)
  })

  it('works with the memory tracker', async () => {
    const memory = new MemoryTracker()
    memory.recordStart('p-1', activeJson('1'))
    memory.recordEnd('p-2', completedJson('20'))
    const cache = new DecodeCache()

    const first = await memory.read({ decodeCache: cache })
    const second = await memory.read({ decodeCache: cache })

    expect(activeTask(second, 'p-1')).toBe(activeTask(first, 'p-1'))
    expect(second.completed[0]).toBe(first.completed[0])
    await memory.close()
  })

  it('live view leaves tasks unchanged', async () => {
    await storeActive(Array.from({ length: 30 }, (_, index) => String(index)), { method: 'GET' })
    await pushCompleted(Array.from({ length: 30 }, (_, index) => String(index)))
    const snapshot = await tracker.read({ completedLimit: LIVE_COMPLETED_LIMIT, decodeCache: new DecodeCache() })
    for (const task of [...snapshot.active.values(), ...snapshot.completed]) deepFreeze(task)

    const state = new LiveState({ windowMs: 60_000, completedLimit: LIVE_COMPLETED_LIMIT, nowMs: Date.now() })
    state.beginResync()
    state.finishResync(snapshot, Date.now())
    state.applyUpdate(completedJson('5'), Date.now())
    const frame = renderLiveFrame({
      data: {
        nowMs: Date.now(),
        active: [...state.active.values()].map((entry) => ({ task: entry.task, orphaned: false })),
        completed: [...state.completed],
        figures: state.stats.figures(Date.now()),
        routes: state.stats.routeFigures(Date.now()),
        hosts: 1,
        processes: 1,
        heartbeats: state.heartbeats,
        orphansByPrefix: new Map(),
        lastUpdateMs: state.lastUpdateMs,
        skipped: state.skipped,
        skipReasons: state.skipReasons,
        skippedUpdates: state.skippedUpdates,
        updateSkipReasons: state.updateSkipReasons,
      },
      settings: createViewSettings(),
      source: { kind: 'stream', connected: true },
      trackerUrl: redis.url,
      width: 120,
      height: 40,
      activeColumns: parseColumnList(DEFAULT_ACTIVE_COLUMNS),
      completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
      completedLimit: LIVE_COMPLETED_LIMIT,
      thresholds: {
        slowAfterMs: LIVE_DEFAULTS.slowAfterSeconds * 1000,
        stallAfterMs: LIVE_DEFAULTS.stallAfterSeconds * 1000,
      },
      colour: false,
      interactive: true,
      notices: [],
    })

    expect(frame.lines.join('\n')).toContain('/a/1')
  })
})

/** Freezes an object and everything it contains, so that a write to it throws in strict code. */
function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const item of Object.values(value)) deepFreeze(item)
}
