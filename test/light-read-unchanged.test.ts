/**
 * The light read of a processors hash whose field names and lengths are
 * the same as at the previous light read. It takes every record from the
 * decode cache without comparing each field. It must still return what a
 * light read that compares each field returns.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { DecodeCache, hashFieldName } from '../src/trackers/decode-cache'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { buildSnapshot } from '../src/trackers/snapshot'
import type { TaskSnapshot } from '../src/trackers/tracker'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

function activeById(snapshot: TaskSnapshot): Record<string, HttpTask> {
  return Object.fromEntries(snapshot.active)
}

let redis: TestRedis
let tracker: RedisTracker
let prefixCount = 0

/** Returns a new key prefix and the processors key under it, so tests do not share data. */
function newPrefix(): { prefix: string; processors: string } {
  prefixCount++
  const prefix = `unchanged${prefixCount}:`
  return { prefix, processors: `${prefix}processors` }
}

beforeAll(async () => {
  redis = await startRedis()
})

afterEach(async () => {
  await tracker?.close()
})

afterAll(async () => {
  await redis?.close()
})

async function seed(processors: string, ids: readonly string[]): Promise<void> {
  const fields = ids.flatMap((id) => [id, JSON.stringify(activeRecord(id, `/path/${id}`))])
  await redis.client.hset(processors, ...fields)
}

/**
 * Seeds records under a new prefix, then reads them as the live view
 * does: one full read and two light reads, the second of an unchanged listing.
 */
async function readUnchanged(ids: readonly string[]): Promise<{ processors: string; cache: DecodeCache }> {
  const { prefix, processors } = newPrefix()
  tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
  await seed(processors, ids)
  const cache = new DecodeCache()
  await tracker.read({ decodeCache: cache })
  await tracker.read({ decodeCache: cache, changedOnly: true })
  await tracker.read({ decodeCache: cache, changedOnly: true })
  return { processors, cache }
}

describe('light read of an unchanged listing', () => {
  it('returns what a full read returns', async () => {
    const { prefix, processors } = newPrefix()
    tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
    await seed(processors, ['p1', 'p2', 'p3'])
    await redis.client.hset(processors, 'broken', '{not json')
    const cache = new DecodeCache()
    const full = await tracker.read({ decodeCache: cache })

    const reads: TaskSnapshot[] = []
    for (let count = 0; count < 3; count++) reads.push(await tracker.read({ decodeCache: cache, changedOnly: true }))
    for (const light of reads) {
      expect(activeById(light)).toEqual(activeById(full))
      expect([...(light.reused ?? [])].sort()).toEqual(['p1', 'p2', 'p3'])
      expect(light.skipped).toBe(1)
      expect(light.skipReasons).toEqual(full.skipReasons)
    }
    expect(cache.size.active).toBe(4)
  })

  it('returns a new active map for every read', async () => {
    const { prefix, processors } = newPrefix()
    tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
    await seed(processors, ['p1', 'p2'])
    const cache = new DecodeCache()
    await tracker.read({ decodeCache: cache })
    const first = await tracker.read({ decodeCache: cache, changedOnly: true })
    const second = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(second.active).not.toBe(first.active)

    second.active.delete('p1')
    second.skipReasons.push('changed by the caller')
    const third = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect([...third.active.keys()].sort()).toEqual(['p1', 'p2'])
    expect(third.skipReasons).toEqual([])
  })

  it('fetches a record that changed length', async () => {
    const { processors, cache } = await readUnchanged(['p1', 'p2'])
    await redis.client.hset(processors, 'p1', JSON.stringify(activeRecord('p1', '/a/longer/path')))
    const changed = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(changed.active.get('p1')?.path).toBe('/a/longer/path')
    expect([...(changed.reused ?? [])]).toEqual(['p2'])

    const after = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(after.active.get('p1')?.path).toBe('/a/longer/path')
    expect([...(after.reused ?? [])].sort()).toEqual(['p1', 'p2'])
  })

  it('drops removed and adds new records', async () => {
    const { processors, cache } = await readUnchanged(['p1', 'p2'])
    await redis.client.hdel(processors, 'p1')
    await seed(processors, ['p3'])
    const changed = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect([...changed.active.keys()].sort()).toEqual(['p2', 'p3'])
    const after = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect([...after.active.keys()].sort()).toEqual(['p2', 'p3'])
    expect(cache.size.active).toBe(2)
  })

  it('takes a full read in between into account', async () => {
    const { processors, cache } = await readUnchanged(['p1'])
    // The same length, so the listing stays the same: only the full read fetches the new content.
    const rewritten = activeRecord('p1', '/path/p1', '2026-12-04T10:00:09.000000+00:00')
    await redis.client.hset(processors, 'p1', JSON.stringify(rewritten))
    const full = await tracker.read({ decodeCache: cache })
    expect(full.active.get('p1')).toMatchObject(rewritten)
    const light = await tracker.read({ decodeCache: cache, changedOnly: true })
    expect(light.active.get('p1')).toMatchObject(rewritten)
    expect(light.active.get('p1')).toBe(full.active.get('p1'))
  })
})

describe('DecodeCache listing', () => {
  const record = JSON.stringify(activeRecord('p1', '/a'))
  const listingOf = (ids: string[]) => ({
    joinedFields: ids.join('\0'),
    lengths: ids.map(() => Buffer.byteLength(record)),
    fields: ids,
    fieldHashes: Uint32Array.from(ids, hashFieldName),
  })

  it('matches the listing of the latest light read', () => {
    const cache = new DecodeCache()
    const listing = listingOf(['p1'])
    buildSnapshot([['p1', Buffer.from(record)]], [], null, cache, [], listing)
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBe(listing)
    expect(cache.findListing(listing.joinedFields, [listing.lengths[0] as number + 1])).toBeUndefined()
    expect(cache.findListing('p2', [...listing.lengths])).toBeUndefined()
  })

  it('forgets the listing after a full read', () => {
    const cache = new DecodeCache()
    const listing = listingOf(['p1'])
    buildSnapshot([['p1', Buffer.from(record)]], [], null, cache, [], listing)
    buildSnapshot([['p1', Buffer.from(record)]], [], null, cache)
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBeUndefined()
  })

  it('keeps no listing with an uncached field', () => {
    const cache = new DecodeCache()
    buildSnapshot([['p1', Buffer.from(record)]], [], null, cache)
    // p2 was listed as reused, but the cache has no record for it.
    const listing = listingOf(['p1', 'p2'])
    const snapshot = buildSnapshot([], [], null, cache, ['p1', 'p2'], listing)
    expect(snapshot.skipped).toBe(1)
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBeUndefined()
  })
})
