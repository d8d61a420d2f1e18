/**
 * The light read's verification (`ReadOptions.verifySlices`). Each light
 * read also fetches one slice of the records whose length did not change
 * and compares them with the decode cache. So a record rewritten with the
 * same length and not published is read within `verifySlices` light reads,
 * without a full read. Changes are made with raw Redis commands.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LIVE_COMPLETED_LIMIT, resyncReadOptions, VERIFY_SLICES } from '../src/cli/live'
import { DecodeCache, hashFieldName, type FieldListing } from '../src/trackers/decode-cache'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { buildSnapshot } from '../src/trackers/snapshot'
import type { TaskSnapshot } from '../src/trackers/tracker'
import { startCli } from './helpers/cli'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const REWRITTEN_AT = '2026-12-04T10:00:09.000000+00:00'

/** Processor ids of the records a light read fetched: those it did not take from the cache. */
function fetchedIds(snapshot: TaskSnapshot): string[] {
  const reused = snapshot.reused
  if (reused === undefined) throw new Error('expected a light read, got a full read')
  return [...snapshot.active.keys()].filter((processorId) => !reused.has(processorId))
}

const IDS = Array.from({ length: 90 }, (_, index) => `web-1:${4000 + index}:0`)

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

/** Returns how many times Redis ran `command` since the last CONFIG RESETSTAT. */
async function countCalls(command: string): Promise<number> {
  const info = await redis.client.info('commandstats')
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)
  return match === null ? 0 : Number(match[1])
}

/** Seeds `IDS` under a new prefix, fills a cache with a full read, and returns the processors key. */
async function seedAndRead(): Promise<{ processors: string; cache: DecodeCache; full: TaskSnapshot }> {
  prefixCount++
  const prefix = `verify${prefixCount}:`
  const processors = `${prefix}processors`
  tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
  await redis.client.hset(processors, ...IDS.flatMap((id) => [id, JSON.stringify(activeRecord(id, '/a'))]))
  const cache = new DecodeCache()
  const full = await tracker.read({ decodeCache: cache })
  return { processors, cache, full }
}

function readLight(cache: DecodeCache): Promise<TaskSnapshot> {
  return tracker.read({ decodeCache: cache, changedOnly: true, verifySlices: VERIFY_SLICES })
}

describe('light read verification', () => {
  it('corrects a same-length rewrite without HGETALL', async () => {
    const { processors, cache } = await seedAndRead()
    const rewritten = activeRecord('p', '/a', REWRITTEN_AT)
    for (const id of IDS) await redis.client.hset(processors, id, JSON.stringify({ ...rewritten, task_id: id, process_internal_id: id }))
    await redis.client.config('RESETSTAT')

    const correctedAt = new Map<string, number>()
    for (let read = 1; read <= VERIFY_SLICES; read++) {
      const light = await readLight(cache)
      for (const [id, task] of light.active) {
        if (task.updated_at === REWRITTEN_AT && !correctedAt.has(id)) correctedAt.set(id, read)
      }
    }

    expect(correctedAt.size).toBe(IDS.length)
    expect(await countCalls('hgetall')).toBe(0)
    // Spread over the slices, not all in the first read.
    expect(new Set(correctedAt.values()).size).toBeGreaterThan(1)
  })

  it('fetches every field once in a round of slices', async () => {
    const { cache } = await seedAndRead()
    const fetchCounts = new Map<string, number>()
    for (let read = 0; read < VERIFY_SLICES; read++) {
      const light = await readLight(cache)
      expect(light.active.size).toBe(IDS.length)
      for (const id of fetchedIds(light)) fetchCounts.set(id, (fetchCounts.get(id) ?? 0) + 1)
    }
    expect([...fetchCounts.keys()].sort()).toEqual([...IDS].sort())
    expect([...fetchCounts.values()].every((count) => count === 1)).toBe(true)
  })

  it('covers every field while fields come and go', async () => {
    const { processors, cache } = await seedAndRead()
    const fetched = new Set<string>()
    for (let read = 0; read < VERIFY_SLICES; read++) {
      // A new field and a removed one at each read change the listing and its order.
      await redis.client.hset(processors, `churn-${read}`, JSON.stringify(activeRecord(`churn-${read}`, '/a')))
      if (read > 0) await redis.client.hdel(processors, `churn-${read - 1}`)
      const light = await readLight(cache)
      for (const id of fetchedIds(light)) fetched.add(id)
      expect(light.reused?.has(`churn-${read}`)).toBe(false)
    }
    for (const id of IDS) expect(fetched.has(id), id).toBe(true)
  })

  it('keeps unchanged task objects and replaces changed ones', async () => {
    const { processors, cache, full } = await seedAndRead()
    const changedId = IDS[0] as string
    await redis.client.hset(processors, changedId, JSON.stringify(activeRecord(changedId, '/a', REWRITTEN_AT)))

    const verifiedAt = new Map<string, TaskSnapshot>()
    for (let read = 0; read < VERIFY_SLICES; read++) {
      const light = await readLight(cache)
      for (const id of fetchedIds(light)) verifiedAt.set(id, light)
    }
    for (const id of IDS) {
      const verified = verifiedAt.get(id)?.active.get(id)
      if (id === changedId) {
        expect(verified).not.toBe(full.active.get(id))
        expect(verified?.updated_at).toBe(REWRITTEN_AT)
      } else {
        expect(verified, id).toBe(full.active.get(id))
      }
    }
  })

  it('keeps a corrected record in later reads', async () => {
    // Two fields in 30 slices: most reads verify nothing and copy the previous snapshot.
    prefixCount++
    const prefix = `verify${prefixCount}:`
    const processors = `${prefix}processors`
    tracker = new RedisTracker({ url: redis.url, keyPrefix: prefix })
    await redis.client.hset(processors, 'p1', JSON.stringify(activeRecord('p1', '/a')), 'p2', JSON.stringify(activeRecord('p2', '/a')))
    const cache = new DecodeCache()
    await tracker.read({ decodeCache: cache })
    await readLight(cache)
    await readLight(cache)
    await redis.client.hset(processors, 'p1', JSON.stringify(activeRecord('p1', '/a', REWRITTEN_AT)))

    const updatedAt: string[] = []
    for (let read = 0; read < 2 * VERIFY_SLICES; read++) {
      const light = await readLight(cache)
      updatedAt.push(light.active.get('p1')?.updated_at ?? 'missing')
    }
    const firstCorrected = updatedAt.indexOf(REWRITTEN_AT)
    expect(firstCorrected).toBeGreaterThanOrEqual(0)
    expect(firstCorrected).toBeLessThan(VERIFY_SLICES)
    expect(updatedAt.slice(firstCorrected).every((value) => value === REWRITTEN_AT)).toBe(true)
  })

  it('never lists a verified field as reused', async () => {
    const { cache } = await seedAndRead()
    for (let read = 0; read < 3; read++) {
      const light = await readLight(cache)
      const fetched = fetchedIds(light)
      expect(fetched.length).toBeGreaterThan(0)
      expect(fetched.length + (light.reused?.size ?? 0)).toBe(IDS.length)
    }
  })
})

describe('completed records in light reads', () => {
  it('reads them at every VERIFY_SLICES-th light read', () => {
    const cache = new DecodeCache()
    expect(resyncReadOptions(false, cache).completedLimit).toBe(LIVE_COMPLETED_LIMIT)
    expect(resyncReadOptions(true, cache, 0).completedLimit).toBe(0)
    expect(resyncReadOptions(true, cache, VERIFY_SLICES - 2).completedLimit).toBe(0)
    expect(resyncReadOptions(true, cache, VERIFY_SLICES - 1).completedLimit).toBe(LIVE_COMPLETED_LIMIT)
    expect(resyncReadOptions(true, cache, 2 * VERIFY_SLICES - 1).completedLimit).toBe(LIVE_COMPLETED_LIMIT)
  })

  it('keeps their tasks across light reads without them', async () => {
    const { cache } = await seedAndRead()
    const prefix = `verify${prefixCount}:`
    const completed = { ...activeRecord('c1', '/done'), ended_at: REWRITTEN_AT, status_code: 200 }
    await redis.client.lpush(`${prefix}past_tasks`, JSON.stringify(completed))
    const withList = await tracker.read({ decodeCache: cache, changedOnly: true, verifySlices: VERIFY_SLICES })
    const without = await tracker.read({ decodeCache: cache, changedOnly: true, verifySlices: VERIFY_SLICES, completedLimit: 0 })
    const again = await tracker.read({ decodeCache: cache, changedOnly: true, verifySlices: VERIFY_SLICES })
    expect(without.completed).toEqual([])
    expect(withList.completed).toHaveLength(1)
    expect(again.completed[0]).toBe(withList.completed[0])
  })
})

describe('DecodeCache listing with verified records', () => {
  const record = JSON.stringify(activeRecord('p1', '/a'))
  const listingOf = (ids: string[]): FieldListing => ({
    joinedFields: ids.join('\0'),
    lengths: ids.map(() => Buffer.byteLength(record)),
    fields: ids,
    fieldHashes: Uint32Array.from(ids, (id) => hashFieldName(id)),
  })

  it('keeps the listing for a same-length record', () => {
    const cache = new DecodeCache()
    const listing = listingOf(['p1', 'p2'])
    buildSnapshot([['p1', Buffer.from(record)], ['p2', Buffer.from(record)]], [], null, cache, [], listing)
    const sameLength = JSON.stringify(activeRecord('p1', '/b'))
    const snapshot = buildSnapshot([['p1', Buffer.from(sameLength)]], [], null, cache, ['p2'], listing)
    expect(snapshot.active.get('p1')?.path).toBe('/b')
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBe(listing)
    expect(cache.size.active).toBe(2)
  })

  it('drops the listing for a record of another length', () => {
    const cache = new DecodeCache()
    const listing = listingOf(['p1', 'p2'])
    buildSnapshot([['p1', Buffer.from(record)], ['p2', Buffer.from(record)]], [], null, cache, [], listing)
    const longer = JSON.stringify(activeRecord('p1', '/longer'))
    buildSnapshot([['p1', Buffer.from(longer)]], [], null, cache, ['p2'], listing)
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBeUndefined()
  })

  it('drops the listing for a field it does not list', () => {
    const cache = new DecodeCache()
    const listing = listingOf(['p1'])
    buildSnapshot([['p1', Buffer.from(record)]], [], null, cache, [], listing)
    buildSnapshot([['p9', Buffer.from(record)]], [], null, cache, ['p1'], listing)
    expect(cache.findListing(listing.joinedFields, [...listing.lengths])).toBeUndefined()
    expect(cache.size.active).toBe(2)
  })
})

describe('live view verification', () => {
  it('shows an unpublished same-length rewrite without a second HGETALL', async () => {
    prefixCount++
    const prefix = `verifylive${prefixCount}:`
    await redis.client.hset(`${prefix}processors`, 'p1', JSON.stringify(activeRecord('p1', '/before')))
    await redis.client.config('RESETSTAT')
    const live = startCli(['live', '--tracker-url', redis.url, '--prefix', prefix, '--refresh-rate', '0.1'])
    try {
      await live.waitFor((stdout) => stdout.includes('/before'), 'the seeded request')
      await redis.client.hset(`${prefix}processors`, 'p1', JSON.stringify(activeRecord('p1', '/after!')))
      // At 10 resyncs a second, VERIFY_SLICES light reads take about 3 s.
      await live.waitFor((stdout) => stdout.includes('/after!'), 'the request rewritten without a publish')
    } finally {
      await live.stop()
    }
    expect(await countCalls('hgetall')).toBe(1)
  }, 30_000)

  it('shows an unpublished completed record without a second HGETALL', async () => {
    prefixCount++
    const prefix = `verifylive${prefixCount}:`
    await redis.client.hset(`${prefix}processors`, 'p1', JSON.stringify(activeRecord('p1', '/active')))
    await redis.client.config('RESETSTAT')
    const live = startCli(['live', '--tracker-url', redis.url, '--prefix', prefix, '--refresh-rate', '0.1'])
    try {
      await live.waitFor((stdout) => stdout.includes('/active'), 'the seeded request')
      const completed = { ...activeRecord('c1', '/unpublished-end'), ended_at: REWRITTEN_AT, status_code: 200 }
      await redis.client.lpush(`${prefix}past_tasks`, JSON.stringify(completed))
      // At 10 resyncs a second, the light read that reloads the completed list comes within about 3 s.
      await live.waitFor((stdout) => stdout.includes('/unpublished-end'), 'the completed request pushed without a publish')
    } finally {
      await live.stop()
    }
    expect(await countCalls('hgetall')).toBe(1)
  }, 30_000)
})
