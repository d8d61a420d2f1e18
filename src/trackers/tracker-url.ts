/**
 * Checks shared by every place that takes a tracker URL: the URL factory,
 * RedisTracker and web-top-cli, so that a URL the CLI reads from is one
 * that an app can record to.
 */
import { invalidTrackerUrl } from '../errors'
import { maskUrl } from '../util/mask-url'

/** The advice that ends an error about a tracker URL that web-top cannot use. */
export const SUPPORTED_URLS =
  'use redis://host:port/db, rediss://, redis+cluster://host:port,host:port, ' +
  'redis+sentinel://host:port/master or memory:// (readers such as web-top-cli also take ' +
  'http(s)://host:port/web-top)'

/**
 * Throws a `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL` for a tracker
 * URL that starts or ends with whitespace, such as a value of a .env file
 * with a trailing space or a newline. web-top-cli applies the same check, so
 * that a URL that it reads from is one that an app can record to.
 */
export function requireTrimmedUrl(url: string): void {
  const body = url.trim()
  if (body === url) return
  if (body === '') throw invalidTrackerUrl(url, `it contains only whitespace; ${SUPPORTED_URLS}`)

  // maskUrl parses the URL, which drops the whitespace, so the whitespace is put back to quote the URL as given.
  const leading = url.slice(0, url.length - url.trimStart().length)
  const trailing = url.slice(url.trimEnd().length)
  let position = 'starts and ends'
  if (leading === '') position = 'ends'
  if (trailing === '') position = 'starts'
  throw invalidTrackerUrl(leading + maskUrl(body) + trailing, `it ${position} with whitespace; remove it`)
}
