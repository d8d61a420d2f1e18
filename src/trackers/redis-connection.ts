/**
 * Turns a tracker URL, or a list of cluster node URLs, into an ioredis
 * client: one Redis server, a Redis Cluster, or the master that Redis
 * Sentinel names.
 *
 *   redis://[user:password@]host:port[/db]             one server
 *   rediss://…                                         the same over TLS
 *   redis+cluster://[user:password@]host:port,host:port  Redis Cluster (seed nodes)
 *   rediss+cluster://…                                 Redis Cluster over TLS
 *   redis+sentinel://[user:password@]host:port,host:port/master-name[/db]
 *   rediss+sentinel://…                                Sentinel and master over TLS
 *
 * A list of `redis://host:port` URLs also names a cluster, one seed node each.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { invalidOptionRange, invalidTrackerUrl } from '../errors'
import { maskUrl, maskUrlPart } from '../util/mask-url'

/** Port of a cluster seed node whose URL gives none. */
const DEFAULT_REDIS_PORT = 6379

/** Port of a Sentinel whose URL gives none. */
const DEFAULT_SENTINEL_PORT = 26379

/**
 * Maximum wait for a Sentinel's reply, in milliseconds, after which the
 * client queries the next Sentinel of the URL. A Sentinel replies at once
 * unless its process is frozen or its host is overloaded. Without a limit,
 * ioredis 5.11 waits for a frozen Sentinel forever and never tries the next one.
 */
export const SENTINEL_COMMAND_TIMEOUT_MS = 2_000

/**
 * Options of every client made for a `redis+sentinel://` URL, before the
 * caller's `redisOptions`. With `failoverDetector`, the client subscribes
 * to the Sentinels' `+switch-master` channel and reconnects to the new
 * master as soon as a failover ends. Without it, the client keeps writing
 * to the old master until Sentinel turns that into a replica and closes
 * its connections. Redis 7.0's Sentinel does that no sooner than 8 s after
 * the failover, and the writes of that time are lost when the old master
 * copies the new master's data.
 */
const SENTINEL_CLIENT_OPTIONS: RedisOptions = {
  failoverDetector: true,
  sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
}

/** Query parameters a `redis+sentinel://` URL may carry: credentials of the Sentinels themselves. */
const SENTINEL_PARAMETERS = new Set(['sentinelUsername', 'sentinelPassword'])

/** Client options taken from the URL's user part and scheme. */
interface UrlCredentials {
  username?: string
  password?: string
  tls?: Record<string, never>
}

/** The server, cluster or Sentinel setup that a URL or a list of URLs names. */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; nodeOptions: RedisOptions }
  | { kind: 'sentinel'; options: RedisOptions }

/** Options that override those read from the URL. */
export interface RedisConnectionOptions {
  /**
   * Options of the Redis client, or of each cluster node's client, such as
   * `tls: { ca }` for a private certificate authority.
   */
  redisOptions?: RedisOptions | undefined
  /** Options of the Cluster client, such as `natMap` or `scaleReads`. */
  clusterOptions?: ClusterOptions | undefined
}

/** Returns true for the URLs of the cluster and Sentinel schemes, which only this module reads. */
export function isMultiNodeUrl(url: string | readonly string[]): boolean {
  if (typeof url !== 'string') return true
  return /^rediss?\+(cluster|sentinel):/i.test(url)
}

/**
 * Creates the ioredis client a URL names: a `Redis` for one server or for
 * Sentinel, a `Cluster` for a cluster URL or a list of node URLs. The
 * client connects at once; the caller closes it with `quit()`. A Sentinel
 * client follows failovers at once and tries the next Sentinel after 2 s
 * without a reply (`SENTINEL_CLIENT_OPTIONS`), unless `redisOptions` sets otherwise.
 * It and the clients its `duplicate()` makes close the failover detector's
 * Sentinel connections when they end, and ignore the errors of those connections.
 * Throws a `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL` for a URL it cannot use.
 */
export function createRedisClient(
  url: string | readonly string[],
  options: RedisConnectionOptions = {},
): Redis | Cluster {
  const target = parseRedisTarget(url)

  if (target.kind === 'server') return new Redis(target.url, options.redisOptions ?? {})
  if (target.kind === 'sentinel') {
    const client = new Redis({ ...SENTINEL_CLIENT_OPTIONS, ...target.options, ...options.redisOptions })
    manageFailoverDetector(client)
    return client
  }

  return new Cluster(target.nodes, {
    ...options.clusterOptions,
    redisOptions: { ...target.nodeOptions, ...options.redisOptions },
  })
}

/**
 * Ignores the errors of the failover detector's Sentinel connections and
 * closes them when the client ends. This applies to a Sentinel client and to
 * each client that its `duplicate()` makes, such as a tracker's SUBSCRIBE connection.
 */
function manageFailoverDetector(client: Redis): void {
  // ioredis 5.11 makes a new detector each time the socket to a master connects, before the client emits `connect`.
  client.on('connect', () => ignoreFailoverDetectorErrors(client))
  client.on('end', () => closeFailoverDetector(client))

  const duplicate = client.duplicate.bind(client)
  client.duplicate = (override) => {
    const copy = duplicate(override)
    manageFailoverDetector(copy)
    return copy
  }
}

/**
 * Adds an `error` listener that does nothing to each Sentinel connection of
 * a client's failover detector. Without a listener, ioredis 5.11 prints
 * "[ioredis] Unhandled error event" to stderr when a Sentinel goes away, for
 * example `read ECONNRESET` when a frozen Sentinel is killed. These errors
 * need no report: the detector only speeds up the switch to a new master, and
 * the client emits its own `error` when no Sentinel in the URL replies while
 * it looks for the master.
 */
function ignoreFailoverDetectorErrors(client: Redis): void {
  for (const sentinel of readFailoverDetector(client)?.sentinels ?? []) {
    if (sentinel.client.listenerCount('error') === 0) sentinel.client.on('error', ignoreError)
  }
}

function ignoreError(): void {}

/**
 * Closes the connections of a Sentinel client's failover detector to the
 * Sentinels. ioredis 5.11 closes them on `disconnect()` but leaves them
 * open after `quit()`, and they would keep the process running. Calling
 * `disconnect()` after `quit()` closes them too, but also keeps the process
 * running for `disconnectTimeout` (2 s), so this reaches the detector itself.
 */
function closeFailoverDetector(client: Redis): void {
  readFailoverDetector(client)?.cleanup()
}

/** The parts of ioredis 5.11's `FailoverDetector` that this module uses. */
interface FailoverDetector {
  sentinels: Array<{ client: Redis }>
  cleanup(): void
}

/** Returns the current failover detector of a Sentinel client, or undefined when it has none. */
function readFailoverDetector(client: Redis): FailoverDetector | undefined {
  // NOTE: these are private fields of ioredis 5.11. Should a later version rename them, this returns
  // undefined: the Sentinel test that waits for the process to exit after close fails, and so does
  // the one that kills a frozen Sentinel and looks for "Unhandled error event" on stderr.
  const internals = client as unknown as { connector?: { failoverDetector?: FailoverDetector | null } }
  return internals.connector?.failoverDetector ?? undefined
}

/** Reads a URL or a list of cluster node URLs. Throws like `createRedisClient`. */
export function parseRedisTarget(url: string | readonly string[]): RedisTarget {
  if (typeof url !== 'string') return parseNodeUrlList(url)

  const match = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?$/i.exec(url)
  if (match === null) {
    validateServerUrl(url)
    return { kind: 'server', url }
  }

  const [, scheme = '', kind = '', userInfo, hostList = '', path = '', query = ''] = match
  const describeUrl = () => maskUrl(url)
  if (userInfo?.includes(',')) {
    // `h1:7000,u:pw@h2:7001` would read as the user "h1" with the password "7000,u:pw" on the one host h2.
    const reason =
      'the text before the first @ contains a ",", so it reads as a host list with a user and password after ' +
      'its first host; give the user and password once, before the first host, for all nodes, ' +
      'and write a "," in a password as %2C'
    throw invalidTrackerUrl(describeUrl(), reason)
  }
  const credentials = readCredentials(userInfo, scheme.toLowerCase() === 'rediss', describeUrl)
  const hostListAt = { url, start: readHostListStart(url, userInfo) }

  if (kind.toLowerCase() === 'cluster') {
    if (!/^\/?0?$/.test(path)) {
      throw invalidTrackerUrl(describeUrl(), 'Redis Cluster has only database 0; remove the path')
    }
    if (query !== '') {
      throw invalidTrackerUrl(describeUrl(), 'a cluster URL takes no query parameters')
    }
    const nodes = parseHostList(hostList, hostListAt, DEFAULT_REDIS_PORT, describeUrl)
    return { kind: 'cluster', nodes, nodeOptions: credentials }
  }

  const options = parseSentinelUrl(credentials, hostList, hostListAt, path, query, describeUrl)
  return { kind: 'sentinel', options }
}

/** Returns whether a tracker URL names a master through Sentinel (`redis+sentinel://` or `rediss+sentinel://`). */
export function isSentinelUrl(url: string): boolean {
  return /^rediss?\+sentinel:/i.test(url)
}

/**
 * Returns true when every key that starts with `prefix` hashes to the same
 * Redis Cluster slot: the prefix contains a hash tag, a `{…}` with at least
 * one character, where the first `{` and the first `}` after it are both
 * in the prefix.
 */
export function hasClusterHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{')
  if (open === -1) return false
  const close = prefix.indexOf('}', open + 1)
  return close > open + 1
}

/**
 * Throws a `RangeError` with code `WEB_TOP_INVALID_OPTION` when a key
 * prefix would spread an app's keys over several cluster slots. The
 * tracker's batch script and the reader's MULTI touch several keys at once,
 * and Redis Cluster rejects that with CROSSSLOT unless they share a slot.
 */
export function requireClusterHashTag(prefix: string): void {
  if (hasClusterHashTag(prefix)) return
  throw invalidOptionRange(
    'keyPrefix',
    'a prefix with a hash tag, such as "{shop}:", on Redis Cluster, so that all keys of an app are on one slot',
    prefix,
  )
}

/**
 * Resolves when the client is ready. Rejects after `timeoutMs` with an
 * error that names the last connection error, and leaves the client open.
 */
export function waitForReady(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()

  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const onError = (error: Error) => {
      lastError = error
    }
    const finish = (error?: Error) => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onReady = () => finish()
    const timer = setTimeout(() => {
      const reason = lastError === undefined ? '' : ` (last error: ${lastError.message})`
      finish(new Error(`timed out after ${timeoutMs} ms waiting for Redis to be ready${reason}`))
    }, timeoutMs)

    client.on('error', onError)
    client.once('ready', onReady)
  })
}

/**
 * Says why `new URL()` rejected a tracker URL: a port above 65535 is the
 * usual slip, which the URL parser reports only as "Invalid URL".
 */
export function describeInvalidUrl(url: string): string {
  const port = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(url)?.[1]
  if (port !== undefined && Number(port) > 65_535) return `the port ${port} is above 65535`
  // Several servers in one URL are a cluster's seed nodes, which the cluster scheme lists.
  const severalServers = /^(rediss?):\/\/[^/?#]*,/i.exec(url)
  if (severalServers !== null) {
    const scheme = (severalServers[1] as string).toLowerCase()
    return `it lists several servers (for a Redis Cluster, use ${scheme}+cluster://host:port,host:port)`
  }
  return 'it is not a valid URL'
}

/**
 * Throws a `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL` unless a
 * `redis://` or `rediss://` URL parses, names a host, and has no path or a
 * whole-number database (`/0`). ioredis would otherwise connect to
 * 127.0.0.1 for a missing host, and send `SELECT NaN` for `/abc`.
 */
export function validateServerUrl(url: string): void {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw invalidTrackerUrl(maskUrl(url), `${describeInvalidUrl(url)}; write redis://host:port/db`)
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return

  if (parsed.hostname === '') {
    throw invalidTrackerUrl(maskUrl(url), 'it names no host; write redis://host:port/db')
  }
  if (parsed.port === '0') {
    throw invalidTrackerUrl(maskUrl(url), 'port 0 is not a server port; write a port from 1 to 65535')
  }
  // ioredis decodes the user and password with decodeURIComponent, which throws a bare URIError.
  decodeUrlPart(parsed.username, 'user', () => maskUrl(url))
  decodeUrlPart(parsed.password, 'password', () => maskUrl(url))
  // ioredis reads the database from the text between the first two slashes.
  if (!/^(?:\/(?:\d{1,5}\/?)?)?$/.test(parsed.pathname)) {
    throw invalidTrackerUrl(maskUrl(url), describeInvalidDatabase(url, parsed.pathname))
  }
  const seen = new Set<string>()
  for (const [name, value] of parsed.searchParams) {
    if (seen.has(name)) {
      throw invalidTrackerUrl(maskQueryValues(maskUrl(url)), `the query parameter ${JSON.stringify(name)} is given twice`)
    }
    seen.add(name)
    if (name === 'db') checkDatabaseParameter(url, value, parsed.pathname)
    if (SERVER_URL_PARAMETERS.has(name)) continue
    // An unknown name may be a misspelt password parameter, or a whole pair
    // encoded as a name (`password%3Dsecret`), so its values are not shown.
    if (name.includes('=')) {
      const reason = `the query parameter name ${JSON.stringify(name.split('=')[0])} is followed by an encoded = (%3D); write name=value`
      throw invalidTrackerUrl(maskQueryValues(maskUrl(url)), reason)
    }
    const reason =
      `the query parameter ${JSON.stringify(name)} is not supported; a redis:// URL takes family, password, ` +
      'username, db and allowUsernameInURI. Pass other client options, such as TLS settings, in an ioredis ' +
      'client as the redis option, or trust a certificate authority with NODE_EXTRA_CA_CERTS'
    throw invalidTrackerUrl(maskQueryValues(maskUrl(url)), reason)
  }
}

/** Replaces every query value of a URL, and any text after an encoded `=` in a name, with `***`. */
function maskQueryValues(url: string): string {
  const queryAt = url.indexOf('?')
  if (queryAt === -1) return url
  const hashAt = url.indexOf('#', queryAt)
  const end = hashAt === -1 ? url.length : hashAt
  const query = url
    .slice(queryAt + 1, end)
    .split('&')
    .map((pair) => pair.replace(/^([^=]*?)(?:%3d|=).*$/i, '$1=***'))
    .join('&')
  return `${url.slice(0, queryAt + 1)}${query}${url.slice(end)}`
}

/**
 * Throws when the `db` query parameter is not a database number, or when
 * the path names a database too. Redis rejects such a number at SELECT,
 * and ioredis throws that error where no one catches it. Given both,
 * ioredis uses the path's without a warning.
 */
function checkDatabaseParameter(url: string, value: string, pathname: string): void {
  if (!/^\d{1,5}$/.test(value)) {
    throw invalidTrackerUrl(maskQueryValues(maskUrl(url)), `the database ${JSON.stringify(value)} is not a whole number; write ?db=0`)
  }
  if (/^\/\d/.test(pathname)) {
    throw invalidTrackerUrl(maskQueryValues(maskUrl(url)), 'it names the database twice, in the path and as ?db=; keep one')
  }
}

/**
 * Query parameters of a `redis://` URL that ioredis 5 reads as it should.
 * It copies every parameter into its options as a string, so others, such
 * as `rejectUnauthorized=false` (not a TLS option there) or
 * `enableOfflineQueue=false` (a true string), would silently do nothing or
 * the opposite.
 */
const SERVER_URL_PARAMETERS = new Set(['family', 'password', 'username', 'db', 'allowUsernameInURI'])

/**
 * Returns the reason that the path of a server URL is not a database. The path is quoted
 * only when the masked URL shows it too: a password with a raw `/`
 * (`redis://u:p@ss/w@host`) makes the URL parser start the path inside the
 * password, and the masked URL hides all of the user part.
 */
function describeInvalidDatabase(url: string, pathname: string): string {
  if (readPathname(maskUrl(url)) !== pathname) {
    return 'the text after the first / is not a database number, and the user or password seems to contain a / or @; ' +
      'write / as %2F and @ as %40 in the user and password'
  }
  return `the database ${JSON.stringify(pathname.slice(1))} is not a whole number; write redis://host:port/0`
}

/** Returns the path of a URL, or undefined when it does not parse. */
function readPathname(url: string): string | undefined {
  try {
    return new URL(url).pathname
  } catch {
    return undefined
  }
}

function parseNodeUrlList(urls: readonly string[]): RedisTarget {
  const describeList = () => urls.map(maskUrl).join(',')
  if (urls.length === 0) throw invalidTrackerUrl('', 'the list of cluster node URLs is empty')

  const nodes: Array<{ host: string; port: number }> = []
  let first: UrlCredentials | undefined
  for (const url of urls) {
    const parsed = parseNodeUrl(url)
    if (first !== undefined && !sameCredentials(first, parsed.credentials)) {
      const reason = 'all cluster node URLs must have the same scheme, user and password'
      throw invalidTrackerUrl(describeList(), reason)
    }
    first ??= parsed.credentials
    nodes.push(parsed.node)
  }
  return { kind: 'cluster', nodes, nodeOptions: first ?? {} }
}

function parseNodeUrl(url: string): { node: { host: string; port: number }; credentials: UrlCredentials } {
  const describeUrl = () => maskUrl(url)
  const match = /^(rediss?):\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?$/i.exec(url)
  if (match === null) {
    throw invalidTrackerUrl(describeUrl(), 'each cluster node URL must be redis://host:port or rediss://host:port')
  }

  const [, scheme = '', userInfo, host = '', path = '', query = ''] = match
  if (!/^\/?0?$/.test(path) || query !== '') {
    throw invalidTrackerUrl(describeUrl(), 'a cluster node URL takes no database and no query parameters')
  }
  const [node] = parseHostList(host, { url, start: readHostListStart(url, userInfo) }, DEFAULT_REDIS_PORT, describeUrl)
  if (node === undefined || host.includes(',')) {
    throw invalidTrackerUrl(describeUrl(), 'a cluster node URL names exactly one host:port')
  }
  return { node, credentials: readCredentials(userInfo, scheme.toLowerCase() === 'rediss', describeUrl) }
}

function parseSentinelUrl(
  credentials: UrlCredentials,
  hostList: string,
  hostListAt: HostListPosition,
  path: string,
  query: string,
  describeUrl: () => string,
): RedisOptions {
  const sentinels = parseHostList(hostList, hostListAt, DEFAULT_SENTINEL_PORT, describeUrl)
  const pathMatch = /^\/([^/]+)(?:\/(\d+))?\/?$/.exec(path)
  if (pathMatch === null) {
    const reason = 'a Sentinel URL names the master after the hosts: redis+sentinel://host:26379/mymaster[/db]'
    throw invalidTrackerUrl(describeUrl(), reason)
  }

  const options: RedisOptions = {
    sentinels,
    name: decodeUrlPart(pathMatch[1] as string, 'master name', describeUrl),
    db: pathMatch[2] === undefined ? 0 : Number(pathMatch[2]),
    username: credentials.username,
    password: credentials.password,
  }
  if (credentials.tls !== undefined) {
    Object.assign(options, { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} })
  }

  for (const [name, value] of new URLSearchParams(query)) {
    if (!SENTINEL_PARAMETERS.has(name)) {
      const reason = `the query parameter ${JSON.stringify(name)} is not supported; use sentinelUsername or sentinelPassword`
      throw invalidTrackerUrl(describeUrl(), reason)
    }
    Object.assign(options, { [name]: value })
  }
  return options
}

/** Position of the host list in a URL, so that an error can quote one entry of it with its secrets masked. */
interface HostListPosition {
  url: string
  start: number
}

/** Returns the index in a URL after `scheme://` and the user part that the URL's pattern matched. */
function readHostListStart(url: string, userInfo: string | undefined): number {
  return url.indexOf('://') + 3 + (userInfo === undefined ? 0 : userInfo.length + 1)
}

/** Reads `host:port,host:port`, with IPv6 addresses in brackets (`[::1]:7000`). */
function parseHostList(
  list: string,
  position: HostListPosition,
  defaultPort: number,
  describeUrl: () => string,
): Array<{ host: string; port: number }> {
  const entries = list.split(',').map((entry) => entry.trim())
  if (entries.some((entry) => entry === '')) {
    throw invalidTrackerUrl(describeUrl(), 'it names no host, or has an empty entry in its host list')
  }

  let entryStart = position.start
  return list.split(',').map((rawEntry) => {
    const entry = rawEntry.trim()
    // The entry may hold a piece of a password, so its text is quoted as maskUrl() masks it.
    const shownEntry = maskUrlPart(position.url, entryStart, entryStart + rawEntry.length).trim()
    entryStart += rawEntry.length + 1
    if (entry.includes('@')) {
      const reason =
        `the host list entry ${JSON.stringify(shownEntry)} has a user part, but a cluster or Sentinel URL ` +
        'takes one user and password, before its first host, for all nodes; write an @ in a password as %40'
      throw invalidTrackerUrl(describeUrl(), reason)
    }
    const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(entry)
    if (match === null) {
      throw invalidTrackerUrl(describeUrl(), `${JSON.stringify(shownEntry)} is not a valid host:port`)
    }
    const port = match[2] === undefined ? defaultPort : Number(match[2])
    // Gives the reasons that `validateServerUrl()` gives for a one-server URL.
    if (port > 65_535) {
      throw invalidTrackerUrl(describeUrl(), `the port ${match[2]} is above 65535; write a port from 1 to 65535`)
    }
    if (port < 1) {
      throw invalidTrackerUrl(describeUrl(), 'port 0 is not a server port; write a port from 1 to 65535')
    }
    return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
  })
}

function readCredentials(userInfo: string | undefined, tls: boolean, describeUrl: () => string): UrlCredentials {
  const credentials: UrlCredentials = tls ? { tls: {} } : {}
  if (userInfo === undefined || userInfo === '') return credentials

  const colon = userInfo.indexOf(':')
  const username = decodeUrlPart(colon === -1 ? userInfo : userInfo.slice(0, colon), 'user', describeUrl)
  const password = colon === -1 ? '' : decodeUrlPart(userInfo.slice(colon + 1), 'password', describeUrl)
  // As in ioredis: `redis://:secret@host` sends AUTH with the password alone.
  if (username !== '') credentials.username = username
  if (password !== '') credentials.password = password
  return credentials
}

/** Decodes a percent-encoded part of a URL. Throws `invalidTrackerUrl` for an invalid escape such as `%zz`. */
function decodeUrlPart(text: string, part: string, describeUrl: () => string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    const reason = `its ${part} has an invalid percent escape; write a % in it as %25`
    throw invalidTrackerUrl(describeUrl(), reason)
  }
}

function sameCredentials(a: UrlCredentials, b: UrlCredentials): boolean {
  return a.username === b.username && a.password === b.password && (a.tls === undefined) === (b.tls === undefined)
}
