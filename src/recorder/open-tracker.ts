/**
 * Opens the tracker a recorder writes to: the one given in the options, a
 * RedisTracker on a given ioredis client, or the tracker the URL names.
 */
import { INVALID_TRACKER_URL, invalidTrackerUrl, invalidUsage, isWebTopError } from '../errors'
import type { ResolvedOptions } from '../options'
import { createTrackerFromUrl } from '../trackers/from-url'
import { RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import type { Logger } from '../util/logger'
import { maskUrl } from '../util/mask-url'

/** A tracker, and whether the recorder opened it and so must close it. */
export interface OpenedTracker {
  tracker: Tracker
  owned: boolean
}

/**
 * `logger` is the app's logger as given: trackers limit their own repeated
 * lines and sum dropped records per interval, which a second rate limit
 * keyed by message would hide.
 */
export function openTracker(options: ResolvedOptions, logger: Logger): OpenedTracker {
  if (options.tracker) {
    // An HttpTracker reads a tracker endpoint and drops every record written to it.
    if (options.tracker.kind === 'http') {
      throw invalidUsage(
        'the `tracker` option is an HttpTracker, which reads a tracker endpoint but cannot store records; ' +
          'pass a RedisTracker or MemoryTracker, or a trackerUrl such as redis://host:port',
      )
    }
    return { tracker: options.tracker, owned: false }
  }

  if (options.redis) {
    const tracker = new RedisTracker({
      client: options.redis,
      keyPrefix: options.keyPrefix,
      maxCompletedTasks: options.maxCompletedTasks,
      maxPendingBytes: options.maxPendingBytes,
      batchWindowMs: options.batchWindowMs,
      logger,
    })
    return { tracker, owned: true }
  }

  let tracker: Tracker
  try {
    rejectReadOnlyUrl(options.trackerUrl)
    tracker = createTrackerFromUrl(options.trackerUrl, {
      keyPrefix: options.keyPrefix,
      // Left out when not given, so that the shared memory tracker keeps its size without a warning.
      maxCompletedTasks: options.maxCompletedTasksGiven ? options.maxCompletedTasks : undefined,
      maxPendingBytes: options.maxPendingBytes,
      batchWindowMs: options.batchWindowMs,
      logger,
    })
  } catch (err) {
    // An app that passed no URL would not know where this one came from.
    if (options.trackerUrlSource === 'environment' && isWebTopError(err) && err.code === INVALID_TRACKER_URL) {
      err.message = `${err.message} (from the TOP_TRACKER_URL environment variable)`
    }
    throw err
  }
  return { tracker, owned: tracker.kind !== 'memory' }
}

/** Schemes of tracker endpoints, which serve tasks to readers and take no records. */
const READ_ONLY_SCHEME = /^https?:\/\//i

/**
 * Throws for an `http://` or `https://` URL. createTrackerFromUrl opens a
 * read-only HttpTracker for it, which suits web-top-cli, but a recorder on
 * it would drop every record.
 */
function rejectReadOnlyUrl(url: string | readonly string[]): void {
  if (typeof url !== 'string' || !READ_ONLY_SCHEME.test(url)) return
  throw invalidTrackerUrl(
    maskUrl(url),
    'an http(s):// URL names a tracker endpoint, which readers such as web-top-cli read but which cannot ' +
      'store records; record to redis://, rediss://, redis+cluster://, redis+sentinel:// or memory://, ' +
      'and serve that tracker with topTrackerEndpoint or topTrackerRoute to readers that need HTTP',
  )
}
