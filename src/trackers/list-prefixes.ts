/**
 * Finds the key prefixes that trackers write to on one Redis server or
 * cluster, so that a reader can list the apps sharing it.
 */
import type { Redis } from 'ioredis'
import { waitForReady } from './redis-connection'
import { isCluster, type RedisClient } from './redis-tracker'

/** Key names of a tracker without prefix, with the Redis type each one has. */
const TRACKER_KEY_TYPES = [
  ['past_tasks', 'list'],
  ['processors', 'hash'],
  ['last_cleared_at', 'string'],
  ['heartbeats', 'set'],
] as const

/** Keys that one SCAN call looks at. */
const SCAN_COUNT = 1_000

/** Max wait for a Cluster client to learn its masters, in milliseconds. */
const CLUSTER_READY_TIMEOUT_MS = 10_000

/** A key with the name of a tracker key whose Redis type is not the one a tracker writes. */
export interface WrongTypeKey {
  key: string
  /** The key without the tracker key name at its end. */
  prefix: string
  /** Redis type that a tracker writes under that name: list, hash, string or set. */
  expected: string
}

/** The tracker keys found on a server. */
export interface TrackerKeyListing {
  /** Sorted prefixes that have a tracker key of the right type. */
  prefixes: string[]
  /** Keys with a tracker key name and another type, sorted by key. */
  wrongTypeKeys: WrongTypeKey[]
}

/**
 * Returns the sorted prefixes of every `past_tasks` list, `processors` hash,
 * `last_cleared_at` string and `heartbeats` set, scanning each master of a
 * cluster. The empty string is the prefix of the unprefixed names. A prefix
 * that a tracker used shows up while any of its keys exists: `processors`
 * only while a request is active, `past_tasks` once one completed, and
 * `heartbeats` once a recording process started.
 * NOTE: SCAN walks the whole key space, one round trip per 1,000 keys.
 */
export async function listPrefixes(client: RedisClient): Promise<string[]> {
  return (await scanTrackerKeys(client, false)).prefixes
}

/**
 * Returns what `listPrefixes` returns, and the keys that have a tracker
 * key name but another Redis type, such as a `processors` string. Finding
 * those takes a second SCAN for each name, without a TYPE filter. Each key
 * it adds is checked with the read command of the expected type, which
 * fails with WRONGTYPE, so a reader needs no TYPE command and a key created
 * or deleted between the two scans is not reported.
 */
export async function listTrackerKeys(client: RedisClient): Promise<TrackerKeyListing> {
  return scanTrackerKeys(client, true)
}

async function scanTrackerKeys(client: RedisClient, findWrongTypes: boolean): Promise<TrackerKeyListing> {
  if (isCluster(client)) await waitForReady(client, CLUSTER_READY_TIMEOUT_MS)
  const servers: Redis[] = isCluster(client) ? client.nodes('master') : [client]
  const prefixes = new Set<string>()
  const wrongTypeKeys: WrongTypeKey[] = []

  for (const server of servers) {
    for (const [name, type] of TRACKER_KEY_TYPES) {
      const typed = await scanKeys(server, `*${name}`, type)
      for (const key of typed) prefixes.add(key.slice(0, key.length - name.length))
      if (!findWrongTypes) continue

      const typedKeys = new Set(typed)
      for (const key of await scanKeys(server, `*${name}`)) {
        if (typedKeys.has(key) || !(await hasWrongType(server, key, type))) continue
        wrongTypeKeys.push({ key, prefix: key.slice(0, key.length - name.length), expected: type })
      }
    }
  }
  // Each key is found once, on its own master, so no two are equal.
  wrongTypeKeys.sort((a, b) => (a.key < b.key ? -1 : 1))
  return { prefixes: [...prefixes].sort(), wrongTypeKeys }
}

async function scanKeys(server: Redis, pattern: string, type?: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, page] =
      type === undefined
        ? await server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
        : await server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type)
    cursor = next
    keys.push(...page)
  } while (cursor !== '0')
  return keys
}

/** Commands of the reader's ACL that read a key of each type and fail with WRONGTYPE on another type. */
const TYPE_PROBES: Record<string, (server: Redis, key: string) => Promise<unknown>> = {
  list: (server, key) => server.lrange(key, 1, 0),
  hash: (server, key) => server.hstrlen(key, ''),
  string: (server, key) => server.get(key),
  set: (server, key) => server.smembers(key),
}

/** Returns whether `key` exists with a type other than `expected`. */
async function hasWrongType(server: Redis, key: string, expected: string): Promise<boolean> {
  try {
    await TYPE_PROBES[expected]?.(server, key)
    return false
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('WRONGTYPE')) return true
    throw error
  }
}
