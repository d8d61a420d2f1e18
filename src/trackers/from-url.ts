/**
 * Turns a tracker URL into a tracker: `redis://` and `rediss://` to a
 * RedisTracker, `memory://` to the process's shared MemoryTracker, and
 * `http://` and `https://` to a read-only HttpTracker for an app's tracker endpoint.
 */
import { invalidTrackerUrl } from '../errors'
import type { Logger } from '../util/logger'
import { HttpTracker } from './http-tracker'
import { MemoryTracker } from './memory-tracker'
import { redactUrl, RedisTracker } from './redis-tracker'
import type { Tracker } from './tracker'

/** Tracker URL used when neither an option nor `TOP_TRACKER_URL` sets one. */
export const DEFAULT_TRACKER_URL = 'redis://127.0.0.1:6379'

export interface TrackerUrlOptions {
  keyPrefix?: string | undefined
  maxCompletedTasks?: number | undefined
  logger?: Logger | undefined
  /** Key for `http://` and `https://` URLs; `TOP_WEB_API_KEY` when unset. */
  apiKey?: string | undefined
}

const SUPPORTED_URLS = 'use redis://host:port/db, rediss://, memory:// or http(s)://host:port/web-top'

let sharedMemoryTracker: MemoryTracker | undefined

/**
 * Returns the memory tracker shared by everything in this process that uses
 * the `memory://` URL, so a reader in the same process sees what was recorded.
 */
export function getSharedMemoryTracker(maxCompletedTasks?: number): MemoryTracker {
  sharedMemoryTracker ??= new MemoryTracker({ maxCompletedTasks })
  return sharedMemoryTracker
}

/** Creates the tracker a URL names. Throws a `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL` for any other URL. */
export function createTrackerFromUrl(url: string, options: TrackerUrlOptions = {}): Tracker {
  const scheme = parseScheme(url)

  if (scheme === 'memory') return getSharedMemoryTracker(options.maxCompletedTasks)

  if (scheme === 'redis' || scheme === 'rediss') {
    return new RedisTracker({
      url,
      keyPrefix: options.keyPrefix,
      maxCompletedTasks: options.maxCompletedTasks,
      logger: options.logger,
    })
  }

  if (scheme === 'http' || scheme === 'https') {
    return new HttpTracker({ url, apiKey: options.apiKey, logger: options.logger })
  }

  throw invalidTrackerUrl(
    redactUrl(url),
    `the scheme ${JSON.stringify(`${scheme}:`)} is not supported; ${SUPPORTED_URLS}`,
  )
}

function parseScheme(url: string): string {
  if (url === 'memory') return 'memory'
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url)
  if (match === null) {
    throw invalidTrackerUrl(redactUrl(url), `it has no scheme; ${SUPPORTED_URLS}`)
  }
  return (match[1] as string).toLowerCase()
}
