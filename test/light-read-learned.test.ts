/**
 * What the live view's light read takes from earlier reads and updates:
 * the listing compared with the previous one by position, records that
 * `task_updates` brought (`DecodeCache.learnActive`), and completed
 * records matched by their place in the list. Each case checks the result
 * against what Redis holds, with a full read or the records themselves.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { VERIFY_SLICES } from '../src/cli/live'
import { deriveProcessorId, LiveState } from '../src/cli/live-state'
import type { HttpTask } from '../src/task/http-task'
import { DecodeCache } from '../src/trackers/decode-cache'
import { RedisTracker } from '../src/trackers/redis-tracker'
import type { TaskSnapshot } from '../src/trackers/tracker'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const REWRITTEN_AT = '2026-12-04T10:00:09.000000+00:00'

let redis: TestRedis
let tracker: RedisTracker
let prefixCount = 0

beforeAll(async () => {
  redis = await startRedis()
})

afterEach(async () => {
  await tracker?.close()
})

afterAll(async () => {
  await redis?.close()
})

/** Starts a tracker on keys of its own and returns the names of its processors hash and completed list. */
function useNewKeys(): { processors: string; pastTasks: string } {
  prefixCount++
  const prefix = `learned${prefixCount}:`
  tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
  return { processors: `${prefix}processors`, pastTasks: `${prefix}past_tasks` }
}

function readLight(cache: DecodeCache): Promise<TaskSnapshot> {
  return tracker.read({ decodeCache: cache, changedOnly: true, verifySlices: VERIFY_SLICES })
}

/** Returns a full read's active tasks, with a cache of its own, by processor id. */
async function readFullActive(): Promise<Map<string, HttpTask>> {
  return (await tracker.read({ decodeCache: new DecodeCache() })).active
}

/** A generator of the same numbers on every run, so that a failure repeats. */
function createRandom(seed: number): () => number {
  let state = seed
  return () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
    return state / 2 ** 32
  }
}

/** Returns the processor id the live state derives for `activeRecord(taskId, …)`. */
function processorIdOf(taskId: string): string {
  return deriveProcessorId(activeRecord(taskId, '/a')) as string
}

describe('light read listing by position', () => {
  it('matches a full read under churn', async () => {
    const { processors } = useNewKeys()
    const random = createRandom(7)
    // Names that are prefixes of each other, and an empty one, test where one name ends.
    const names = new Set(['', 'p', 'p1', 'p10', 'p100', 'p1000'])
    for (let index = 0; index < 300; index++) names.add(`web-${index % 3}/${index}`)
    await redis.client.hset(processors, ...[...names].flatMap((name) => [name, JSON.stringify(activeRecord(name, '/a'))]))
    const cache = new DecodeCache()
    await tracker.read({ decodeCache: cache })

    let added = 0
    for (let round = 0; round < 40; round++) {
      const present = [...names]
      for (let change = 0; change < 12; change++) {
        const name = present[Math.floor(random() * present.length)] as string
        const roll = random()
        if (roll < 0.3) {
          await redis.client.hdel(processors, name)
          names.delete(name)
        } else if (roll < 0.6) {
          // A longer path than in any round before: another length, which the listing shows.
          await redis.client.hset(processors, name, JSON.stringify(activeRecord(name, `/b/${'x'.repeat(round + 1)}`)))
        } else {
          const fresh = `${name}-${added++}`
          await redis.client.hset(processors, fresh, JSON.stringify(activeRecord(fresh, '/a')))
          names.add(fresh)
        }
      }
      const light = await readLight(cache)
      expect(light.reused, `round ${round}`).toBeDefined()
      const full = await readFullActive()
      expect([...light.active.keys()].sort(), `round ${round}`).toEqual([...full.keys()].sort())
      for (const [name, task] of full) expect(light.active.get(name), `${name} in round ${round}`).toEqual(task)
    }
  })

  it('matches a full read after the hash grows', async () => {
    // Redis lists a small hash (a listpack) in insertion order, and a large one (a table) by bucket.
    const { processors } = useNewKeys()
    const cache = new DecodeCache()
    await redis.client.hset(processors, 'p0', JSON.stringify(activeRecord('p0', '/a')))
    await tracker.read({ decodeCache: cache })
    for (let size = 1; size < 1_200; size += 150) {
      const fields = Array.from({ length: 150 }, (_, index) => `p${size + index}`)
      await redis.client.hset(processors, ...fields.flatMap((name) => [name, JSON.stringify(activeRecord(name, '/a'))]))
      const light = await readLight(cache)
      const full = await readFullActive()
      expect([...light.active.keys()].sort()).toEqual([...full.keys()].sort())
      for (const [name, task] of full) expect(light.active.get(name), name).toEqual(task)
    }
  })
})

describe('records learned from updates', () => {
  function createState(cache: DecodeCache): LiveState {
    return new LiveState({ windowMs: 60_000, completedLimit: 100, nowMs: Date.now(), decodeCache: cache })
  }

  it('reads a published record as the state task', async () => {
    const { processors } = useNewKeys()
    const cache = new DecodeCache()
    const state = createState(cache)
    await redis.client.hset(processors, processorIdOf('old'), JSON.stringify(activeRecord('old', '/a')))
    state.beginResync()
    state.finishResync(await tracker.read({ decodeCache: cache }), Date.now())

    // The recorder stores and publishes the same text.
    const json = JSON.stringify(activeRecord('new', '/a'))
    await redis.client.hset(processors, processorIdOf('new'), json)
    state.applyUpdate(json, Date.now())
    const stateTask = [...state.active.values()].find((entry) => entry.task.task_id === 'new')?.task

    const light = await readLight(cache)
    expect(light.reused?.has(processorIdOf('new'))).toBe(true)
    expect(light.active.get(processorIdOf('new'))).toBe(stateTask)
    state.beginResync()
    state.finishResync(light, Date.now())
    expect([...state.active.values()].find((entry) => entry.task.task_id === 'new')?.task).toBe(stateTask)
  })

  it('shows an unpublished same-length rewrite of a learned record', async () => {
    const { processors } = useNewKeys()
    const cache = new DecodeCache()
    const state = createState(cache)
    state.beginResync()
    state.finishResync(await tracker.read({ decodeCache: cache }), Date.now())
    const json = JSON.stringify(activeRecord('r', '/a'))
    await redis.client.hset(processors, processorIdOf('r'), json)
    state.applyUpdate(json, Date.now())
    const rewritten = JSON.stringify(activeRecord('r', '/a', REWRITTEN_AT))
    expect(rewritten.length).toBe(json.length)
    await redis.client.hset(processors, processorIdOf('r'), rewritten)

    const updatedAt: string[] = []
    for (let read = 0; read < VERIFY_SLICES; read++) {
      state.beginResync()
      state.finishResync(await readLight(cache), Date.now())
      updatedAt.push(String([...state.active.values()][0]?.task.updated_at))
    }
    expect(updatedAt).toContain(REWRITTEN_AT)
    expect(updatedAt.at(-1)).toBe(REWRITTEN_AT)
  })

  it('learns updates of a read in flight after it', async () => {
    useNewKeys()
    const cache = new DecodeCache()
    const state = createState(cache)
    state.beginResync()
    const snapshot = await tracker.read({ decodeCache: cache })
    state.applyUpdate(JSON.stringify(activeRecord('during', '/a')), Date.now())
    expect(cache.activeField(processorIdOf('during'))).toBeUndefined()
    state.finishResync(snapshot, Date.now())
    expect(cache.activeField(processorIdOf('during'))).toBeDefined()
  })

  it('forgets a request that ended between reads', async () => {
    useNewKeys()
    const cache = new DecodeCache()
    const state = createState(cache)
    state.beginResync()
    state.finishResync(await tracker.read({ decodeCache: cache }), Date.now())
    const started = activeRecord('quick', '/a')
    state.applyUpdate(JSON.stringify(started), Date.now())
    expect(cache.size.active).toBe(1)
    state.applyUpdate(JSON.stringify({ ...started, ended_at: REWRITTEN_AT, status_code: 200 }), Date.now())
    expect(cache.size.active).toBe(0)
  })

  it('keeps an ended record a light read listed', async () => {
    const { processors } = useNewKeys()
    const cache = new DecodeCache()
    const state = createState(cache)
    const json = JSON.stringify(activeRecord('listed', '/a'))
    await redis.client.hset(processors, processorIdOf('listed'), json)
    state.beginResync()
    state.finishResync(await tracker.read({ decodeCache: cache }), Date.now())
    state.beginResync()
    state.finishResync(await readLight(cache), Date.now())
    state.applyUpdate(JSON.stringify({ ...activeRecord('listed', '/a'), ended_at: REWRITTEN_AT }), Date.now())
    // Still in the hash: the next light read lists it, and it must be cached or fetched.
    expect(cache.size.active).toBe(1)
    const light = await readLight(cache)
    expect(light.active.get(processorIdOf('listed'))?.task_id).toBe('listed')
  })
})

describe('completed records by position', () => {
  function completedJson(id: string, path = '/c'): string {
    return JSON.stringify({ ...activeRecord(id, path), ended_at: REWRITTEN_AT, status_code: 200 })
  }

  it('decodes only pushed and rewritten records', async () => {
    const { pastTasks } = useNewKeys()
    const cache = new DecodeCache()
    await redis.client.lpush(pastTasks, ...['c1', 'c2', 'c3', 'c4'].map((id) => completedJson(id)))
    const first = await tracker.read({ decodeCache: cache })
    await redis.client.lpush(pastTasks, completedJson('c5'), completedJson('c6'))
    // A record rewritten in place, which no recorder does, is decoded again.
    await redis.client.lset(pastTasks, 4, completedJson('c2', '/changed'))
    const second = await tracker.read({ decodeCache: cache })

    expect(second.completed.map((task) => task.task_id)).toEqual(['c6', 'c5', 'c4', 'c3', 'c2', 'c1'])
    const byId = new Map(first.completed.map((task) => [task.task_id, task]))
    expect(second.completed[2]).toBe(byId.get('c4'))
    expect(second.completed[3]).toBe(byId.get('c3'))
    expect(second.completed[4]).not.toBe(byId.get('c2'))
    expect(second.completed[4]?.path).toBe('/changed')
    expect(second.completed[5]).toBe(byId.get('c1'))
  })

  it('reuses the head record of a list pushed again', async () => {
    const { pastTasks } = useNewKeys()
    const cache = new DecodeCache()
    await redis.client.lpush(pastTasks, completedJson('c1'))
    const first = await tracker.read({ decodeCache: cache })
    await redis.client.del(pastTasks)
    await redis.client.lpush(pastTasks, completedJson('c2'), completedJson('c1'))
    const second = await tracker.read({ decodeCache: cache })
    expect(second.completed.map((task) => task.task_id)).toEqual(['c1', 'c2'])
    expect(second.completed[0]).toBe(first.completed[0])
  })
})
