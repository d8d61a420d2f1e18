/**
 * Opens the tracker a recorder writes to: the one given in the options, a
 * RedisTracker on a given ioredis client, or the tracker the URL names.
 */
import { INVALID_TRACKER_URL, isWebTopError } from '../errors'
import type { ResolvedOptions } from '../options'
import { createTrackerFromUrl } from '../trackers/from-url'
import { RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import type { Logger } from '../util/logger'

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
  if (options.tracker) return { tracker: options.tracker, owned: false }

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
    tracker = createTrackerFromUrl(options.trackerUrl, {
      keyPrefix: options.keyPrefix,
      maxCompletedTasks: options.maxCompletedTasks,
      maxPendingBytes: options.maxPendingBytes,
      batchWindowMs: options.batchWindowMs,
      logger,
    })
  } catch (err) {
    // An app that passed no URL would not know where this one came from.
    if (options.trackerUrlFromEnvironment && isWebTopError(err) && err.code === INVALID_TRACKER_URL) {
      err.message = `${err.message} (from the TOP_TRACKER_URL environment variable)`
    }
    throw err
  }
  return { tracker, owned: tracker.kind !== 'memory' }
}
