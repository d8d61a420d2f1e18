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

/** Reads the heartbeat list and each listed heartbeat, with SMEMBERS and one MGET. */
export async function readRedisHeartbeats(
  client: RedisClient,
  keys: HeartbeatKeys,
): Promise<HeartbeatReport> {
  const prefixes = (await client.smembers(keys.heartbeats)).filter((member) => PREFIX_SHAPE.test(member)).sort()
  if (prefixes.length === 0) return { live: [], stalePrefixes: [] }

  const texts = await client.mget(prefixes.map((prefix) => keys.heartbeatPrefix + prefix))
  const live: Heartbeat[] = []
  const stalePrefixes: string[] = []
  prefixes.forEach((prefix, index) => {
    const text = texts[index]
    if (text === null || text === undefined) {
      stalePrefixes.push(prefix)
      return
    }
    // A key that exists but does not decode still counts as alive, so its entries stay.
    const heartbeat = decodeHeartbeat(text)
    if (heartbeat !== null) live.push(heartbeat)
  })
  return { live: sortHeartbeats(live), stalePrefixes }
}

/**
 * Finds the prefixes whose heartbeat expired, then ends their entries by
 * cleanup in one script that checks each heartbeat key again, so a
 * recorder that came back in between keeps its entries.
 */
export async function pruneRedisStaleTasks(
  client: RedisClient,
  keys: RedisKeys,
  heartbeatKeys: HeartbeatKeys,
  maxCompleted: number,
): Promise<PruneResult> {
  const { stalePrefixes } = await readRedisHeartbeats(client, heartbeatKeys)
  const result: PruneResult = { removedTasks: 0, endedTasks: 0, stalePrefixes: [] }
  const pruneStale = (client as unknown as { webTopPruneStale: PruneStale }).webTopPruneStale
  // Each call scans the whole processors hash, so the batches are large, but
  // a call with its keys and prefixes as arguments must fit in the stack.
  for (let from = 0; from < stalePrefixes.length; from += PRUNE_BATCH_PREFIXES) {
    const batch = stalePrefixes.slice(from, from + PRUNE_BATCH_PREFIXES)
    const heartbeatKeyNames = batch.map((prefix) => heartbeatKeys.heartbeatPrefix + prefix)
    const reply = await pruneStale.call(
      client,
      3 + heartbeatKeyNames.length,
      keys.processors,
      heartbeatKeys.heartbeats,
      keys.pastTasks,
      ...heartbeatKeyNames,
      keys.taskUpdates,
      String(maxCompleted),
      formatIsoTime(Date.now()),
      ...batch,
    )
    const [removed, ended, ...pruned] = reply
    result.removedTasks += Number(removed)
    result.endedTasks += Number(ended)
    for (const prefix of pruned) result.stalePrefixes.push(String(prefix))
  }
  return result
}
