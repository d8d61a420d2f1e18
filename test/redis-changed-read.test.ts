/**
 * The light read (`read({ changedOnly: true, decodeCache })`): it fetches
 * only the active records that are new to the cache or changed length.
 * Changes are made with raw Redis commands, without publishing, and the
 * result is compared with a full read of the same data.
 */
import Redis, { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LiveState } from '../src/cli/live-state'
import type { HttpTask } from '../src/task/http-task'
import { DecodeCache } from '../src/trackers/decode-cache'
import { createTrackerFromUrl } from '../src/trackers/from-url'
import { MemoryTracker } from '../src/trackers/memory-tracker'
import { RedisTracker } from '../src/trackers/redis-tracker'
import type { TaskSnapshot } from '../src/trackers/tracker'
import { startCli } from './helpers/cli'
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

function completedRecord(taskId: string): HttpTask {
  return { ...activeRecord(taskId, '/done'), ended_at: '2026-12-04T10:00:01.000000+00:00', status_code: 200 }
}

/** Active tasks of a snapshot as plain objects, by processor id. */
function activeById(snapshot: TaskSnapshot): Record<string, HttpTask> {
  return Object.fromEntries(snapshot.active)
}

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

describe('RedisTracker light read', () => {
  it('matches a full read after unpublished changes', async () => {
    const key = 'light:processors'
    const tracker = new RedisTracker({ url: redis.url, keyPrefix: 'light:' })
    try {
      const initial: string[] = []
      for (const id of ['kept', 'removed', 'same-content', 'longer', 'shorter']) {
        initial.push(id, JSON.stringify(activeRecord(id, '/initial')))
      }
      await redis.client.hset(key, ...initial)
      await redis.client.lpush('light:past_tasks', JSON.stringify(completedRecord('c1')))
      const cache = new DecodeCache()
      const first = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect(first.active.size).toBe(5)

      await redis.client.hset(key, 'added', JSON.stringify(activeRecord('added', '/new')))
      await redis.client.hdel(key, 'removed')
      await redis.client.hset(key, 'same-content', JSON.stringify(activeRecord('same-content', '/initial')))
      await redis.client.hset(key, 'longer', JSON.stringify(activeRecord('longer', '/initial/and/more')))
      await redis.client.hset(key, 'shorter', JSON.stringify(activeRecord('shorter', '/')))
      await redis.client.lpush('light:past_tasks', JSON.stringify(completedRecord('c2')))

      const light = await tracker.read({ decodeCache: cache, changedOnly: true })
      const full = await tracker.read()
      expect(activeById(light)).toEqual(activeById(full))
      expect([...light.active.keys()].sort()).toEqual(['added', 'kept', 'longer', 'same-content', 'shorter'])
      expect(light.completed).toEqual(full.completed)
      expect(light.completed.map((task) => task.task_id)).toEqual(['c2', 'c1'])
      expect([...(light.reused ?? [])].sort()).toEqual(['kept', 'same-content'])
      expect(full.reused).toBeUndefined()
      expect(cache.size.active).toBe(5)
    } finally {
      await tracker.close()
    }
  })

  it('misses a same-length rewrite until a full read', async () => {
    const key = 'same:processors'
    const tracker = new RedisTracker({ url: redis.url, keyPrefix: 'same:' })
    try {
      await redis.client.hset(key, 'p1', JSON.stringify(activeRecord('p1', '/a')))
      const cache = new DecodeCache()
      await tracker.read({ decodeCache: cache })

      const rewritten = activeRecord('p1', '/b', '2026-12-04T10:00:09.000000+00:00')
      await redis.client.hset(key, 'p1', JSON.stringify(rewritten))

      const light = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect(light.active.get('p1')?.path).toBe('/a')
      expect(light.reused?.has('p1')).toBe(true)

      const full = await tracker.read({ decodeCache: cache })
      expect(full.active.get('p1')).toMatchObject(rewritten)
      const lightAfter = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect(lightAfter.active.get('p1')).toMatchObject(rewritten)
    } finally {
      await tracker.close()
    }
  })

  it('reads everything when EVAL is rejected', async () => {
    const password = 'reader-secret-71c2'
    const admin = new Redis(redis.url)
    await admin.call('ACL', 'SETUSER', 'noscript', 'on', `>${password}`, '~*', '&*', '+@all', '-eval', '-evalsha')
    admin.disconnect()
    const warnings: string[] = []
    const logger = { warn: (_object: object, message: string) => warnings.push(message), error() {} }
    const tracker = new RedisTracker({
      url: `redis://noscript:${password}@127.0.0.1:${redis.port}`,
      keyPrefix: 'acl:',
      logger,
    })
    try {
      await redis.client.hset('acl:processors', 'p1', JSON.stringify(activeRecord('p1', '/a')))
      const cache = new DecodeCache()
      await tracker.read({ decodeCache: cache })
      await redis.client.hset('acl:processors', 'p2', JSON.stringify(activeRecord('p2', '/b')))

      const snapshot = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect([...snapshot.active.keys()].sort()).toEqual(['p1', 'p2'])
      expect(snapshot.reused).toBeUndefined()
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain('rejected the script')

      const again = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect(again.reused).toBeUndefined()
      expect(warnings).toHaveLength(1)
    } finally {
      await tracker.close()
    }
  })

  it('reads everything for a field name with NUL', async () => {
    const tracker = new RedisTracker({ url: redis.url, keyPrefix: 'nul:' })
    try {
      await redis.client.hset('nul:processors', 'p\u00001', JSON.stringify(activeRecord('p1', '/a')))
      const cache = new DecodeCache()
      await tracker.read({ decodeCache: cache })

      const snapshot = await tracker.read({ decodeCache: cache, changedOnly: true })
      expect([...snapshot.active.keys()]).toEqual(['p\u00001'])
      expect(snapshot.reused).toBeUndefined()
    } finally {
      await tracker.close()
    }
  })

  it('is a full read on the memory tracker', async () => {
    const tracker = new MemoryTracker()
    tracker.recordStart('p1', JSON.stringify(activeRecord('p1', '/a')))
    const snapshot = await tracker.read({ decodeCache: new DecodeCache(), changedOnly: true })
    expect([...snapshot.active.keys()]).toEqual(['p1'])
    expect(snapshot.reused).toBeUndefined()
    await tracker.close()
  })
})

describe('LiveState after a light read', () => {
  /** Builds the snapshot of a light read that reused every record from the cache. */
  function reusedSnapshot(active: Array<[string, HttpTask]>): TaskSnapshot {
    return {
      active: new Map(active),
      completed: [],
      skipped: 0,
      skipReasons: [],
      lastClearedAt: null,
      reused: new Set(active.map(([processorId]) => processorId)),
    }
  }

  /** Builds the snapshot of a full read. */
  function fullSnapshot(active: Array<[string, HttpTask]>): TaskSnapshot {
    return { active: new Map(active), completed: [], skipped: 0, skipReasons: [], lastClearedAt: null }
  }

  function createState(): LiveState {
    return new LiveState({ windowMs: 60_000, completedLimit: 100, nowMs: Date.now() })
  }

  it('keeps the newer task from the stream', () => {
    const state = createState()
    const cached = activeRecord('t1', '/a')
    state.beginResync()
    state.finishResync(fullSnapshot([['p1', cached]]), Date.now())

    const updated = activeRecord('t1', '/a', '2026-12-04T10:00:05.000000+00:00')
    state.applyUpdate(JSON.stringify(updated), Date.now())
    state.beginResync()
    const result = state.finishResync(reusedSnapshot([['p1', cached]]), Date.now())

    expect(result.unverified).toBe(0)
    const entries = [...state.active.values()]
    expect(entries).toHaveLength(1)
    expect(entries[0]?.task.updated_at).toBe(updated.updated_at)
    expect(entries[0]?.processorId).toBe('p1')
  })

  it('counts a reused task the stream ended', () => {
    const state = createState()
    const cached = activeRecord('t1', '/a')
    state.beginResync()
    state.finishResync(fullSnapshot([['web-1/4242-0-t1', cached]]), Date.now())

    state.applyUpdate(JSON.stringify({ ...cached, ended_at: '2026-12-04T10:00:02.000000+00:00' }), Date.now())
    state.beginResync()
    const result = state.finishResync(reusedSnapshot([['web-1/4242-0-t1', cached]]), Date.now())

    expect(result.unverified).toBe(1)
    expect(state.active.size).toBe(0)
  })

  it('keeps a task the stream started', () => {
    const state = createState()
    const cached = activeRecord('t1', '/a')
    state.beginResync()
    state.finishResync(fullSnapshot([['web-1/4242-0-t1', cached]]), Date.now())

    state.applyUpdate(JSON.stringify({ ...cached, ended_at: '2026-12-04T10:00:02.000000+00:00' }), Date.now())
    const next = { ...activeRecord('t2', '/a'), process_internal_id: 't1' }
    state.applyUpdate(JSON.stringify(next), Date.now())
    state.beginResync()
    const result = state.finishResync(reusedSnapshot([['web-1/4242-0-t1', cached]]), Date.now())

    expect(result.unverified).toBe(0)
    const tasks = [...state.active.values()].map((entry) => entry.task.task_id)
    expect(tasks).toEqual(['t2'])
  })

  it('drops a task that ended without a message', () => {
    const state = createState()
    const leftOut = activeRecord('t1', '/a')
    state.beginResync()
    state.finishResync(fullSnapshot([['web-1/4242-0-t1', leftOut]]), Date.now())

    // A request left out by sampling ends unpublished, and the next one in its field is published.
    const next = { ...activeRecord('t2', '/a'), process_internal_id: 't1' }
    state.applyUpdate(JSON.stringify(next), Date.now())
    state.beginResync()
    const result = state.finishResync(reusedSnapshot([['web-1/4242-0-t1', next]]), Date.now())

    expect(result.unverified).toBe(0)
    const tasks = [...state.active.values()].map((entry) => entry.task.task_id)
    expect(tasks).toEqual(['t2'])
  })

  it('replaces and drops tasks like a full read', () => {
    const state = createState()
    const kept = activeRecord('kept', '/a')
    const changed = activeRecord('changed', '/a')
    const gone = activeRecord('gone', '/a')
    const replaced = activeRecord('old-task', '/a')
    state.beginResync()
    state.finishResync(
      fullSnapshot([
        ['p-kept', kept],
        ['p-changed', changed],
        ['p-gone', gone],
        ['p-replaced', replaced],
      ]),
      Date.now(),
    )

    const changedNow = activeRecord('changed', '/a/longer')
    const newTask = activeRecord('new-task', '/b')
    const added = activeRecord('added', '/c')
    const snapshot = reusedSnapshot([['p-kept', kept]])
    const active = snapshot.active as Map<string, HttpTask>
    active.set('p-changed', changedNow)
    active.set('p-replaced', newTask)
    active.set('p-added', added)
    state.beginResync()
    const result = state.finishResync(snapshot, Date.now())

    expect(result.unverified).toBe(0)
    const byProcessor = new Map([...state.active.values()].map((entry) => [entry.processorId, entry.task]))
    expect([...byProcessor.keys()].sort()).toEqual(['p-added', 'p-changed', 'p-kept', 'p-replaced'])
    expect(byProcessor.get('p-kept')).toBe(kept)
    expect(byProcessor.get('p-changed')).toBe(changedNow)
    expect(byProcessor.get('p-replaced')).toBe(newTask)
    expect(byProcessor.get('p-added')).toBe(added)
  })
})

describe('live view resyncs', () => {
  /** Returns how many times Redis ran `command` since the last CONFIG RESETSTAT. */
  async function countCalls(command: string): Promise<number> {
    const info = await redis.client.info('commandstats')
    const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)
    return match === null ? 0 : Number(match[1])
  }

  it('reads everything once, then changes only', async () => {
    await redis.client.hset('view:processors', 'p1', JSON.stringify(activeRecord('p1', '/seeded')))
    await redis.client.config('RESETSTAT')
    const live = startCli(['live', '--tracker-url', redis.url, '--prefix', 'view:', '--refresh-rate', '0.1'])
    try {
      await live.waitFor((stdout) => stdout.includes('/seeded'), 'the seeded request')
      await new Promise((resolveWait) => setTimeout(resolveWait, 1_000))
      await redis.client.hset('view:processors', 'p2', JSON.stringify(activeRecord('p2', '/added-unpublished')))
      await live.waitFor((stdout) => stdout.includes('/added-unpublished'), 'the request added without a publish')
    } finally {
      await live.stop()
    }

    // Ten resyncs a second for more than a second: every one after the first is light.
    expect(await countCalls('hgetall')).toBe(1)
    expect(await countCalls('evalsha')).toBeGreaterThanOrEqual(5)
    expect(await countCalls('hmget')).toBeGreaterThanOrEqual(1)
  }, 30_000)
})

describe('light read on Redis Cluster', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startRedisCluster()
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('matches a full read', async () => {
    const prefix = '{light}:'
    const tracker = createTrackerFromUrl(cluster.url, { keyPrefix: prefix })
    const seeds = cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }))
    const raw = new Cluster(seeds)
    try {
      tracker.recordStart('p1', JSON.stringify(activeRecord('p1', '/a')))
      tracker.recordStart('p2', JSON.stringify(activeRecord('p2', '/b')))
      await tracker.flush()
      const cache = new DecodeCache()
      await tracker.read({ decodeCache: cache })

      await raw.hset(`${prefix}processors`, 'p3', JSON.stringify(activeRecord('p3', '/c')))
      await raw.hset(`${prefix}processors`, 'p2', JSON.stringify(activeRecord('p2', '/b/longer')))
      await raw.hdel(`${prefix}processors`, 'p1')

      const light = await tracker.read({ decodeCache: cache, changedOnly: true })
      const full = await tracker.read()
      expect(activeById(light)).toEqual(activeById(full))
      expect([...light.active.keys()].sort()).toEqual(['p2', 'p3'])
      expect([...(light.reused ?? ['not a light read'])]).toEqual([])
    } finally {
      raw.disconnect()
      await tracker.close()
    }
  }, 30_000)
})
