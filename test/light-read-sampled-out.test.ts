/**
 * The light read of requests left out by `completedSampleRate`. Their
 * active records are stored and deleted without a publish. The next
 * request in the same slot usually has a record of the same length, which
 * a listing of lengths cannot tell apart, so the light read fetches such
 * records at every read.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { VERIFY_SLICES } from '../src/cli/live'
import { SAMPLED_OUT_TAG } from '../src/task/derived'
import { DecodeCache, hashFieldName } from '../src/trackers/decode-cache'
import { RedisTracker } from '../src/trackers/redis-tracker'
import type { TaskSnapshot } from '../src/trackers/tracker'
import { sendRequest, startApp, waitFor, type HttpResult, type TestApp } from './helpers/http'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let app: TestApp | undefined
let reader: RedisTracker | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  app?.releaseWaiting()
  await app?.close()
  app = undefined
  await reader?.close()
  reader = undefined
})

/** Processor ids of the records a light read fetched: those it did not take from the cache. */
function fetchedIds(snapshot: TaskSnapshot): string[] {
  const reused = snapshot.reused
  if (reused === undefined) throw new Error('expected a light read, got a full read')
  return [...snapshot.active.keys()].filter((processorId) => !reused.has(processorId))
}

/** Waits until the processors hash has one field, and returns its name and its record's length. */
async function waitForOneField(): Promise<{ field: string; length: number }> {
  const field = await waitFor('one active entry', async () => {
    const fields = await redis.client.hkeys('processors')
    return fields.length === 1 ? fields[0] : undefined
  })
  return { field, length: await redis.client.hstrlen('processors', field) }
}

/** Ends the request held by `/wait` and waits until the recorder deleted its entry. */
async function endWaiting(running: TestApp, pending: Promise<HttpResult>): Promise<void> {
  running.releaseWaiting()
  await pending
  await waitFor('no active entry', async () => ((await redis.client.hlen('processors')) === 0 ? true : undefined))
}

describe.each([
  ['without verification', 0],
  ['with verification', VERIFY_SLICES],
])('light read of sampled-out requests %s', (_name, verifySlices) => {
  it('replaces an ended request with the next one in its slot', async () => {
    const running = await startApp('express5', { trackerUrl: redis.url, completedSampleRate: 0 })
    app = running
    const tracker = new RedisTracker({ url: redis.url })
    reader = tracker
    const cache = new DecodeCache()
    const readLight = () => tracker.read({ decodeCache: cache, changedOnly: true, verifySlices })

    const first = sendRequest(`${running.url}/wait`)
    const before = await waitForOneField()
    await tracker.read({ decodeCache: cache })
    const cached = await readLight()
    const endedTask = cached.active.get(before.field)
    expect(endedTask?.tags?.[SAMPLED_OUT_TAG]).toBe('true')
    // The final read must not verify the slot's slice, which would hide the bug.
    while (verifySlices > 0 && cache.verifiedSlice(verifySlices) === hashFieldName(before.field) % verifySlices) {
      await readLight()
    }

    // Ends and starts without a publish, between two reads of the live view.
    await endWaiting(running, first)
    const second = sendRequest(`${running.url}/wait`)
    const after = await waitForOneField()
    expect(after.field).toBe(before.field)
    expect(after.length).toBe(before.length)

    const light = await readLight()
    const task = light.active.get(after.field)
    expect(task).toBeDefined()
    expect(task?.task_id).not.toBe(endedTask?.task_id)
    expect(fetchedIds(light)).toEqual([after.field])

    await endWaiting(running, second)
    const empty = await readLight()
    expect(empty.active.size).toBe(0)
    expect(cache.sampledOutFields.size).toBe(0)
  })
})

describe('DecodeCache sampled-out fields', () => {
  const sampledOut = (id: string) => {
    return JSON.stringify({ ...activeRecord(id, '/a'), tags: { [SAMPLED_OUT_TAG]: 'true' } })
  }
  const sampled = (id: string) => JSON.stringify(activeRecord(id, '/a'))

  it('follows the records of light and full reads', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    reader = tracker
    await redis.client.hset('processors', 'p1', sampledOut('p1'), 'p2', sampled('p2'), 'p3', sampledOut('p3'))
    const cache = new DecodeCache()
    await tracker.read({ decodeCache: cache })
    expect([...cache.sampledOutFields].sort()).toEqual(['p1', 'p3'])

    // A sampled request in a slot of a sampled-out one, and a slot freed.
    await redis.client.hset('processors', 'p1', sampled('p1'))
    await redis.client.hdel('processors', 'p3')
    const light = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(fetchedIds(light).sort()).toEqual(['p1'])
    expect([...cache.sampledOutFields]).toEqual([])

    // No sampled-out record is left, so an unchanged listing fetches nothing.
    const unchanged = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(fetchedIds(unchanged)).toEqual([])

    await redis.client.hset('processors', 'p2', sampledOut('p2'))
    await tracker.read({ decodeCache: cache })
    expect([...cache.sampledOutFields]).toEqual(['p2'])
  })

  it('follows learned records', () => {
    const cache = new DecodeCache()
    const task = JSON.parse(sampledOut('p1'))
    cache.learnActive('p1', sampledOut('p1'), task)
    expect([...cache.sampledOutFields]).toEqual(['p1'])
    cache.forgetUnlisted('p1')
    expect([...cache.sampledOutFields]).toEqual([])

    cache.learnActive('p2', sampledOut('p2'), JSON.parse(sampledOut('p2')))
    cache.learnActive('p2', sampled('p2'), JSON.parse(sampled('p2')))
    expect([...cache.sampledOutFields]).toEqual([])
  })
})
