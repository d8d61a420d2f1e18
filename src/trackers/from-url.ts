/**
 * Turns a tracker URL into a tracker. `redis://` and `rediss://` give a
 * RedisTracker. `redis+cluster://` (or a list of node URLs) and
 * `redis+sentinel://` give a RedisTracker on a Cluster or Sentinel client.
 * `memory://` gives the process's shared MemoryTracker, and `http://` and
 * `https://` a read-only HttpTracker for an app's tracker endpoint.
 */
import { invalidTrackerUrl } from '../errors'
import { guardLogger, type Logger } from '../util/logger'
import { maskUrl } from '../util/mask-url'
import { getProcessShared } from '../util/process-shared'
import { diagnoseCluster } from './cluster-diagnosis'
import { HttpTracker } from './http-tracker'
import { MemoryTracker } from './memory-tracker'
import {
  createRedisClient,
  isMultiNodeUrl,
  parseRedisTarget,
  validateServerUrl,
  requireClusterHashTag,
  type RedisConnectionOptions,
  type RedisTarget,
} from './redis-connection'
import { DIAGNOSE_CLUSTER, OWNS_CLIENT, RedisTracker } from './redis-tracker'
import { requireTrimmedUrl, SUPPORTED_URLS } from './tracker-url'
import type { Tracker } from './tracker'

/** Tracker URL used when neither an option nor `TOP_TRACKER_URL` sets one. */
export const DEFAULT_TRACKER_URL = 'redis://127.0.0.1:6379'

export interface TrackerUrlOptions extends RedisConnectionOptions {
  /** Must contain a hash tag, such as `{shop}:`, for a cluster URL. */
  keyPrefix?: string | undefined
  maxCompletedTasks?: number | undefined
  /** Byte budget of a Redis tracker's waiting records (`RedisTrackerOptions.maxPendingBytes`). */
  maxPendingBytes?: number | undefined
  /** Batch window of a Redis tracker (`RedisTrackerOptions.batchWindowMs`). */
  batchWindowMs?: number | undefined
  logger?: Logger | undefined
  /** Key for `http://` and `https://` URLs; `TOP_WEB_API_KEY` when unset. */
  apiKey?: string | undefined
}

/**
 * Returns the memory tracker shared by everything in this process that uses
 * the `memory://` URL, so a reader in the same process reads what was
 * recorded, also through another copy of the package.
 */
export function getSharedMemoryTracker(maxCompletedTasks?: number): MemoryTracker {
  return getProcessShared('sharedMemoryTracker', () => new MemoryTracker({ maxCompletedTasks }))
}

/**
 * Returns the shared memory tracker. Its size is set once, by its first
 * user, so a later user that requests another size gets a warning.
 */
function openSharedMemoryTracker(options: TrackerUrlOptions): MemoryTracker {
  const tracker = getSharedMemoryTracker(options.maxCompletedTasks)
  const requested = options.maxCompletedTasks
  if (requested !== undefined && requested !== tracker.maxCompletedTasks) {
    const logger = options.logger === undefined ? undefined : guardLogger(options.logger)
    logger?.warn(
      { requested, kept: tracker.maxCompletedTasks },
      `memory:// is one tracker for the whole process, and it keeps the ${tracker.maxCompletedTasks} ` +
        `completed tasks that its first recorder set, so maxCompletedTasks ${requested} is ignored; ` +
        'give every recorder of the process the same value',
    )
  }
  return tracker
}

/**
 * Creates the tracker a URL, or a list of cluster node URLs, names. Throws a
 * `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL` for any other URL, and
 * a `RangeError` with code `WEB_TOP_INVALID_OPTION` for a cluster URL whose
 * `keyPrefix` has no hash tag.
 */
export function createTrackerFromUrl(
  url: string | readonly string[],
  options: TrackerUrlOptions = {},
): Tracker {
  if (typeof url === 'string') requireTrimmedUrl(url)
  if (typeof url !== 'string' || isMultiNodeUrl(url)) return createMultiNodeTracker(url, options)

  const scheme = parseScheme(url)

  if (scheme === 'memory') {
    requireBareMemoryUrl(url)
    return openSharedMemoryTracker(options)
  }

  if (scheme === 'redis' || scheme === 'rediss') {
    validateServerUrl(url)
    return new RedisTracker({
      url,
      keyPrefix: options.keyPrefix,
      maxCompletedTasks: options.maxCompletedTasks,
      maxPendingBytes: options.maxPendingBytes,
      batchWindowMs: options.batchWindowMs,
      logger: options.logger,
    })
  }

  if (scheme === 'http' || scheme === 'https') {
    return new HttpTracker({ url, apiKey: options.apiKey, logger: options.logger })
  }

  // `localhost:6379` parses with the scheme "localhost:".
  const advice = HOST_AND_PORT.test(url) ? `write redis://${maskUrl(url)}, or ${SUPPORTED_URLS}` : SUPPORTED_URLS
  throw invalidTrackerUrl(maskUrl(url), `the scheme ${JSON.stringify(`${scheme}:`)} is not supported; ${advice}`)
}

/** A host and port without a scheme, such as `localhost:6379` or `cache:6380/2`. */
const HOST_AND_PORT = /^[a-z0-9][a-z0-9.-]*:\d{1,5}(\/\d+)?$/i

/**
 * Creates a RedisTracker on a Cluster or Sentinel client made here. The
 * tracker owns that client: it suspends it when the app's servers close
 * and closes it with the tracker. (A RedisTracker given an app's client
 * leaves it alone.)
 */
function createMultiNodeTracker(url: string | readonly string[], options: TrackerUrlOptions): Tracker {
  const target = parseRedisTarget(url)
  const keyPrefix = options.keyPrefix ?? ''
  if (target.kind === 'cluster') requireClusterHashTag(keyPrefix)

  const client = createRedisClient(url, options)
  return new RedisTracker({
    [OWNS_CLIENT]: true,
    [DIAGNOSE_CLUSTER]: target.kind === 'cluster' ? createClusterCheck(target, keyPrefix, options) : undefined,
    client,
    url: typeof url === 'string' ? maskUrl(url) : url.map(maskUrl).join(','),
    keyPrefix,
    maxCompletedTasks: options.maxCompletedTasks,
    maxPendingBytes: options.maxPendingBytes,
    batchWindowMs: options.batchWindowMs,
    logger: options.logger,
  })
}

/** Returns a check of the cluster as the tracker's client reaches it, with the node options given beside the URL. */
function createClusterCheck(
  target: Extract<RedisTarget, { kind: 'cluster' }>,
  keyPrefix: string,
  options: TrackerUrlOptions,
): () => Promise<string | undefined> {
  const seeds = { nodes: target.nodes, nodeOptions: { ...target.nodeOptions, ...options.redisOptions } }
  return () => diagnoseCluster(seeds, keyPrefix, 'keyPrefix')
}

/** URLs of the memory tracker: `memory`, and `memory:` or `memory://` with the scheme in any case. */
const MEMORY_URL = /^memory(?::(?:\/\/)?)?$/i

/**
 * Throws for a `memory:` URL with more after the scheme, such as
 * `memory://orders`. A process has one memory tracker, so a host, path or
 * query would be ignored, and two recorders given `memory://orders` and
 * `memory://users` would write to the same tracker.
 */
function requireBareMemoryUrl(url: string): void {
  if (MEMORY_URL.test(url)) return
  throw invalidTrackerUrl(
    maskUrl(url),
    'memory:// takes no host, path or query, because a process has one memory tracker, which every ' +
      'recorder on memory:// shares; write memory://',
  )
}

function parseScheme(url: string): string {
  if (url === 'memory') return 'memory'
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url)
  if (match === null) throw invalidTrackerUrl(maskUrl(url), `it has no scheme; ${SUPPORTED_URLS}`)
  return (match[1] as string).toLowerCase()
}
