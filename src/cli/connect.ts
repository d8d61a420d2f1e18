/**
 * Opens the tracker the reader reads from. For Redis the reader makes its own
 * client: it connects at once with a short timeout and fails instead of
 * retrying forever, so a wrong URL is reported within seconds.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { isWebTopError } from '../errors'
import { diagnoseCluster } from '../trackers/cluster-diagnosis'
import { readMaxCompletedEnv } from '../trackers/completed-cap'
import { createTrackerFromUrl } from '../trackers/from-url'
import { HttpTracker, HttpTrackerError } from '../trackers/http-tracker'
import {
  createRedisClient,
  describeInvalidUrl,
  isMultiNodeUrl,
  isSentinelUrl,
  parseRedisTarget,
  requireClusterHashTag,
  SENTINEL_COMMAND_TIMEOUT_MS,
  validateServerUrl,
} from '../trackers/redis-connection'
import { RedisTracker, type RedisClient } from '../trackers/redis-tracker'
import type { ReadOptions, TaskSnapshot, Tracker } from '../trackers/tracker'
import { decodeOrKeep, maskUrl, maskUrlsInText, readPasswordForms, SECRET_PARAMETER } from '../util/mask-url'
import { CLUSTER_REDIRECTION } from '../util/redis-error-cause'
import { CliError, describeError, EXIT_USAGE } from './cli-error'
import { describeCertificateCode, findProtocolMismatch, probePlainRedis } from './protocol-mismatch'

/** How long to wait for Redis to accept the connection. */
export const CONNECT_TIMEOUT_MS = 3_000

/**
 * Maximum time from the start of connecting to a working connection, for
 * every kind of Redis URL. ioredis applies `connectTimeout` per socket, and a
 * Sentinel setup may try several sockets one after another.
 */
const CONNECT_DEADLINE_MS = 5_000

/** How long one Redis command may take before it fails, as with a frozen server. */
const COMMAND_TIMEOUT_MS = 5_000

/** Maximum wait between reconnection attempts after a working connection was lost. */
const MAX_RECONNECT_DELAY_MS = 2_000

/** Returns how to set the tracker URL, with an example of the same kind as `url`. */
function urlHint(url: string): string {
  const kind = /^rediss?\+(cluster|sentinel):/i.exec(url)?.[1]?.toLowerCase()
  const example =
    kind === 'cluster'
      ? 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001'
      : kind === 'sentinel'
        ? 'redis+sentinel://127.0.0.1:26379/mymaster'
        : 'redis://127.0.0.1:6379/0'
  return `set the URL with --tracker-url or TOP_TRACKER_URL, for example ${example}`
}

/**
 * The tracker URLs the CLI reads. The library's list of supported URLs
 * names memory:// too, which an app can record to but the CLI rejects.
 */
const CLI_URL_SCHEMES =
  'use redis://host:port/db, rediss://, redis+cluster://host:port,host:port, ' +
  'redis+sentinel://host:port/master or http(s)://host:port/web-top'

/** The library's list of supported URLs at the end of its message for an unsupported scheme. */
const LIBRARY_URL_SCHEMES = /; use redis:\/\/[^;]*$/

const CLUSTER_PREFIX_HINT =
  'set --prefix or TOP_TRACKER_PREFIX to the hash-tagged prefix that the apps record with'

const HTTP_KEY_HINT = 'pass the key the app was started with in --api-key or TOP_WEB_API_KEY'

/** Hint after an `http(s)://` URL that the tracker rejected: the key, and the URL when the URL was at fault. */
const HTTP_HINT = `${HTTP_KEY_HINT}, and a URL such as http://127.0.0.1:3000/web-top`

const AUTH_HINT = 'Check the user name and password in the URL'

const SENTINEL_AUTH_HINT =
  "Check the user name and password in the URL: those before the hosts are the master's, and Sentinels " +
  'with a password of their own take it as ?sentinelPassword= (with sentinelUsername for an ACL user)'

/** ioredis's error when no Sentinel of a `redis+sentinel://` URL named the master, followed by the last reason. */
const SENTINEL_FAILURE = /\bAll sentinels are unreachable\b/

const SENTINEL_HINT =
  `Check that the Sentinels in the URL are running, reply within ${SENTINEL_COMMAND_TIMEOUT_MS / 1000} s, ` +
  'and monitor the master named after the hosts (redis-cli -p <port> sentinel get-master-addr-by-name <name>)'

/** Replies of Redis to a wrong password, or to a command sent without one when one is required. */
const AUTH_FAILURE = /\b(?:WRONGPASS|NOAUTH)\b/

/** Reply of Redis to a SELECT of a database number beyond its `databases` setting. */
const DATABASE_FAILURE = /\bDB index is out of range\b/

const DATABASE_HINT =
  'The server has no database of that number (16 by default, numbered from 0, set by `databases` in redis.conf); ' +
  'fix the number after the host in the URL'

/**
 * Advice that the HTTP tracker ends its messages with, such as "; check that
 * the app is running" or ": set TOP_WEB_API_KEY to ...". The CLI replaces it
 * by its own hint, which names --api-key too, so the advice appears once.
 */
const HTTP_TRACKER_ADVICE = /[;:] (?:check|set|pass) [^;]*$/i

/** Hints on what to check after a failed read, by kind of tracker. */
const READ_FAILURE_HINTS: Record<string, string> = {
  redis: 'Check that the server is up and that the URL, password and database are right.',
  http:
    'Check that the app is running, that the URL points at its tracker endpoint, ' +
    'and that --api-key or TOP_WEB_API_KEY holds the key the app was started with.',
}

/** Hint after a failed read of a Redis Cluster in which `diagnoseCluster` found no node down. */
const CLUSTER_READ_HINT =
  'Check that the cluster nodes are up, with redis-cli -c -p <port> cluster info and cluster nodes, ' +
  'and that the URL and password are right.'

/** Hints after an http(s):// tracker rejected the key (403): the app was reached, so only the key can be wrong. */
const REJECTED_KEY_HINTS = {
  option: 'Check that --api-key or TOP_WEB_API_KEY holds the key the app was started with.',
  url: "Check that the URL's api-key parameter holds the key the app was started with.",
}

/** Hint after a failed read of an http(s):// tracker whose key is the URL's api-key parameter. */
const URL_KEY_HINT =
  'Check that the app is running, that the URL points at its tracker endpoint, ' +
  "and that the URL's api-key parameter holds the key the app was started with."

/** Hint after an http(s):// tracker could not be reached or did not reply in time: the key played no part yet. */
const UNREACHABLE_APP_HINT = "Check that the app is running and that the URL's host and port are the app's."

/** Hint after an http(s):// tracker replied with a 5xx status: the endpoint was reached and the key accepted. */
const ENDPOINT_FAILED_HINT = "Check the app's log for the tracker endpoint's error."

/** Hint after an http(s):// tracker replied with a status other than 401 and 403, or with a body that is not its JSON. */
const NOT_ENDPOINT_HINT =
  'Check that the URL points at the tracker endpoint, the path given to topTrackerEndpoint or topTrackerRoute.'

/**
 * Replies of Redis to a command that the user's ACL denies: NOPERM, and
 * EXECABORT for a transaction in which Redis denied a queued command.
 */
const PERMISSION_FAILURE = /NOPERM|EXECABORT|can't run this command/

/**
 * Returns `reason` of a failed `prune` or `clear`, followed by the hint for
 * the Redis reply it reports: a redirection to another Cluster node, or a
 * command that Redis denied, with the commands that `command` needs.
 */
export function withRedisHint(reason: string, command: 'prune' | 'clear', clusterUrl = false): string {
  const hint = findRedisHint(reason, clusterUrl, describeAdminPermissionHint(command))
  return hint === undefined ? reason : `${reason}. ${hint}`
}

/**
 * Returns the hint for a Redis reply. A redirection means a plain URL of a
 * Cluster node, unless the URL already names a cluster, whose client then
 * gave up following the redirections to a node that is down.
 */
function findRedisHint(reason: string, clusterUrl: boolean, permissionHint = PERMISSION_HINT): string | undefined {
  // First, because a transaction discarded for a redirection also reads EXECABORT.
  if (CLUSTER_REDIRECTION.test(reason)) return clusterUrl ? CLUSTER_REDIRECTION_HINT : CLUSTER_NODE_HINT
  // Before the ACL, because a transaction discarded for it reads EXECABORT too.
  if (OUT_OF_MEMORY.test(reason)) return OUT_OF_MEMORY_HINT
  return PERMISSION_FAILURE.test(reason) ? permissionHint : undefined
}

/** Redis's reply to a command that it rejects at its `maxmemory`, scripts that may write among them. */
const OUT_OF_MEMORY = /\bOOM command not allowed\b/

const OUT_OF_MEMORY_HINT =
  "Redis is at its maxmemory and rejects commands that may add data, scripts among them; free memory or raise maxmemory (with the noeviction policy, the apps' writes are rejected too)"


/** Hint after a redirection that a cluster client stopped following, as when the node it names is down. */
const CLUSTER_REDIRECTION_HINT =
  'A cluster node that the redirection names may be down or failing over; check the cluster with ' +
  'redis-cli -c -p <port> cluster info and cluster nodes'

/** Commands that `prune` and `clear` send, as README.md lists them under "Redis users (ACL)". */
const ADMIN_ACL_COMMANDS =
  '+smembers +mget +evalsha +eval +exists +type +srem +hscan +hdel +lpush +ltrim +llen +publish +del +set ' +
  '+multi +exec +info +select +ping +quit'

/** Returns the hint after a command that Redis denied to `prune` or `clear`. */
function describeAdminPermissionHint(command: 'prune' | 'clear'): string {
  return (
    `Check the Redis user's ACL: ${command} needs ${ADMIN_ACL_COMMANDS} on the keys of the prefix and ` +
    'its task_updates channel, as README.md lists under "Redis users (ACL)".'
  )
}

/** Returns the hint after a failed connection, by the reason it failed. */
function findConnectHint(url: string, reason: string): string {
  if (AUTH_FAILURE.test(reason)) return isSentinelUrl(url) ? SENTINEL_AUTH_HINT : AUTH_HINT
  if (NOT_A_CLUSTER.test(reason)) return NOT_A_CLUSTER_HINT
  if (DATABASE_FAILURE.test(reason)) return DATABASE_HINT
  if (SENTINEL_FAILURE.test(reason)) return `${describeTlsMismatch(url, reason)}${SENTINEL_HINT}; ${urlHint(url)}`
  const replyHint = REPLY_HINTS.find(({ pattern }) => pattern.test(reason))
  if (replyHint !== undefined) return replyHint.hint
  const check = 'Check that Redis is running there and accepts connections from this host'
  return `${describeTlsMismatch(url, reason)}${check}; ${urlHint(url)}`
}

/** Hint after a command that Redis denied. */
const PERMISSION_HINT =
  "Check the Redis user's ACL against the commands, keys and channel that README.md lists " +
  'under "Redis users (ACL)"; prefixes and --all-prefixes need every key (~*).'

/** Hints after error replies of a Redis server that is up but does not run the reader's commands. */
const REPLY_HINTS: ReadonlyArray<{ pattern: RegExp; hint: string }> = [
  { pattern: /\bNOPERM\b/, hint: PERMISSION_HINT },
  { pattern: /\bLOADING\b/, hint: 'Redis is loading its data set into memory; run the command again once it has loaded' },
  {
    pattern: /\bBUSY\b/,
    hint: 'Redis is running a long script or function; wait for it, or end it with SCRIPT KILL or FUNCTION KILL',
  },
  {
    pattern: /\bMASTERDOWN\b/,
    hint: 'The server is a replica that lost its master and serves no stale data; read the master instead',
  },
]

/** Reply of a Redis server without cluster mode to the cluster client's `CLUSTER SLOTS`. */
const NOT_A_CLUSTER = /cluster support disabled/i

/** Hint after a cluster URL reached a Redis server without cluster mode. */
const NOT_A_CLUSTER_HINT =
  'The server is a single Redis, not a Cluster node: read it with a redis://host:port URL (rediss:// for TLS)'

/** Hint after a redirection (MOVED), which a plain redis:// URL of one Cluster node gets. */
const CLUSTER_NODE_HINT =
  'The server is a Redis Cluster node: read the cluster with a URL such as ' +
  'redis+cluster://host:port,host:port and a --prefix with a hash tag'

/** Key prefix of the tracker of a connection that only lists prefixes. */
const PREFIX_LISTING_TAG = '{web-top-cli}:'

/** Settings of a connection that depend on the command. */
export interface ConnectOptions {
  /**
   * Whether the command only lists the key prefixes of the server, so that a
   * cluster URL needs no `--prefix` with a hash tag.
   */
  listsPrefixes?: boolean
  /**
   * Whether the command writes completed tasks (`prune`), so that it keeps
   * as many as `TOP_MAX_COMPLETED_TASKS` sets. Other commands ignore the variable.
   */
  keepsCompletedCap?: boolean
  /**
   * Returns the usage error of a command that cannot use an http(s)://
   * tracker, given the URL with its secrets masked. Such a URL is then
   * rejected before it is checked for an API key.
   */
  describeHttpRejection?: (displayUrl: string) => string
}

export interface TrackerConnection {
  tracker: Tracker
  /** The tracker URL with any password masked, safe to print. */
  displayUrl: string
  /** Returns the message of an error on one line, with the URL's password masked. */
  describeFailure(error: unknown): string
  /** Closes the tracker and the connection the reader opened. */
  close(): Promise<void>
  /**
   * For a Redis Cluster URL: returns what is wrong with the cluster for
   * the prefix's slot (`diagnoseCluster`), or undefined when nothing is found.
   */
  diagnose?: () => Promise<string | undefined>
}

/**
 * Connects to the tracker a URL names. Throws a `CliError` that names the
 * URL, with its password masked, when the URL is invalid or the tracker
 * cannot be reached.
 */
export async function connectTracker(
  url: string,
  keyPrefix: string | undefined,
  apiKey?: string | undefined,
  options: ConnectOptions = {},
): Promise<TrackerConnection> {
  const displayUrl = maskUrl(url)
  const secrets = [...readUrlSecrets(url), apiKey ?? '']
  const describeFailure = (error: unknown) =>
    maskSecrets(describeFailureReason(error), secrets).replace(/\.$/, '')
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()

  if (scheme === 'redis' || scheme === 'rediss' || isMultiNodeUrl(url)) {
    return connectRedis(url, { displayUrl, describeFailure }, keyPrefix, options)
  }
  const isHttp = scheme === 'http' || scheme === 'https'
  if (isHttp && options.describeHttpRejection !== undefined) {
    throw new CliError(options.describeHttpRejection(displayUrl), EXIT_USAGE)
  }

  let tracker: Tracker
  try {
    tracker = createTrackerFromUrl(url, { keyPrefix, apiKey })
  } catch (error) {
    if (!isWebTopError(error)) throw error
    const reason = describeFailure(error)
    // The URL was rejected before any connection: a usage error, like an invalid option.
    if (isHttp) {
      // A missing key is all that is wrong with a URL that names a tracker endpoint.
      const hint = /^An API key is needed/.test(reason) ? HTTP_KEY_HINT : HTTP_HINT
      throw new CliError(`${reason.replace(HTTP_TRACKER_ADVICE, '')}; ${hint}`, EXIT_USAGE)
    }
    const withCliSchemes = LIBRARY_URL_SCHEMES.test(reason)
      ? reason.replace(LIBRARY_URL_SCHEMES, `; ${CLI_URL_SCHEMES}`)
      : reason
    throw new CliError(`${withCliSchemes}; ${urlHint(url)}`, EXIT_USAGE)
  }
  return { tracker, displayUrl, describeFailure, close: () => tracker.close() }
}

/**
 * Reads one snapshot: for Redis one MULTI with HGETALL, LRANGE and GET.
 * Throws a `CliError` naming the tracker when the read fails.
 * `readLessAdvice` is the command's way to read fewer completed tasks, if it has one.
 */
export async function readTracker(
  connection: TrackerConnection,
  readOptions: Pick<ReadOptions, 'completedLimit' | 'maxRecordBytes'>,
  readLessAdvice?: string,
): Promise<TaskSnapshot> {
  try {
    return await connection.tracker.read(readOptions)
  } catch (error) {
    throw new CliError(await diagnoseReadFailure(connection, error, readLessAdvice))
  }
}

/**
 * Returns the message of `describeReadFailure`, or on a Redis Cluster the
 * cluster's problem that `diagnose` finds, which names the node at fault.
 */
export async function diagnoseReadFailure(
  connection: TrackerConnection,
  error: unknown,
  readLessAdvice?: string,
): Promise<string> {
  const diagnosis = await connection.diagnose?.()
  if (diagnosis !== undefined) return `Cannot read from the tracker at ${connection.displayUrl}: ${diagnosis}`
  if (await isRedisAtHttpUrl(connection, error)) {
    const reason = connection.describeFailure(error).replace(HTTP_TRACKER_ADVICE, '')
    return `Cannot read from the tracker at ${connection.displayUrl}: ${reason}. ${REDIS_AT_HTTP_URL_HINT}`
  }
  return describeReadFailure(connection, error, readLessAdvice)
}

/**
 * Failures of an http:// tracker that a Redis server at its port causes:
 * Redis reads the request as commands, and closes the connection at its
 * Host: line, which it takes for a cross-protocol attack.
 */
const NOT_HTTP_REPLY = /\((?:UND_ERR_SOCKET|HPE_[A-Z_]+)\)/

const REDIS_AT_HTTP_URL_HINT =
  'The port replies to a PING as Redis does: read that Redis server with a redis://host:port URL, ' +
  "or point the URL at the app's port and tracker endpoint."

/**
 * Resolves to whether a failed read of an http:// tracker closed without
 * an HTTP reply on a port where Redis listens (`probePlainRedis`).
 */
async function isRedisAtHttpUrl(connection: TrackerConnection, error: unknown): Promise<boolean> {
  if (!(error instanceof HttpTrackerError) || error.code !== 'CONNECTION_FAILED') return false
  if (!/^http:/i.test(connection.displayUrl) || !NOT_HTTP_REPLY.test(error.message)) return false
  return probePlainRedis(connection.displayUrl)
}

/**
 * Returns the one-line message for a failed read, ending with what to check
 * for that kind of tracker. For a reply of an http(s):// tracker that is too
 * large, it ends with `readLessAdvice`, the command's way to read fewer
 * completed tasks, or else with what to change in the app.
 */
export function describeReadFailure(connection: TrackerConnection, error: unknown, readLessAdvice?: string): string {
  const kind = connection.tracker.kind
  let reason = connection.describeFailure(error)
  if (error instanceof HttpTrackerError && error.code === 'RESPONSE_TOO_LARGE') {
    return describeTooLargeReply(connection, reason, readLessAdvice)
  }
  if (kind === 'http') reason = reason.replace(HTTP_TRACKER_ADVICE, '')
  const keyFromUrl = connection.tracker instanceof HttpTracker && connection.tracker.keyFromUrl
  const redisHint = kind === 'redis' ? findRedisHint(reason, connection.diagnose !== undefined) : undefined
  const clusterHint = connection.diagnose === undefined ? undefined : CLUSTER_READ_HINT
  const certificateHint = kind === 'http' ? findCertificateHint(reason) : undefined
  const hint =
    certificateHint ??
    (kind === 'redis' ? (redisHint ?? clusterHint) : findHttpHint(error, keyFromUrl)) ??
    READ_FAILURE_HINTS[kind]
  const message = `Cannot read from the tracker at ${connection.displayUrl}: ${reason}.`
  // The port is the cause, not the app, so the advice to check the app would mislead.
  if (error instanceof HttpTrackerError && error.code === 'BLOCKED_PORT') return message
  return hint === undefined ? message : `${message} ${hint}`
}

/**
 * Returns the hint for a failed read of an http(s):// tracker by what
 * failed, so that only a failure that the key can cause names the key.
 * Returns undefined for the general hint of `READ_FAILURE_HINTS`.
 */
function findHttpHint(error: unknown, keyFromUrl: boolean): string | undefined {
  const code = error instanceof HttpTrackerError ? error.code : undefined
  if (code === 'INVALID_API_KEY') return keyFromUrl ? REJECTED_KEY_HINTS.url : REJECTED_KEY_HINTS.option
  if (code === 'CONNECTION_FAILED' || code === 'TIMEOUT') return UNREACHABLE_APP_HINT
  const statusCode = error instanceof HttpTrackerError ? error.statusCode : undefined
  if (statusCode !== undefined && statusCode >= 500) return ENDPOINT_FAILED_HINT
  if (code === 'INVALID_RESPONSE' || (statusCode !== undefined && statusCode !== 401)) {
    return NOT_ENDPOINT_HINT
  }
  return keyFromUrl ? URL_KEY_HINT : undefined
}

/**
 * Returns the hint for a certificate error that the HTTP tracker's message
 * names in brackets, as in "Cannot connect to https://... (CERT_HAS_EXPIRED)".
 */
function findCertificateHint(reason: string): string | undefined {
  const code = /\(([A-Z0-9_]+)\)/.exec(reason)?.[1]
  const hint = code === undefined ? undefined : describeCertificateCode(code)
  return hint === undefined ? undefined : `${hint}.`
}

/** Advice after a reply of completed tasks too large to read: what to change in the app. */
const KEEP_FEWER_ADVICE =
  'make the app keep fewer completed tasks (maxCompletedTasks or TOP_MAX_COMPLETED_TASKS) ' +
  'or smaller records (its limits option)'

/**
 * Returns the message for a reply over the HTTP tracker's size limit. The
 * tracker's advice for completed tasks names its read() option, which a
 * command line user cannot set, so it is replaced by what the command or
 * the app can change.
 */
function describeTooLargeReply(connection: TrackerConnection, reason: string, readLessAdvice?: string): string {
  const message = `Cannot read from the tracker at ${connection.displayUrl}`
  if (!reason.includes('action=completed-tasks')) return `${message}: ${reason}`

  const readLess = readLessAdvice === undefined ? '' : `${readLessAdvice}, or `
  return `${message}: ${reason.replace(/; [^;]*$/, '')}; ${readLess}${KEEP_FEWER_ADVICE}`
}

/**
 * Reads `TOP_MAX_COMPLETED_TASKS`, the number of completed tasks the apps
 * keep, which `prune` keeps in `past_tasks` once it has moved the ended
 * tasks there (or the number the list had, when that is larger).
 */
function readCompletedCap(): number | undefined {
  try {
    return readMaxCompletedEnv(process.env.TOP_MAX_COMPLETED_TASKS)
  } catch (error) {
    throw new CliError((error as Error).message.replace(/^web-top: /, ''), EXIT_USAGE)
  }
}

async function connectRedis(
  url: string,
  names: Pick<TrackerConnection, 'displayUrl' | 'describeFailure'>,
  keyPrefix: string | undefined,
  options: ConnectOptions,
): Promise<TrackerConnection> {
  const { displayUrl, describeFailure } = names
  const listsPrefixes = options.listsPrefixes === true
  const maxCompletedTasks = options.keepsCompletedCap === true ? readCompletedCap() : undefined
  const client = createReaderClient(url, names, keyPrefix, listsPrefixes)
  const diagnose = createClusterDiagnosis(url, listsPrefixes ? undefined : keyPrefix)
  // ioredis rejects `connect()` with "Connection is closed." and reports the
  // cause (ECONNREFUSED, ETIMEDOUT, WRONGPASS) only as an `error` event. The
  // listener also keeps ioredis from printing every connection error.
  let connectionError: unknown
  client.on('error', (error) => {
    connectionError ??= error
  })
  // ioredis emits `connect` once the socket is open, and `ready` only after Redis replied.
  let socketOpened = false
  client.once('connect', () => {
    socketOpened = true
  })
  const progress: ConnectProgress = {}

  try {
    await withDeadline(openConnection(client, progress), CONNECT_DEADLINE_MS)
    if (connectionError !== undefined) throw connectionError
  } catch (error) {
    client.disconnect()
    // A finding of the ready check names its cause and what to do.
    if (error instanceof CliError) throw new CliError(`Cannot connect to the tracker at ${displayUrl}: ${error.message}`)
    const diagnosis = await diagnose?.()
    if (diagnosis !== undefined) throw new CliError(`Cannot connect to the tracker at ${displayUrl}: ${diagnosis}`)
    // Without an `error` event, an open socket either reached the deadline
    // (a frozen or busy Redis) or was closed by the server, which gives only
    // "Connection is closed." and needs the probes below to say why.
    // A reply of Redis to the first commands, such as NOAUTH to INFO, names the cause itself.
    const silent = socketOpened && connectionError === undefined && !isReplyError(error)
    if (error instanceof DeadlineError && progress.loadingEtaSeconds !== undefined) {
      throw new CliError(
        `Redis at ${displayUrl} is still loading its data set into memory (about ${progress.loadingEtaSeconds} s left, ` +
          'by its INFO loading_eta_seconds). Run the command again once it has loaded',
      )
    }
    if (silent && error instanceof DeadlineError) {
      throw new CliError(
        `Redis at ${displayUrl} accepted the connection but did not reply within ${CONNECT_DEADLINE_MS / 1000} s. ` +
          'It may be busy (a long script, a blocking command) or paused (CLIENT PAUSE, DEBUG SLEEP); check its log and SLOWLOG',
      )
    }
    const cause = connectionError ?? error
    const mismatch = isMultiNodeUrl(url) ? undefined : await findProtocolMismatch(url, cause)
    if (mismatch !== undefined) {
      const reason = describeFailure(mismatch.reason)
      throw new CliError(`Cannot connect to the tracker at ${displayUrl}: ${reason}. ${mismatch.hint}`)
    }
    if (silent) throw new CliError(describeClosedConnection(client, displayUrl, url))
    const reason = describeFailure(cause)
    throw new CliError(`Cannot connect to the tracker at ${displayUrl}: ${reason}. ${findConnectHint(url, reason)}`)
  }

  const state = readerStates.get(client)
  if (state !== undefined) state.connectedOnce = true
  // A tracker on a cluster client needs a hash-tagged prefix. Listing uses
  // only the client and reads no key under the tracker's prefix, so any tag serves.
  const trackerPrefix = listsPrefixes ? PREFIX_LISTING_TAG : keyPrefix
  const tracker = new RedisTracker({ client, keyPrefix: trackerPrefix, maxCompletedTasks })
  return {
    tracker,
    displayUrl,
    describeFailure,
    close: async () => {
      await tracker.close()
      client.disconnect()
    },
    diagnose,
  }
}

/** Returns the `diagnose` function of a Redis Cluster URL, or undefined for another URL. */
function createClusterDiagnosis(url: string, keyPrefix: string | undefined): (() => Promise<string | undefined>) | undefined {
  if (!isMultiNodeUrl(url)) return undefined
  const target = parseRedisTarget(url)
  if (target.kind !== 'cluster') return undefined
  return () => diagnoseCluster(target, keyPrefix)
}

/** Failures that happen before any handshake: nothing listens there, or the host name is unknown. */
const NOTHING_LISTENING = /\b(?:ECONNREFUSED|ENOTFOUND|EAI_AGAIN)\b/

/**
 * Returns a hint, ending with a space, when a URL that requests TLS
 * (`rediss://`, `rediss+cluster://`, `rediss+sentinel://`) failed after
 * reaching the server. A Redis server without TLS on that port does not
 * complete the TLS handshake: redis-server 7.0 reads it as the start of a
 * command and waits, so the connection times out. Returns an empty string
 * otherwise.
 */
function describeTlsMismatch(url: string, reason: string): string {
  if (!/^rediss[+:]/i.test(url) || NOTHING_LISTENING.test(reason)) return ''
  return (
    'The URL requests TLS (rediss://), and a Redis server without TLS on that port does not complete ' +
    'the TLS handshake; use redis:// for such a server. '
  )
}

/**
 * Connects the client and sends a PING. SELECT of the URL's database runs
 * while connecting, and ioredis only emits its failure ("DB index is out of
 * range"), so the reply to the PING shows whether the connection is usable.
 */
async function openConnection(client: RedisClient, progress: ConnectProgress): Promise<void> {
  await client.connect()
  if (client instanceof Redis && client.options.enableReadyCheck !== true) await runReadyCheck(client, progress)
  await client.ping()
}

/** Findings of the ready check while the connection opens, for the message of a deadline that passed. */
interface ConnectProgress {
  /** `loading_eta_seconds` of the latest INFO that found Redis loading its data set. */
  loadingEtaSeconds?: number
}

/** Wait between two INFO commands while Redis loads its data set. */
const LOADING_POLL_MS = 500

/**
 * Runs ioredis's ready check for a client created without it: waits while
 * Redis loads its data set, then turns the check on, so that reconnections
 * and the clients that `duplicate()` makes run it. For a user whose ACL
 * denies INFO, ioredis (5.11) skips its check and prints a warning with a
 * link to the console, a line that is not the CLI's own. The check then
 * stays off without a message, because the CLI works without it.
 */
async function runReadyCheck(client: Redis, progress: ConnectProgress): Promise<void> {
  for (;;) {
    let info: string
    try {
      // The default sections include persistence (loading) and replication (role).
      info = await client.info()
    } catch (error) {
      if (isDeniedCommand(error)) return
      throw error
    }
    client.options.enableReadyCheck = true
    requireSentinelRole(client, info)
    if (/^loading:(\d+)/m.exec(info)?.[1] !== '1') return
    progress.loadingEtaSeconds = Number(/^loading_eta_seconds:(\d+)/m.exec(info)?.[1] ?? 1)
    await new Promise((resolve) => setTimeout(resolve, LOADING_POLL_MS))
  }
}

/**
 * Throws when Sentinel named a server whose role is not the one the
 * client asked for, as a Sentinel that monitors a replica under a master's
 * name does. ioredis's own ready check makes this test and tries the next
 * Sentinel, and reconnections and duplicated clients still run it.
 */
function requireSentinelRole(client: Redis, info: string): void {
  const { sentinels, role: expected = 'master', name } = client.options
  if (sentinels === undefined || sentinels === null || sentinels.length === 0) return
  const role = /^role:(\w+)/m.exec(info)?.[1]
  if (role === undefined || role === expected) return
  throw new CliError(
    `Sentinel named a Redis server for ${JSON.stringify(name)} whose role is ${role}, not ${expected}. ` +
      'Check the name in the URL and the Sentinel configuration (SENTINEL GET-MASTER-ADDR-BY-NAME)',
  )
}

/** Checks whether an error is a reply of Redis to a command, as ioredis's `ReplyError` is. */
function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError'
}

/** Checks whether Redis rejected a command for the user's ACL (NOPERM), or because it is renamed away. */
function isDeniedCommand(error: unknown): boolean {
  return error instanceof Error && /^NOPERM|unknown command/i.test(error.message)
}

/**
 * Returns the message for a server that accepted the connection and closed
 * it without an error, as a server of another kind may do on the client's
 * first command. Any bytes it sent before closing parsed as Redis replies,
 * because other bytes fail with a parser error.
 */
function describeClosedConnection(client: RedisClient, displayUrl: string, url: string): string {
  const bytesRead = client instanceof Redis ? client.stream?.bytesRead : undefined
  const closed = bytesRead === 0 ? 'closed it without a reply' : 'closed it before the connection was ready'
  return (
    `Cannot connect to the tracker at ${displayUrl}: the server accepted the connection and ${closed}. ` +
    `Check that the port in the URL is the port of a Redis server; ${urlHint(url)}`
  )
}

/** The rejection of `withDeadline` when the work did not finish in time. */
class DeadlineError extends Error {}

/** Resolves as `work` does, or rejects with a `DeadlineError` after `timeoutMs`. */
async function withDeadline(work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new DeadlineError(`no working connection after ${timeoutMs / 1000} s`))
    }, timeoutMs)
  })
  // The losing promise may still reject later; this handler keeps that from
  // becoming an unhandled rejection.
  work.catch(() => undefined)
  try {
    await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Whether the reader's client has connected once; shared with the subscriber it duplicates. */
interface ConnectionState {
  connectedOnce: boolean
}

const readerStates = new WeakMap<RedisClient, ConnectionState>()

/**
 * Creates the reader's client for a `redis://` or `rediss://` URL, or for a
 * cluster or Sentinel URL through the library's `createRedisClient`.
 * Throws a `CliError` for an invalid URL, or a cluster prefix without a hash
 * tag unless the client only lists prefixes.
 */
function createReaderClient(
  url: string,
  names: Pick<TrackerConnection, 'displayUrl' | 'describeFailure'>,
  keyPrefix: string | undefined,
  listsPrefixes: boolean,
): RedisClient {
  const state: ConnectionState = { connectedOnce: false }
  const options = createReaderOptions(state)
  let client: RedisClient
  if (isMultiNodeUrl(url)) {
    try {
      const isCluster = parseRedisTarget(url).kind === 'cluster'
      if (!listsPrefixes && isCluster) requireClusterPrefix(keyPrefix, names)
      client = createRedisClient(url, {
        // NOTE: the nodes of a cluster keep ioredis's ready check, which prints a
        // warning of its own to the console when the user's ACL denies INFO.
        redisOptions: isCluster ? options : { ...options, enableReadyCheck: false },
        clusterOptions: {
          lazyConnect: true,
          clusterRetryStrategy: (attempt) => options.retryStrategy?.(attempt) ?? null,
        },
      })
    } catch (error) {
      if (!isWebTopError(error)) throw error
      throw new CliError(`${names.describeFailure(error)}; ${urlHint(url)}`, EXIT_USAGE)
    }
  } else {
    try {
      new URL(url)
    } catch {
      const reason = describeInvalidUrl(url)
      throw new CliError(`Invalid tracker URL ${JSON.stringify(names.displayUrl)}: ${reason}; ${urlHint(url)}`, EXIT_USAGE)
    }
    try {
      validateServerUrl(url)
    } catch (error) {
      if (!isWebTopError(error)) throw error
      throw new CliError(`${names.describeFailure(error)}; ${urlHint(url)}`, EXIT_USAGE)
    }
    client = new Redis(url, { ...options, enableReadyCheck: false })
  }
  readerStates.set(client, state)
  return client
}

/** Throws a usage `CliError` naming --prefix when a cluster prefix has no hash tag. */
function requireClusterPrefix(
  keyPrefix: string | undefined,
  names: Pick<TrackerConnection, 'describeFailure'>,
): void {
  try {
    requireClusterHashTag(keyPrefix ?? '')
  } catch (error) {
    if (!isWebTopError(error)) throw error
    const reason = names.describeFailure(error).replace(/keyPrefix/, '--prefix')
    throw new CliError(`${reason}; ${CLUSTER_PREFIX_HINT}`, EXIT_USAGE)
  }
}

/**
 * Options of the reader's client. It connects lazily, so the first
 * connection can be awaited and its failure reported. It does not retry
 * until a connection has worked, and reconnects with a backoff after that,
 * so `live` survives a Redis restart. The subscriber that
 * `RedisTracker.subscribe()` duplicates from this client gets the same options.
 */
function createReaderOptions(state: ConnectionState): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => retryDelay(state, attempt),
    // Without this, ioredis retries unreachable Sentinels forever.
    sentinelRetryStrategy: (attempt) => retryDelay(state, attempt),
  }
}

/** No retry before the first working connection, then a backoff capped at 2 s. */
function retryDelay(state: ConnectionState, attempt: number): number | null {
  if (!state.connectedOnce) return null
  return Math.min(100 * 2 ** attempt, MAX_RECONNECT_DELAY_MS)
}

/**
 * Returns the message of an error. ioredis fails queued commands with a
 * MaxRetriesPerRequestError while the connection is down, and its message
 * names an option instead of the cause.
 */
function describeFailureReason(error: unknown): string {
  if (error instanceof Error && error.name === 'MaxRetriesPerRequestError') {
    return 'the connection to Redis is lost, reconnecting'
  }
  // Errors of the library start with its own name; the CLI prints `web-top-cli:` before them.
  return maskUrlsInText(describeError(error).replace(/^web-top: /, ''))
}

/** Replaces each secret in a message by `***`, should a client ever put one there. */
function maskSecrets(message: string, secrets: readonly string[]): string {
  let masked = message
  for (const secret of secrets) {
    if (secret.length >= 3) masked = masked.split(secret).join('***')
  }
  return masked
}

/** Returns the password and the secret query parameter values of a URL, raw and decoded. */
function readUrlSecrets(url: string): string[] {
  const secrets: string[] = []
  secrets.push(...readPasswordForms(url))
  for (const match of url.matchAll(SECRET_PARAMETER)) {
    const value = match[0].slice(match[1]?.length ?? 0)
    secrets.push(value, decodeOrKeep(value))
  }
  return secrets.filter((secret) => secret !== '')
}
