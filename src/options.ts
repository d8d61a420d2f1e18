/**
 * Options shared by the Express middleware and the Fastify plugin, their
 * defaults, environment fallbacks and validation. Validation runs once, at
 * setup, never per request.
 */
import { Console as NodeConsole } from 'node:console'
import type { IncomingMessage } from 'node:http'
import {
  invalidEnvironmentValue,
  invalidOptionRange,
  invalidOptionType,
  invalidOptionsArgument,
  invalidUsage,
  requireCount,
  type WebTopError,
} from './errors'
import type { RedactionOptions, SizeLimits } from './task/redact'
import { DEFAULT_SIZE_LIMITS } from './task/redact'
import { pathOfUrl } from './task/request-target'
import { DEFAULT_MAX_COMPLETED_TASKS, readMaxCompletedEnv } from './trackers/completed-cap'
import { DEFAULT_TRACKER_URL } from './trackers/from-url'
import { resolveBatchWindow, type GivenRedisClient, type RedisClient } from './trackers/redis-tracker'
import type { Tracker } from './trackers/tracker'
import { hasControlCharacter, KEY_PREFIX_WITHOUT_CONTROLS } from './util/control-characters'
import { describePathForLog } from './util/log-path'
import { maskUrl } from './util/mask-url'
import { createConsoleLogger, createRateLimitedLogger, type Logger } from './util/logger'

export interface TopOptions extends RedactionOptions {
  /**
   * Where tasks are written: `redis://host:port/db`, `rediss://…`,
   * `redis+cluster://host:port,host:port` (Redis Cluster, from seed nodes),
   * `redis+sentinel://host:port/master` (the master that Sentinel names) or
   * `memory://`. A list of `redis://` node URLs is a cluster too. On a
   * cluster, `keyPrefix` must contain a hash tag. Ignored when `tracker` or
   * `redis` is given. An `http(s)://` URL, which only readers can use,
   * throws a `TypeError` with code `WEB_TOP_INVALID_TRACKER_URL`. `null`
   * counts as unset.
   * @default process.env.TOP_TRACKER_URL (unless empty), else 'redis://127.0.0.1:6379'
   */
  trackerUrl?: string | readonly string[] | null | undefined
  /**
   * A tracker instance to write to, such as a `MemoryTracker`. The recorder
   * does not close a tracker it was given. Cannot be combined with `redis`.
   */
  tracker?: Tracker | undefined
  /**
   * An ioredis 5 or 6 client or Cluster to write through. The recorder
   * does not close it. Cannot be combined with `tracker`.
   */
  redis?: GivenRedisClient | undefined
  /**
   * Prepended to every Redis key and channel. Leave empty to stay readable by
   * the Python `web-top`; use a hash tag (`{shop}:`) on Redis Cluster. At
   * most 256 characters. `null` counts as unset.
   * @default process.env.TOP_TRACKER_PREFIX ?? ''
   */
  keyPrefix?: string | null | undefined
  /**
   * Max number of completed tasks kept by the tracker that the recorder opens. A
   * tracker passed as `tracker` keeps its own cap.
   * @default process.env.TOP_MAX_COMPLETED_TASKS ?? 256
   */
  maxCompletedTasks?: number | undefined
  /**
   * Requests not recorded: exact paths (`'/health'`), patterns matched against
   * the path without its query string, or a function of Node's request
   * (`request.raw` in Fastify) that returns a truthy value for requests to
   * skip. The function must return synchronously: a returned Promise skips
   * nothing, and a warning is logged. A request on which the function
   * throws is recorded, and the error logged.
   * @default []
   */
  ignore?: ReadonlyArray<string | RegExp> | ((req: IncomingMessage) => unknown) | undefined
  /** Tags added to every task, such as `service.name`. */
  tags?: Record<string, string> | undefined
  /**
   * Name of the processor shown in the Worker column.
   * @default `node:<pid>` (with `/w<threadId>` inside a worker thread)
   */
  processorName?: string | undefined
  /**
   * Whether request and response headers are stored. Secret values are masked either way.
   * @default true
   */
  captureHeaders?: boolean | undefined
  /**
   * Whether the app runs behind a proxy whose `X-Forwarded-For` and
   * `X-Forwarded-Proto` may be trusted. When true, the first address of
   * `X-Forwarded-For` is recorded as the client address. When false, the
   * TCP peer is. When unset, the adapters follow the framework's own setting
   * (Express `trust proxy`, Fastify `trustProxy`).
   */
  trustProxy?: boolean | undefined
  /**
   * Caps on the length of paths, header values and the number of headers
   * and parameters. `Infinity` removes a cap.
   */
  limits?: { [Name in keyof SizeLimits]?: SizeLimits[Name] | undefined } | undefined
  /**
   * Logger of connection problems and dropped writes, Fastify's own in the
   * plugin. A `console` gets the message first.
   */
  logger?: Logger | undefined
  /**
   * Memory budget, in bytes, for task records waiting for Redis while it is
   * unreachable or slow. Records past it are dropped and counted in
   * `recorder.tracker.stats().dropped`. The first drop is logged at once,
   * later ones as one count per 30 s. Responses never wait for Redis.
   * Applies to the Redis tracker the recorder opens, not to one passed as
   * `tracker`.
   * Note: records in flight also stay in memory as ioredis commands, so the
   * heap grows by somewhat more than this: by 2.8 MiB for a 2 MiB budget in
   * test/paused-redis-load.test.ts. At least 1024; a budget below 16384
   * logs a warning at setup, because it holds only a few records.
   * @default 8388608 (8 MiB)
   */
  maxPendingBytes?: number | undefined
  /**
   * How long the Redis tracker collects writes before it sends them as one
   * script call, in milliseconds, from 0 (each event-loop turn) to 1000.
   * Longer windows make fewer calls, but under load they cost the app more
   * CPU and latency per request (see bench/README.md), and show requests
   * that much later. A request that
   * starts and ends within one window gets no `processors` entry; its start
   * and end are still published. Applies to the Redis tracker the recorder
   * opens, not to one passed as `tracker`.
   * @default 2
   */
  batchWindowMs?: number | undefined
  /**
   * Share of requests, from 0 to 1, whose completed record is kept, for
   * very high traffic. Each request is picked at random when it starts.
   * Every request still has its active entry while in flight, so readers
   * see all active requests. A request left out has neither a published
   * start nor a completed record: its active entry is stored without being
   * published, and it is removed when the request ends. Readers that follow
   * the update stream see such a request only when they read the active
   * entries. Applies to the Redis and memory trackers; a tracker passed as
   * `tracker` without `recordStartFields()` records every request.
   * @default 1
   */
  completedSampleRate?: number | undefined
  /**
   * Time to live of the recorder's heartbeat, in milliseconds. The
   * heartbeat is refreshed every third of it. Readers treat the active
   * tasks of a recorder whose heartbeat expired as stale, and
   * `pruneStaleTasks()` removes them. From 300 to 2147483647 (Node's
   * largest timer delay).
   * @default 30000
   */
  heartbeatTtlMs?: number | undefined
  /**
   * Whether the recorder removes its active tasks and closes its Redis
   * connection on SIGTERM and SIGINT when the app has no listener of its own
   * for the signal, and then ends the process with the same signal. Node
   * delivers signals to the main thread only, so it does nothing for a
   * recorder in a worker thread. An app that handles the signal itself
   * keeps full control: closing its server (Express) or the Fastify app
   * then closes the recorder.
   * @default true
   */
  handleSignals?: boolean | undefined
}

/** Shortest heartbeat TTL accepted, in milliseconds: a refresh every 100 ms is already frequent. */
export const MIN_HEARTBEAT_TTL_MS = 300

/**
 * Maximum heartbeat TTL accepted, in milliseconds: Node's largest timer
 * delay (2^31 - 1 ms, about 24.8 days). Node runs a timer with a longer
 * delay after 1 ms, which would refresh the heartbeat in a busy loop.
 */
export const MAX_HEARTBEAT_TTL_MS = 2_147_483_647

/** Heartbeat TTL when the option is unset, in milliseconds. */
export const DEFAULT_HEARTBEAT_TTL_MS = 30_000

export { DEFAULT_MAX_COMPLETED_TASKS }

/** The tracker methods the recorder calls. */
const TRACKER_METHODS = ['recordStart', 'recordEnd', 'removeProcessors', 'flush', 'close'] as const

const LIMIT_NAMES = Object.keys(DEFAULT_SIZE_LIMITS).join(', ')

/** Options after defaults, environment fallbacks and validation. */
export interface ResolvedOptions {
  trackerUrl: string | readonly string[]
  /**
   * Source of `trackerUrl`, named in the line that the recorder logs at
   * start and in an error about a URL from `TOP_TRACKER_URL`.
   */
  trackerUrlSource: TrackerUrlSource
  tracker: Tracker | undefined
  redis: RedisClient | undefined
  keyPrefix: string
  maxCompletedTasks: number
  /**
   * True when the option or `TOP_MAX_COMPLETED_TASKS` set `maxCompletedTasks`,
   * so that the shared memory tracker warns only about a size that was asked for.
   */
  maxCompletedTasksGiven: boolean
  /** Tests a request and its target (`req.url`, or the framework's URL), whose path it matches without the query. */
  isIgnored: (req: IncomingMessage, url: string | undefined) => boolean
  tags: Record<string, string>
  processorName: string | undefined
  captureHeaders: boolean
  trustProxy: boolean | undefined
  limits: SizeLimits
  redaction: RedactionOptions
  logger: Logger | undefined
  maxPendingBytes: number | undefined
  batchWindowMs: number
  completedSampleRate: number
  heartbeatTtlMs: number
  handleSignals: boolean
  /** Option names given that web-top does not know, each with a known name it may be a typo of. */
  unknownOptions: UnknownOption[]
}

/**
 * Source of the tracker URL: the `trackerUrl` option, `TOP_TRACKER_URL`, or
 * the default, which a `trackerUrl` of null or undefined falls back to.
 */
export type TrackerUrlSource = 'option' | 'environment' | 'default'

export interface UnknownOption {
  name: string
  suggestion: string | undefined
}

/** Every option name; the type makes adding an option without listing it here fail to compile. */
const OPTION_NAMES: Record<keyof TopOptions, true> = {
  trackerUrl: true, tracker: true, redis: true, keyPrefix: true, maxCompletedTasks: true,
  ignore: true, tags: true, processorName: true, captureHeaders: true, trustProxy: true,
  limits: true, logger: true, maxPendingBytes: true, batchWindowMs: true,
  completedSampleRate: true, heartbeatTtlMs: true, handleSignals: true,
  redactHeaders: true, allowHeaders: true, redactParams: true, allowParams: true,
}

const KNOWN_OPTIONS = Object.keys(OPTION_NAMES)

/** Each known option by its name in lower case without `_` and `-`, so `tracker_url` finds `trackerUrl`. */
const OPTIONS_BY_FOLDED_NAME = new Map(KNOWN_OPTIONS.map((name) => [foldOptionName(name), name]))

/** Unknown names too far from an option to count as a typo, each with the option it is likely meant as. */
const SUGGESTED_OPTIONS = new Map([['prefix', 'keyPrefix']])

/**
 * Returns the string that was spread into an options object, as
 * `{ ...'redis://cache:6379' }` spreads it: one character under each of
 * the keys 0, 1, 2 and on, perhaps with options added, such as a
 * `logger`. Returns undefined for options without the key 0, which no
 * option has. The Fastify plugin rejects a string itself, before it
 * spreads the options.
 */
function readSpreadString(options: object): string | undefined {
  const record = options as Record<string, unknown>
  let text = ''
  for (let index = 0; typeof record[index] === 'string' && (record[index] as string).length === 1; index++) {
    text += record[index] as string
  }
  return text === '' ? undefined : text
}

/** Validates options and fills in defaults. Throws `TypeError` or `RangeError` with code `WEB_TOP_INVALID_OPTION`. */
export function resolveOptions(options: TopOptions = {}, env = process.env): ResolvedOptions {
  if (!isOptionsObject(options)) throw invalidOptionsArgument(options)
  const spread = readSpreadString(options)
  if (spread !== undefined) throw invalidOptionsArgument(spread, ', spread into an object of its characters')
  // First, so that `trackerURL` fails before the default tracker URL is resolved.
  const unknownOptions = findUnknownOptions(options)

  const trackerUrlSource: TrackerUrlSource =
    options.trackerUrl != null ? 'option' : readEnv(env, 'TOP_TRACKER_URL') !== undefined ? 'environment' : 'default'
  const trackerUrl = checkTrackerUrl(options.trackerUrl ?? readEnv(env, 'TOP_TRACKER_URL') ?? DEFAULT_TRACKER_URL)

  const keyPrefix = checkKeyPrefix(options.keyPrefix ?? env.TOP_TRACKER_PREFIX ?? '', options.keyPrefix == null)

  const tracker = checkTracker(options.tracker)
  const redis = checkRedisClient(options.redis)
  if (tracker !== undefined && redis !== undefined) {
    const expected = 'left unset when `tracker` is given, because the tracker has its own connection'
    throw invalidOptionType('redis', expected, redis)
  }
  // Records go through the given tracker or client, so a URL beside it would
  // be ignored without a word. TOP_TRACKER_URL stays a default, and is ignored.
  if (options.trackerUrl != null && (tracker !== undefined || redis !== undefined)) {
    const replacingOption = tracker !== undefined ? '`tracker`' : '`redis`'
    const expected = `left unset when ${replacingOption} is given, because records go through it and the URL would be ignored`
    throw invalidOptionType('trackerUrl', expected, maskTrackerUrl(trackerUrl))
  }

  const logger = checkLogger(options.logger)
  return {
    trackerUrl,
    trackerUrlSource,
    tracker,
    redis,
    keyPrefix,
    maxCompletedTasks: resolveMaxCompleted(options.maxCompletedTasks, env.TOP_MAX_COMPLETED_TASKS),
    maxCompletedTasksGiven:
      options.maxCompletedTasks !== undefined || readMaxCompletedEnv(env.TOP_MAX_COMPLETED_TASKS) !== undefined,
    isIgnored: compileIgnore(options.ignore, logger),
    tags: checkTags(options.tags),
    processorName: checkProcessorName(options.processorName),
    captureHeaders: checkBoolean('captureHeaders', options.captureHeaders) ?? true,
    trustProxy: checkBoolean('trustProxy', options.trustProxy),
    limits: resolveLimits(options.limits),
    redaction: {
      redactHeaders: checkNames('redactHeaders', options.redactHeaders),
      allowHeaders: checkNames('allowHeaders', options.allowHeaders),
      redactParams: checkNames('redactParams', options.redactParams),
      allowParams: checkNames('allowParams', options.allowParams),
    },
    logger,
    maxPendingBytes: resolveMaxPendingBytes(options.maxPendingBytes),
    batchWindowMs: resolveBatchWindow(options.batchWindowMs),
    completedSampleRate: resolveSampleRate(options.completedSampleRate),
    heartbeatTtlMs: resolveHeartbeatTtl(options.heartbeatTtlMs),
    handleSignals: checkBoolean('handleSignals', options.handleSignals) ?? true,
    unknownOptions,
  }
}

/**
 * Returns true for an options object: a plain object, an object without a
 * prototype or a class instance. A Map, Date, boxed number or other
 * built-in object is not one, because the options are read from its own
 * properties, which such an object keeps empty.
 */
export function isOptionsObject(value: unknown): value is object {
  return value !== null && typeof value === 'object' && Object.prototype.toString.call(value) === '[object Object]'
}

/**
 * Longest `keyPrefix`, in Unicode code points. Every Redis key, channel and
 * script call of every request carries the prefix, and the start log line
 * prints it. Prefixes in use are a name and a separator, far shorter than this.
 */
export const MAX_KEY_PREFIX_LENGTH = 256

/**
 * Returns a key prefix from the option, or from `TOP_TRACKER_PREFIX` when
 * `fromEnvironment` is true, and throws when it is not a string, contains a
 * control character or is longer than `MAX_KEY_PREFIX_LENGTH`.
 */
function checkKeyPrefix(keyPrefix: unknown, fromEnvironment: boolean): string {
  if (typeof keyPrefix !== 'string') throw invalidOptionType('keyPrefix', 'a string', keyPrefix)
  const reject = (expected: string, received: string): WebTopError =>
    fromEnvironment
      ? invalidEnvironmentValue('TOP_TRACKER_PREFIX', expected, received)
      : invalidOptionRange('keyPrefix', expected, received)

  if (hasControlCharacter(keyPrefix)) throw reject(KEY_PREFIX_WITHOUT_CONTROLS, keyPrefix)
  // Counted in code points only past the cap in UTF-16 units, so that usual prefixes cost one comparison.
  const length = keyPrefix.length > MAX_KEY_PREFIX_LENGTH ? [...keyPrefix].length : 0
  if (length > MAX_KEY_PREFIX_LENGTH) {
    const expected = `at most ${MAX_KEY_PREFIX_LENGTH} characters long, because every Redis key and write carries it`
    // The length in place of the value, which may be megabytes long.
    throw reject(expected, `${length} characters`)
  }
  return keyPrefix
}

/**
 * Lists the option names that web-top does not know. The recorder logs them
 * rather than throwing, so that an option meant for another layer does not
 * stop the app. A name that differs from a known option only in case, `_`
 * or `-` (`trackerURL`, `tracker_url`) throws a `TypeError` instead.
 * Ignored, it would leave the option it was meant to be at its default,
 * which for `trackerUrl` is a Redis the app may not own.
 */
function findUnknownOptions(options: object): UnknownOption[] {
  const unknown: UnknownOption[] = []
  for (const name of Object.keys(options)) {
    if (Object.hasOwn(OPTION_NAMES, name)) continue

    const known = OPTIONS_BY_FOLDED_NAME.get(foldOptionName(name))
    if (known !== undefined) throw misspelledOption(name, known)
    const suggestion = SUGGESTED_OPTIONS.get(name) ?? KNOWN_OPTIONS.find((option) => isLikelyTypo(name, option))
    unknown.push({ name, suggestion })
  }
  return unknown
}

function foldOptionName(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '')
}

/** Builds the `TypeError` for an option name that differs from `known` only in case, `_` or `-`. */
function misspelledOption(name: string, known: string): WebTopError {
  return invalidUsage(
    `Unknown option \`${name}\`: did you mean \`${known}\`? Option names are camelCase and case-sensitive.`,
  )
}

/** Returns true when `name` differs from `option` in case only, or by one or two edits. */
function isLikelyTypo(name: string, option: string): boolean {
  const lowerName = name.toLowerCase()
  const lowerOption = option.toLowerCase()
  if (lowerName === lowerOption) return true
  if (Math.abs(lowerName.length - lowerOption.length) > 2) return false

  // Levenshtein distance, one row at a time.
  let previous = Array.from({ length: lowerOption.length + 1 }, (_, index) => index)
  for (let i = 1; i <= lowerName.length; i++) {
    const current = [i]
    for (let j = 1; j <= lowerOption.length; j++) {
      const substitution = (previous[j - 1] as number) + (lowerName[i - 1] === lowerOption[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution)
    }
    previous = current
  }
  return (previous[lowerOption.length] as number) <= 2
}

/** Returns a tracker URL, or a list of cluster node URLs, with its passwords masked for a message. */
function maskTrackerUrl(url: string | readonly string[]): string {
  return typeof url === 'string' ? maskUrl(url) : url.map(maskUrl).join(',')
}

/** Accepts one URL, or a list of cluster node URLs. */
function checkTrackerUrl(value: unknown): string | readonly string[] {
  if (!Array.isArray(value)) {
    if (typeof value === 'string' && value !== '') return value
    throw invalidOptionType('trackerUrl', 'a non-empty URL string', value)
  }

  const bad = value.find((item) => typeof item !== 'string' || item === '')
  if (value.length === 0 || bad !== undefined) {
    const expected = 'a non-empty array of cluster node URL strings'
    throw invalidOptionType('trackerUrl', expected, value.length === 0 ? value : bad)
  }
  return [...(value as string[])]
}

function resolveSampleRate(value: number | undefined): number {
  if (value === undefined) return 1
  if (typeof value !== 'number') throw invalidOptionType('completedSampleRate', 'a number', value)
  if (!(value >= 0 && value <= 1)) {
    throw invalidOptionRange('completedSampleRate', 'a number from 0 to 1', value)
  }
  return value
}

/**
 * Smallest `maxPendingBytes` accepted. The start record of a request with
 * the few headers of Node's `fetch()` takes about 1 KB of the budget, so a
 * smaller budget would drop nearly every record even while Redis is healthy.
 */
export const MIN_MAX_PENDING_BYTES = 1024

/**
 * `maxPendingBytes` below which the recorder warns at setup. With a healthy
 * local Redis and one request at a time, a budget of 1,500 bytes dropped 18
 * of 40 records and one of 4,096 none. Concurrent requests need more room.
 */
export const SMALL_MAX_PENDING_BYTES = 16 * 1024

function resolveMaxPendingBytes(value: number | undefined): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number') throw invalidOptionType('maxPendingBytes', 'a number', value)
  if (!Number.isInteger(value) || value < MIN_MAX_PENDING_BYTES) {
    const expected = `a whole number of at least ${MIN_MAX_PENDING_BYTES} bytes, because one task record takes about 1 KB of the budget`
    throw invalidOptionRange('maxPendingBytes', expected, value)
  }
  return requireCount('maxPendingBytes', value)
}

function resolveHeartbeatTtl(value: number | undefined): number {
  if (value === undefined) return DEFAULT_HEARTBEAT_TTL_MS

  if (typeof value !== 'number') throw invalidOptionType('heartbeatTtlMs', 'a number', value)
  if (!Number.isInteger(value) || value < MIN_HEARTBEAT_TTL_MS || value > MAX_HEARTBEAT_TTL_MS) {
    const expected = `a whole number of milliseconds from ${MIN_HEARTBEAT_TTL_MS} to ${MAX_HEARTBEAT_TTL_MS}`
    throw invalidOptionRange('heartbeatTtlMs', expected, value)
  }
  return value
}

/** Returns an environment variable, with an empty value read as unset. */
function readEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === '' ? undefined : value
}

function resolveMaxCompleted(option: number | undefined, envValue: string | undefined): number {
  if (option !== undefined) return requireCount('maxCompletedTasks', option)
  return readMaxCompletedEnv(envValue) ?? DEFAULT_MAX_COMPLETED_TASKS
}

function compileIgnore(ignore: TopOptions['ignore'], logger: Logger | undefined): ResolvedOptions['isIgnored'] {
  if (ignore === undefined) return () => false
  if (typeof ignore === 'function') return catchIgnoreErrors(ignore, logger)
  if (!Array.isArray(ignore)) {
    throw invalidOptionType('ignore', 'an array of paths and regular expressions, or a function', ignore)
  }

  const exact = new Set<string>()
  const patterns: RegExp[] = []
  for (const item of ignore) {
    if (typeof item === 'string') exact.add(item)
    else if (item instanceof RegExp) patterns.push(withoutLastIndex(item))
    else throw invalidOptionType('ignore', 'an array of paths and regular expressions', item)
  }
  // The path is cut from the target only here, so apps without path rules skip it.
  return (_req, url) => {
    const path = pathOfUrl(url)
    return exact.has(path) || patterns.some((pattern) => pattern.test(path))
  }
}

const IGNORE_FUNCTION_THREW =
  "web-top recorded a request on which the `ignore` option's function threw: " +
  'make the function return true or false without throwing'

const IGNORE_FUNCTION_RETURNED_PROMISE =
  "web-top recorded a request for which the `ignore` option's function returned a Promise: " +
  'the function must return true or false synchronously, so it cannot be async'

/**
 * Wraps the `ignore` function so that its result counts by JavaScript's
 * truthiness, as `Array.prototype.filter` reads it, except for a returned
 * Promise or other thenable. Its value comes too late, so such a request is
 * recorded and a warning logged. So is a request on which the function
 * throws, with the error. Each message is logged at most once per 30 s.
 */
function catchIgnoreErrors(
  ignore: (req: IncomingMessage) => unknown,
  logger: Logger | undefined,
): ResolvedOptions['isIgnored'] {
  // Created on the first problem, so that a function that has none creates no logger.
  let problemLog: Logger | undefined
  const getProblemLog = () => (problemLog ??= createRateLimitedLogger(logger ?? createConsoleLogger()))

  return (req) => {
    let result: unknown
    try {
      result = ignore(req)
    } catch (err) {
      getProblemLog().error({ err, method: req.method, path: describePathForLog(req.url) }, IGNORE_FUNCTION_THREW)
      return false
    }
    // The usual boolean costs one branch.
    if (typeof result === 'boolean') return result
    if (!isThenable(result)) return Boolean(result)

    getProblemLog().warn({ method: req.method, path: describePathForLog(req.url) }, IGNORE_FUNCTION_RETURNED_PROMISE)
    // Nothing else awaits the Promise, so its rejection would end the process.
    ignoreRejection(result)
    return false
  }
}

/** Returns true for a value with a `then` method. Reading `then` may throw, as it does on a revoked Proxy. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  try {
    return typeof (value as { then?: unknown }).then === 'function'
  } catch {
    return false
  }
}

function ignoreRejection(thenable: PromiseLike<unknown>): void {
  try {
    thenable.then(undefined, () => {})
  } catch {
    // A thenable whose `then` throws has no rejection to handle.
  }
}

/**
 * Returns a copy of the pattern without the `g` and `y` flags. With either
 * flag, `test()` starts at the `lastIndex` of the previous match, so the
 * same path would match on one request and not on the next.
 */
function withoutLastIndex(pattern: RegExp): RegExp {
  if (!pattern.global && !pattern.sticky) return pattern
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
}

function checkTracker(tracker: Tracker | undefined): Tracker | undefined {
  if (tracker === undefined) return undefined
  if (!hasMethods(tracker, TRACKER_METHODS)) {
    throw invalidOptionType('tracker', 'a tracker such as a RedisTracker or MemoryTracker', tracker)
  }
  return tracker
}

function checkRedisClient(redis: GivenRedisClient | undefined): RedisClient | undefined {
  if (redis === undefined) return undefined
  if (!hasMethods(redis, ['defineCommand', 'duplicate'])) {
    throw invalidOptionType('redis', 'an ioredis client or Cluster', redis)
  }
  // An ioredis 6 client has the members of ioredis 5 that web-top uses.
  return redis as RedisClient
}

function checkLogger(logger: Logger | undefined): Logger | undefined {
  if (logger === undefined) return undefined
  if (!hasMethods(logger, ['warn', 'error'])) {
    const expected = 'an object or function with warn() and error() methods, such as a pino logger'
    throw invalidOptionType('logger', expected, logger)
  }
  return isConsole(logger) ? adaptConsole(logger) : logger
}

/** Returns true for `console` and for instances of Node's `Console` class. */
function isConsole(logger: object): logger is Console {
  return logger === console || logger instanceof NodeConsole
}

/**
 * Returns a logger that calls a console's methods with the message first,
 * and the fields after it when there are any. `console.warn(fields,
 * message)`, the order that pino reads, would print `{} message`.
 */
function adaptConsole(target: Console): Logger {
  const forward = (method: 'warn' | 'error' | 'info' | 'debug') => (fields: Record<string, unknown>, message: string) => {
    const line = `web-top: ${message}`
    if (Object.keys(fields).length === 0) target[method](line)
    else target[method](line, fields)
  }
  return { warn: forward('warn'), error: forward('error'), info: forward('info'), debug: forward('debug') }
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  // A function with methods counts: some logging libraries return callable loggers.
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  return methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function')
}

/** Start of the tag names that web-top sets itself, such as `web_top.outcome`. */
const RESERVED_TAG_PREFIX = 'web_top.'

/**
 * Largest `tags` option, in UTF-8 bytes of its JSON. Every record carries
 * the tags, twice per request, and readers skip records over 256 KiB by
 * default, so tags this size leave room for the rest of a record.
 */
const MAX_TAGS_BYTES = 16 * 1024

/** Longest `processorName`, in Unicode code points, for the same reason as `MAX_TAGS_BYTES`. */
const MAX_PROCESSOR_NAME_LENGTH = 1024

function checkTags(tags: Record<string, string> | undefined): Record<string, string> {
  if (tags === undefined) return {}
  if (tags === null || typeof tags !== 'object' || Array.isArray(tags)) {
    throw invalidOptionType('tags', 'an object of string values', tags)
  }
  for (const [name, value] of Object.entries(tags)) {
    if (typeof value !== 'string') throw invalidOptionType(`tags.${name}`, 'a string', value)
    const trimmed = name.trim()
    if (trimmed === '') {
      throw invalidOptionRange('tags', 'an object whose names have at least one visible character', name)
    }
    // The recorder and cleanup set the `web_top.` tags, and readers trust
    // them, so a name that differs only in case or spaces is rejected too.
    if (trimmed.toLowerCase().startsWith(RESERVED_TAG_PREFIX)) {
      const expected = `an object without names that start with "${RESERVED_TAG_PREFIX}", in any letter case and after any spaces`
      throw invalidOptionRange('tags', expected, name)
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(tags))
  if (bytes > MAX_TAGS_BYTES) {
    throw invalidOptionRange('tags', `at most ${MAX_TAGS_BYTES} bytes as JSON, because every record carries them`, `${bytes} bytes`)
  }
  return { ...tags }
}

function checkNames(name: string, value: readonly string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) throw invalidOptionType(name, 'an array of strings', value)
  // Names the first bad item, as "received an array" would not show which one it is.
  const badIndex = value.findIndex((item) => typeof item !== 'string')
  if (badIndex !== -1) throw invalidOptionType(`${name}[${badIndex}]`, 'a string', value[badIndex])
  return [...value]
}

function checkProcessorName(value: unknown): string | undefined {
  const name = checkOptionalString('processorName', value)
  if (name !== undefined && name.trim() === '') {
    throw invalidOptionRange('processorName', 'a name with at least one visible character, or left out for node:<pid>', value)
  }
  // Counted in code points, so that an emoji counts as one character, as a reader of the error counts it.
  const length = name === undefined ? 0 : [...name].length
  if (length > MAX_PROCESSOR_NAME_LENGTH) {
    const expected = `at most ${MAX_PROCESSOR_NAME_LENGTH} characters long, because every record carries it`
    throw invalidOptionRange('processorName', expected, `${length} characters`)
  }
  return name
}

function checkOptionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw invalidOptionType(name, 'a string', value)
  return value
}

function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'boolean') throw invalidOptionType(name, 'true or false', value)
  return value
}

function resolveLimits(limits: Partial<SizeLimits> | undefined): SizeLimits {
  if (limits === undefined) return { ...DEFAULT_SIZE_LIMITS }
  if (limits === null || typeof limits !== 'object') {
    throw invalidOptionType('limits', 'an object', limits)
  }

  const resolved = { ...DEFAULT_SIZE_LIMITS }
  for (const [key, value] of Object.entries(limits)) {
    if (!isLimitName(key)) {
      throw invalidOptionType('limits', `an object with only the keys ${LIMIT_NAMES}`, key)
    }
    if (value !== undefined) resolved[key] = checkLimit(key, value)
  }
  return resolved
}

/**
 * Returns a size limit that is a whole number of at least 1, or `Infinity`
 * for no cap, and throws for any other value. The limits are only compared
 * with lengths and counts, so no larger number needs to be rejected.
 */
function checkLimit(key: keyof SizeLimits, value: unknown): number {
  if (typeof value !== 'number') throw invalidOptionType(`limits.${key}`, 'a number', value)
  if (!(value === Infinity || (Number.isInteger(value) && value >= 1))) {
    throw invalidOptionRange(`limits.${key}`, 'a whole number of at least 1, or Infinity for no cap', value)
  }
  return value
}

function isLimitName(name: string): name is keyof SizeLimits {
  return Object.hasOwn(DEFAULT_SIZE_LIMITS, name)
}
