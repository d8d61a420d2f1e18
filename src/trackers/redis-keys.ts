/**
 * Redis key and channel names. With no prefix they are exactly the names
 * the Python Top Framework reads; a prefix keeps several apps apart on one
 * Redis, and a prefix with a hash tag (`{shop}:`) puts all keys of an app
 * on one Redis Cluster slot.
 */

export interface RedisKeys {
  /** HASH of processor id to the JSON of its active task. */
  processors: string
  /** LIST of completed task JSON, most recent first. */
  pastTasks: string
  /** PUBSUB channel that carries every task update. */
  taskUpdates: string
  /** STRING with the ISO 8601 time of the last clear. */
  lastClearedAt: string
}

/** Names of the heartbeat keys, which share the prefix of the task keys. */
export interface HeartbeatKeys {
  /** SET of the processor id prefixes that have written a heartbeat and not removed it. */
  heartbeats: string
  /** Start of each recorder's heartbeat STRING key, which the processor id prefix completes. */
  heartbeatPrefix: string
  /**
   * STRING with the end time of the last prune that ended entries, for a
   * day (`PRUNE_MARK_TTL_MS`). Until it expires, a recorder whose heartbeat
   * may have expired looks for the records that prune ended of its requests.
   */
  lastPrunedAt: string
}

export function createRedisKeys(prefix = ''): RedisKeys {
  return {
    processors: `${prefix}processors`,
    pastTasks: `${prefix}past_tasks`,
    taskUpdates: `${prefix}task_updates`,
    lastClearedAt: `${prefix}last_cleared_at`,
  }
}

export function createHeartbeatKeys(prefix = ''): HeartbeatKeys {
  return {
    heartbeats: `${prefix}heartbeats`,
    heartbeatPrefix: `${prefix}heartbeat:`,
    lastPrunedAt: `${prefix}last_pruned_at`,
  }
}

/** Escapes the glob characters of Redis `MATCH` patterns in a literal text. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
