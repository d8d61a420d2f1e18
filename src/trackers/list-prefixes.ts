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
  if (isCluster(client)) await waitForReady(client, CLUSTER_READY_TIMEOUT_MS)
  const servers: Redis[] = isCluster(client) ? client.nodes('master') : [client]
  const prefixes = new Set<string>()

  for (const server of servers) {
    for (const [name, type] of TRACKER_KEY_TYPES) {
      for (const key of await scanKeys(server, `*${name}`, type)) {
        prefixes.add(key.slice(0, key.length - name.length))
      }
    }
  }
  return [...prefixes].sort()
}

async function scanKeys(server: Redis, pattern: string, type: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, page] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type)
    cursor = next
    keys.push(...page)
  } while (cursor !== '0')
  return keys
}
