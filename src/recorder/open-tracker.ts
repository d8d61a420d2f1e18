/**
 * Opens the tracker a recorder writes to: the one given in the options, a
 * RedisTracker on a given ioredis client, or the tracker the URL names.
 */
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

  const tracker = createTrackerFromUrl(options.trackerUrl, {
    keyPrefix: options.keyPrefix,
    maxCompletedTasks: options.maxCompletedTasks,
    maxPendingBytes: options.maxPendingBytes,
    batchWindowMs: options.batchWindowMs,
    logger,
  })
  return { tracker, owned: tracker.kind !== 'memory' }
}
