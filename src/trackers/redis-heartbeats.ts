/**
 * Reading and pruning heartbeats in Redis, for RedisTracker. The key layout
 * is described in heartbeat.ts.
 */
import type { Cluster, Redis } from 'ioredis'
import { formatIsoTime } from '../task/time'
import {
  decodeHeartbeat,
  sortHeartbeats,
  type Heartbeat,
  type HeartbeatReport,
  type PruneResult,
} from './heartbeat'
import type { HeartbeatKeys, RedisKeys } from './redis-keys'

type RedisClient = Redis | Cluster

/**
 * The shape of a recorder's processor id prefix, `<host>/<pid>-<thread>-<recorder>.`.
 * Other members of the heartbeats set are not a recorder's: an empty one
 * would match every processors field, so prune would delete them all.
 */
const PREFIX_SHAPE = /^.+\/\d+-\d+-\d+\.$/s

/**
 * Most stale prefixes pruned by one script call. A call passes two
 * arguments per prefix, and with 60,000 prefixes in one call the spread of
 * its arguments exceeded Node's stack.
 */
const PRUNE_BATCH_PREFIXES = 5_000

type PruneStale = (
  numberOfKeys: number,
  ...keysAndPrefixes: string[]
) => Promise<Array<number | string>>

/**
 * Reads the heartbeat list and each listed heartbeat, with SMEMBERS and one
 * MGET. Heartbeat keys that MGET finds empty are checked again
 * (`findStringlessKeys`), so that a key of another type is not taken for
 * an expired one. Throws when the list itself cannot be read, as for a
 * `heartbeats` key of another type than a set (WRONGTYPE).
 */
export async function readRedisHeartbeats(
  client: RedisClient,
  keys: HeartbeatKeys,
): Promise<HeartbeatReport> {
  const prefixes = (await client.smembers(keys.heartbeats)).filter((member) => PREFIX_SHAPE.test(member)).sort()
  if (prefixes.length === 0) return { live: [], stalePrefixes: [] }

  const texts = await client.mget(prefixes.map((prefix) => keys.heartbeatPrefix + prefix))
  const empty = prefixes.filter((_, index) => texts[index] === null || texts[index] === undefined)
  const stringless = await findStringlessKeys(client, empty.map((prefix) => keys.heartbeatPrefix + prefix))
  const live: Heartbeat[] = []
  const stalePrefixes: string[] = []
  const wrongTypeKeys: string[] = []
  prefixes.forEach((prefix, index) => {
    const key = keys.heartbeatPrefix + prefix
    const text = texts[index] ?? stringless.get(key)
    if (text === null || text === undefined) {
      stalePrefixes.push(prefix)
      return
    }
    if (text === WRONG_TYPE) {
      wrongTypeKeys.push(key)
      return
    }
    // A key that exists but does not decode still counts as alive, so its entries stay.
    const heartbeat = decodeHeartbeat(text)
    if (heartbeat !== null) live.push(heartbeat)
  })
  const report: HeartbeatReport = { live: sortHeartbeats(live), stalePrefixes }
  if (wrongTypeKeys.length > 0) report.wrongTypeKeys = wrongTypeKeys
  return report
}

/** Marks a key in the result of `findStringlessKeys` that exists with another type than string. */
const WRONG_TYPE = Symbol('wrong key type')

/**
 * Checks keys for which MGET returned nil, as it does for a missing key and
 * for a key of another type alike. Prune's script tests heartbeats with
 * EXISTS and keeps the entries of a hash, so such a prefix is not stale.
 * Returns `WRONG_TYPE` for each key that exists and is still nil to a
 * second MGET, and the text of a key written in between. EXISTS and MGET
 * are in the ACL of the readers and of `prune`.
 */
async function findStringlessKeys(
  client: RedisClient,
  keys: readonly string[],
): Promise<Map<string, string | typeof WRONG_TYPE>> {
  const found = new Map<string, string | typeof WRONG_TYPE>()
  if (keys.length === 0) return found

  const pipeline = client.pipeline()
  for (const key of keys) pipeline.exists(key)
  const replies = (await pipeline.exec()) ?? []
  // A failed EXISTS leaves the prefix stale, as the empty MGET reply made it.
  const existing = keys.filter((_, index) => replies[index]?.[1] === 1)
  if (existing.length === 0) return found

  const texts = await client.mget(existing)
  existing.forEach((key, index) => found.set(key, texts[index] ?? WRONG_TYPE))
  return found
}

/**
 * Finds the prefixes whose heartbeat expired, then ends their entries by
 * cleanup in one script that checks each heartbeat key again, so a
 * recorder that came back in between keeps its entries.
 */
/**
 * Time a prune's mark (`HeartbeatKeys.lastPrunedAt`) lives, in ms: a day.
 * A recorder whose heartbeat expired while Redis was out of its reach,
 * and which comes back later than this, leaves the records that prune
 * ended of its requests beside those of their real ends.
 */
export const PRUNE_MARK_TTL_MS = 24 * 60 * 60 * 1000

export async function pruneRedisStaleTasks(
  client: RedisClient,
  keys: RedisKeys,
  heartbeatKeys: HeartbeatKeys,
  maxCompleted: number,
): Promise<PruneResult> {
  const { stalePrefixes, wrongTypeKeys } = await readRedisHeartbeats(client, heartbeatKeys)
  const result: PruneResult = { removedTasks: 0, endedTasks: 0, stalePrefixes: [] }
  if (wrongTypeKeys !== undefined) result.wrongTypeKeys = wrongTypeKeys
  const pruneStale = (client as unknown as { webTopPruneStale: PruneStale }).webTopPruneStale
  // Each call scans the whole processors hash, so the batches are large, but
  // a call with its keys and prefixes as arguments must fit in the stack.
  for (let from = 0; from < stalePrefixes.length; from += PRUNE_BATCH_PREFIXES) {
    const batch = stalePrefixes.slice(from, from + PRUNE_BATCH_PREFIXES)
    const heartbeatKeyNames = batch.map((prefix) => heartbeatKeys.heartbeatPrefix + prefix)
    const reply = await pruneStale.call(
      client,
      4 + heartbeatKeyNames.length,
      keys.processors,
      heartbeatKeys.heartbeats,
      keys.pastTasks,
      heartbeatKeys.lastPrunedAt,
      ...heartbeatKeyNames,
      keys.taskUpdates,
      String(maxCompleted),
      formatIsoTime(Date.now()),
      String(PRUNE_MARK_TTL_MS),
      ...batch,
    )
    const [removed, ended, ...pruned] = reply
    result.removedTasks += Number(removed)
    result.endedTasks += Number(ended)
    for (const prefix of pruned) result.stalePrefixes.push(String(prefix))
  }
  return result
}
