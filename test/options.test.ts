import type { IncomingMessage } from 'node:http'
import Redis from 'ioredis'
import fastify from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  INVALID_OPTION,
  INVALID_TRACKER_URL,
  isWebTopError,
  MemoryTracker,
  Recorder,
  createRequestTracker,
  topMiddleware,
  topPlugin,
  withTop,
  type TopOptions,
} from '../src/index'
import { DEFAULT_MAX_COMPLETED_TASKS, resolveOptions } from '../src/options'
import { DEFAULT_SIZE_LIMITS } from '../src/task/redact'
import { captureLogger } from './helpers/logger'

/** An environment with none of the package's variables, so no test reads the real one. */
const EMPTY_ENV: NodeJS.ProcessEnv = {}

const fakeRequest = { url: '/', headers: {} } as IncomingMessage

/** Creates an ioredis client that never connects: `lazyConnect` waits for a first command, and none is sent. */
function createIdleClient(): Redis {
  return new Redis({ lazyConnect: true, enableOfflineQueue: false })
}

describe('resolveOptions defaults', () => {
  it('fills in every default', () => {
    const resolved = resolveOptions({}, EMPTY_ENV)
    expect(resolved.trackerUrl).toBe('redis://127.0.0.1:6379')
    expect(resolved.keyPrefix).toBe('')
    expect(resolved.maxCompletedTasks).toBe(DEFAULT_MAX_COMPLETED_TASKS)
    expect(DEFAULT_MAX_COMPLETED_TASKS).toBe(256)
    expect(resolved.tags).toEqual({})
    expect(resolved.processorName).toBeUndefined()
    expect(resolved.captureHeaders).toBe(true)
    expect(resolved.trustProxy).toBeUndefined()
    expect(resolved.limits).toEqual(DEFAULT_SIZE_LIMITS)
    expect(resolved.tracker).toBeUndefined()
    expect(resolved.redis).toBeUndefined()
    expect(resolved.isIgnored(fakeRequest, '/health')).toBe(false)
    expect(resolved.completedSampleRate).toBe(1)
    expect(resolved.batchWindowMs).toBe(2)
  })

  it('reads undefined values as unset', () => {
    // As `{ trackerUrl: process.env.TOP_URL }` passes them when a variable is missing.
    const allUndefined: Record<keyof TopOptions, undefined> = {
      trackerUrl: undefined,
      tracker: undefined,
      redis: undefined,
      keyPrefix: undefined,
      maxCompletedTasks: undefined,
      ignore: undefined,
      tags: undefined,
      processorName: undefined,
      captureHeaders: undefined,
      trustProxy: undefined,
      limits: undefined,
      logger: undefined,
      maxPendingBytes: undefined,
      batchWindowMs: undefined,
      completedSampleRate: undefined,
      heartbeatTtlMs: undefined,
      handleSignals: undefined,
      redactHeaders: undefined,
      allowHeaders: undefined,
      redactParams: undefined,
      allowParams: undefined,
    }
    const { isIgnored, ...resolved } = resolveOptions(allUndefined, EMPTY_ENV)
    const { isIgnored: _defaultIsIgnored, ...defaults } = resolveOptions({}, EMPTY_ENV)
    expect(resolved).toEqual(defaults)
    expect(isIgnored(fakeRequest, '/health')).toBe(false)
    expect(() => new Recorder({ ...allUndefined, trackerUrl: 'memory://' })).not.toThrow()
  })

  it('reads the environment', () => {
    const resolved = resolveOptions(
      {},
      {
        TOP_TRACKER_URL: 'redis://cache.internal:6380/2',
        TOP_MAX_COMPLETED_TASKS: '1000',
        TOP_TRACKER_PREFIX: 'shop:',
      },
    )
    expect(resolved.trackerUrl).toBe('redis://cache.internal:6380/2')
    expect(resolved.maxCompletedTasks).toBe(1000)
    expect(resolved.keyPrefix).toBe('shop:')
  })

  it('prefers options over the environment', () => {
    const resolved = resolveOptions(
      { trackerUrl: 'memory://', maxCompletedTasks: 5, keyPrefix: 'a:' },
      { TOP_TRACKER_URL: 'redis://cache.internal:6380', TOP_MAX_COMPLETED_TASKS: '1000', TOP_TRACKER_PREFIX: 'b:' },
    )
    expect(resolved.trackerUrl).toBe('memory://')
    expect(resolved.maxCompletedTasks).toBe(5)
    expect(resolved.keyPrefix).toBe('a:')
  })

  it('reads empty variables as unset', () => {
    const resolved = resolveOptions({}, { TOP_TRACKER_URL: '', TOP_MAX_COMPLETED_TASKS: '' })
    expect(resolved.trackerUrl).toBe('redis://127.0.0.1:6379')
    expect(resolved.maxCompletedTasks).toBe(256)
  })

  it('compiles ignore paths and patterns', () => {
    const { isIgnored } = resolveOptions({ ignore: ['/health', /^\/metrics(\/|$)/] }, EMPTY_ENV)
    expect(isIgnored(fakeRequest, '/health')).toBe(true)
    expect(isIgnored(fakeRequest, '/health/deep')).toBe(false)
    expect(isIgnored(fakeRequest, '/metrics')).toBe(true)
    expect(isIgnored(fakeRequest, '/metrics/cpu')).toBe(true)
    expect(isIgnored(fakeRequest, '/users')).toBe(false)
  })

  it('calls an ignore function with the request', () => {
    const { isIgnored } = resolveOptions(
      { ignore: (req) => req.headers['user-agent'] === 'kube-probe/1.29' },
      EMPTY_ENV,
    )
    expect(isIgnored({ headers: { 'user-agent': 'kube-probe/1.29' } } as IncomingMessage, '/')).toBe(true)
    expect(isIgnored({ headers: { 'user-agent': 'curl/8' } } as IncomingMessage, '/')).toBe(false)
  })

  it('keeps tags, processor name and limits', () => {
    const resolved = resolveOptions(
      { tags: { 'service.name': 'shop' }, processorName: 'api-1', limits: { maxHeaders: 8 } },
      EMPTY_ENV,
    )
    expect(resolved.tags).toEqual({ 'service.name': 'shop' })
    const largest = resolveOptions({ tags: { build: 'x'.repeat(16_384 - 12) }, processorName: 'w'.repeat(1_024) }, {})
    expect(largest.tags.build).toHaveLength(16_372)
    expect(largest.processorName).toHaveLength(1_024)
    // 1,024 emoji are 2,048 UTF-16 code units, and 1,024 characters.
    const emoji = resolveOptions({ processorName: '😀'.repeat(1_024) }, {})
    expect(emoji.processorName).toHaveLength(2_048)
    expect(resolved.processorName).toBe('api-1')
    expect(resolved.limits).toEqual({ ...DEFAULT_SIZE_LIMITS, maxHeaders: 8 })
  })

  it('accepts a list of cluster node URLs', () => {
    const urls = ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000']
    const resolved = resolveOptions({ trackerUrl: urls }, EMPTY_ENV)
    expect(resolved.trackerUrl).toEqual(urls)
    expect(resolved.trackerUrl).not.toBe(urls)
  })

  it.each([0, 10, 1000])('accepts batchWindowMs %s', (windowMs) => {
    expect(resolveOptions({ batchWindowMs: windowMs }, EMPTY_ENV).batchWindowMs).toBe(windowMs)
  })

  it.each([0, 0.25, 1])('accepts completedSampleRate %s', (rate) => {
    expect(resolveOptions({ completedSampleRate: rate }, EMPTY_ENV).completedSampleRate).toBe(rate)
  })

  it('accepts a tracker or a redis client', () => {
    const tracker = new MemoryTracker()
    const redis = createIdleClient()
    expect(resolveOptions({ tracker }, EMPTY_ENV).tracker).toBe(tracker)
    expect(resolveOptions({ redis }, EMPTY_ENV).redis).toBe(redis)
    redis.disconnect()
  })
})

describe('resolveOptions validation', () => {
  const idleRedis = createIdleClient()

  it.each<[string, unknown, ErrorConstructor, string]>([
    ['options', null, TypeError, 'The options must be an object or left out (received null)'],
    ['options', 'redis://:hunter2@cache:6379', TypeError, `The options must be an object or left out (received "redis://:***@cache:6379"); to set the tracker URL, pass it as { trackerUrl: '...' }`],
    ['options', Object.assign({}, 'redis://:hunter2@cache:6379'), TypeError, `The options must be an object or left out (received "redis://:***@cache:6379", spread into an object of its characters); to set the tracker URL, pass it as { trackerUrl: '...' }`],
    ['redis', { redis: 'redis://:hunter2@cache:6379' }, TypeError, 'The `redis` option must be an ioredis client or Cluster (received "redis://:***@cache:6379")'],
    ['trackerUrl', { trackerUrl: 42 }, TypeError, 'The `trackerUrl` option must be a non-empty URL string (received 42)'],
    ['trackerUrl', { trackerUrl: '' }, TypeError, 'The `trackerUrl` option must be a non-empty URL string (received "")'],
    ['trackerUrl', { trackerUrl: [] }, TypeError, 'The `trackerUrl` option must be a non-empty array of cluster node URL strings (received an array)'],
    ['trackerUrl', { trackerUrl: ['redis://a:1', 7] }, TypeError, 'The `trackerUrl` option must be a non-empty array of cluster node URL strings (received 7)'],
    ['trackerUrl', { trackerUrl: ['redis://a:1', ''] }, TypeError, 'The `trackerUrl` option must be a non-empty array of cluster node URL strings (received "")'],
    ['keyPrefix', { keyPrefix: 1 }, TypeError, 'The `keyPrefix` option must be a string (received 1)'],
    ['keyPrefix', { keyPrefix: 'bad\nprefix' }, RangeError, 'The `keyPrefix` option must be a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028 (received "bad\\nprefix")'],
    ['keyPrefix', { keyPrefix: 'shop:\r' }, RangeError, 'The `keyPrefix` option must be a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028 (received "shop:\\r")'],
    ['keyPrefix', { keyPrefix: '\u001b[31mshop:' }, RangeError, 'The `keyPrefix` option must be a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028 (received "\\u001b[31mshop:")'],
    ['processorName', { processorName: ' ' }, RangeError, 'The `processorName` option must be a name with at least one visible character, or left out for node:<pid> (received " ")'],
    ['maxCompletedTasks', { maxCompletedTasks: '10' }, TypeError, 'The `maxCompletedTasks` option must be a number (received "10")'],
    ['maxCompletedTasks', { maxCompletedTasks: 0 }, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received 0)'],
    ['maxCompletedTasks', { maxCompletedTasks: 2.5 }, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received 2.5)'],
    ['maxCompletedTasks', { maxCompletedTasks: Number.NaN }, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received NaN)'],
    ['maxCompletedTasks', { maxCompletedTasks: 1e20 }, RangeError, 'The `maxCompletedTasks` option must be a whole number of at most 9007199254740991 (received 100000000000000000000)'],
    ['maxPendingBytes', { maxPendingBytes: 1e30 }, RangeError, 'The `maxPendingBytes` option must be a whole number of at most 9007199254740991 (received 1e+30)'],
    ['ignore', { ignore: '/health' }, TypeError, 'The `ignore` option must be an array of paths and regular expressions, or a function (received "/health")'],
    ['ignore', { ignore: ['/health', 3] }, TypeError, 'The `ignore` option must be an array of paths and regular expressions (received 3)'],
    ['tags', { tags: ['a'] }, TypeError, 'The `tags` option must be an object of string values (received an array)'],
    ['tags', { tags: { version: 2 } }, TypeError, 'The `tags.version` option must be a string (received 2)'],
    ['tags', { tags: { 'web_top.outcome': 'mine' } }, RangeError, 'The `tags` option must be an object without names that start with "web_top.", in any letter case and after any spaces (received "web_top.outcome")'],
    ['tags', { tags: { 'WEB_TOP.outcome': 'mine' } }, RangeError, 'The `tags` option must be an object without names that start with "web_top.", in any letter case and after any spaces (received "WEB_TOP.outcome")'],
    ['tags', { tags: { ' web_top.x': 'mine' } }, RangeError, 'The `tags` option must be an object without names that start with "web_top.", in any letter case and after any spaces (received " web_top.x")'],
    ['tags', { tags: { '': 'mine' } }, RangeError, 'The `tags` option must be an object whose names have at least one visible character (received "")'],
    ['tags', { tags: { ' ': 'mine' } }, RangeError, 'The `tags` option must be an object whose names have at least one visible character (received " ")'],
    ['processorName', { processorName: 7 }, TypeError, 'The `processorName` option must be a string (received 7)'],
    ['tags', { tags: { build: 'x'.repeat(16_384) } }, RangeError, 'The `tags` option must be at most 16384 bytes as JSON, because every record carries them (received "16396 bytes")'],
    ['processorName', { processorName: 'w'.repeat(1_025) }, RangeError, 'The `processorName` option must be at most 1024 characters long, because every record carries it (received "1025 characters")'],
    ['captureHeaders', { captureHeaders: 'no' }, TypeError, 'The `captureHeaders` option must be true or false (received "no")'],
    ['trustProxy', { trustProxy: 1 }, TypeError, 'The `trustProxy` option must be true or false (received 1)'],
    ['limits', { limits: 5 }, TypeError, 'The `limits` option must be an object (received 5)'],
    ['limits', { limits: { maxHeaders: 0 } }, RangeError, 'The `limits.maxHeaders` option must be a whole number of at least 1, or Infinity for no cap (received 0)'],
    ['limits', { limits: { maxHeaderLength: 9 } }, TypeError, 'The `limits` option must be an object with only the keys maxUrlLength, maxHeaderValueLength, maxHeaders, maxParams (received "maxHeaderLength")'],
    ['redactHeaders', { redactHeaders: 'x-secret' }, TypeError, 'The `redactHeaders` option must be an array of strings (received "x-secret")'],
    ['allowParams', { allowParams: [1] }, TypeError, 'The `allowParams[0]` option must be a string (received 1)'],
    ['allowHeaders', { allowHeaders: ['x-ok', 5] }, TypeError, 'The `allowHeaders[1]` option must be a string (received 5)'],
    ['tracker', { tracker: { recordStart() {} } }, TypeError, 'The `tracker` option must be a tracker such as a RedisTracker or MemoryTracker (received an object)'],
    ['redis', { redis: 'redis://x' }, TypeError, 'The `redis` option must be an ioredis client or Cluster (received "redis://x")'],
    ['redis', { redis: idleRedis, tracker: new MemoryTracker() }, TypeError, 'The `redis` option must be left unset when `tracker` is given, because the tracker has its own connection (received an object)'],
    ['trackerUrl', { redis: idleRedis, trackerUrl: 'redis://app:s3cret@127.0.0.1:6380' }, TypeError, 'The `trackerUrl` option must be left unset when `redis` is given, because records go through it and the URL would be ignored (received "redis://app:***@127.0.0.1:6380")'],
    ['trackerUrl', { tracker: new MemoryTracker(), trackerUrl: 'memory://' }, TypeError, 'The `trackerUrl` option must be left unset when `tracker` is given, because records go through it and the URL would be ignored (received "memory://")'],
    ['completedSampleRate', { completedSampleRate: '0.5' }, TypeError, 'The `completedSampleRate` option must be a number (received "0.5")'],
    ['completedSampleRate', { completedSampleRate: 1.5 }, RangeError, 'The `completedSampleRate` option must be a number from 0 to 1 (received 1.5)'],
    ['completedSampleRate', { completedSampleRate: -0.1 }, RangeError, 'The `completedSampleRate` option must be a number from 0 to 1 (received -0.1)'],
    ['completedSampleRate', { completedSampleRate: Number.NaN }, RangeError, 'The `completedSampleRate` option must be a number from 0 to 1 (received NaN)'],
    ['batchWindowMs', { batchWindowMs: '5' }, TypeError, 'The `batchWindowMs` option must be a number (received "5")'],
    ['batchWindowMs', { batchWindowMs: 1001 }, RangeError, 'The `batchWindowMs` option must be a whole number of milliseconds from 0 to 1000 (received 1001)'],
    ['heartbeatTtlMs', { heartbeatTtlMs: 299 }, RangeError, 'The `heartbeatTtlMs` option must be a whole number of milliseconds from 300 to 2147483647 (received 299)'],
    ['heartbeatTtlMs', { heartbeatTtlMs: 2_147_483_648 }, RangeError, 'The `heartbeatTtlMs` option must be a whole number of milliseconds from 300 to 2147483647 (received 2147483648)'],
    ['heartbeatTtlMs', { heartbeatTtlMs: 1000.5 }, RangeError, 'The `heartbeatTtlMs` option must be a whole number of milliseconds from 300 to 2147483647 (received 1000.5)'],
    ['heartbeatTtlMs', { heartbeatTtlMs: '1000' }, TypeError, 'The `heartbeatTtlMs` option must be a number (received "1000")'],
    ['logger', { logger: console.log }, TypeError, 'The `logger` option must be an object or function with warn() and error() methods, such as a pino logger (received a function)'],
  ])('rejects a bad %s', (_name, options, errorClass, message) => {
    const resolve = () => resolveOptions(options as TopOptions, EMPTY_ENV)
    const error = catchError(resolve)
    expect(error).toBeInstanceOf(errorClass)
    expect(error.message).toBe(`web-top: ${message}`)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(isWebTopError(error)).toBe(true)
  })

  it('accepts TOP_TRACKER_URL beside redis or tracker', () => {
    const env = { TOP_TRACKER_URL: 'redis://127.0.0.1:6380' }
    expect(resolveOptions({ redis: idleRedis }, env).redis).toBe(idleRedis)
    expect(resolveOptions({ tracker: new MemoryTracker() }, env).tracker).toBeInstanceOf(MemoryTracker)
  })

  it.each(['abc', '0', '-5', '1.5', '1e3', '9007199254740992'])('rejects TOP_MAX_COMPLETED_TASKS=%s', (value) => {
    const error = catchError(() => resolveOptions({}, { TOP_MAX_COMPLETED_TASKS: value }))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toBe(
      'web-top: The TOP_MAX_COMPLETED_TASKS environment variable must be a whole number from 1 to ' +
        `9007199254740991 (received ${JSON.stringify(value)})`,
    )
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
  })
})

describe('key prefix characters', () => {
  const PREFIX_RULE = 'a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028'

  it.each([
    ['bad\nprefix', '"bad\\nprefix"'],
    ['tab\tprefix', '"tab\\tprefix"'],
    ['del\u007f', '"del\\u007f"'],
    ['c1\u0085', '"c1\\u0085"'],
    ['line\u2028sep', '"line\\u2028sep"'],
    ['para\u2029sep', '"para\\u2029sep"'],
  ])('rejects TOP_TRACKER_PREFIX=%j', (value, received) => {
    const error = catchError(() => resolveOptions({}, { TOP_TRACKER_PREFIX: value }))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toBe(
      `web-top: The TOP_TRACKER_PREFIX environment variable must be ${PREFIX_RULE} (received ${received})`,
    )
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
  })

  it.each([
    ['ab\u0085', '"ab\\u0085"'],
    ['shop:\u009b2J', '"shop:\\u009b2J"'],
    ['shop\u2028eu:', '"shop\\u2028eu:"'],
    ['shop\u2029eu:', '"shop\\u2029eu:"'],
  ])('rejects keyPrefix %j with an escaped value', (value, received) => {
    const error = catchError(() => resolveOptions({ keyPrefix: value }, EMPTY_ENV))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toBe(`web-top: The \`keyPrefix\` option must be ${PREFIX_RULE} (received ${received})`)
  })

  it('names the option over a valid environment value', () => {
    const error = catchError(() => resolveOptions({ keyPrefix: 'a\nb' }, { TOP_TRACKER_PREFIX: 'shop:' }))
    expect(error.message).toContain('The `keyPrefix` option must be')
  })

  it('rejects a prefix passed to topMiddleware', () => {
    const error = catchError(() => topMiddleware({ trackerUrl: 'memory://', keyPrefix: 'a\nb', handleSignals: false }))
    expect(error).toBeInstanceOf(RangeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
  })

  it.each(['{shop}:', 'café:', 'a b:', 'shop\u00a0eu:'])('accepts %j', (value) => {
    expect(resolveOptions({ keyPrefix: value }, EMPTY_ENV).keyPrefix).toBe(value)
    expect(resolveOptions({}, { TOP_TRACKER_PREFIX: value }).keyPrefix).toBe(value)
  })
})

describe('Recorder setup errors', () => {
  it('rejects an unknown tracker scheme', () => {
    const error = catchError(() => new Recorder({ trackerUrl: 'http2://user:pw@example.com' }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain('"http2:"')
    expect(error.message).not.toContain(':pw@')
  })

  it('names leading whitespace in a tracker URL', () => {
    const error = catchError(() => new Recorder({ trackerUrl: '\tredis://127.0.0.1:1', handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toBe('web-top: Invalid tracker URL "\\tredis://127.0.0.1:1": it starts with whitespace; remove it')
  })

  it('rejects a query parameter that ioredis would ignore', () => {
    const url = 'rediss://:secret@127.0.0.1:1/?rejectUnauthorized=false'
    const error = catchError(() => new Recorder({ trackerUrl: url, handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain('"rediss://:***@127.0.0.1:1/?rejectUnauthorized=***"')
    expect(error.message).toContain('the query parameter "rejectUnauthorized" is not supported')
    expect(error.message).toContain('an ioredis client as the redis option')
  })

  it.each([
    ['redis://127.0.0.1:1/?db=abc', 'the database "abc" is not a whole number; write ?db=0'],
    ['redis://127.0.0.1:1/?db=', 'the database "" is not a whole number; write ?db=0'],
    ['redis://127.0.0.1:1/3?db=6', 'it names the database twice, in the path and as ?db=; keep one'],
    ['redis://127.0.0.1:1/?db=4&db=5', 'the query parameter "db" is given twice'],
    ['redis://127.0.0.1:1/?password=a&password=b', 'the query parameter "password" is given twice'],
    ['redis://127.0.0.1:1/?password%3Da', 'the query parameter name "password" is followed by an encoded = (%3D)'],
    ['redis://127.0.0.1:1/?passwrd=a&db=0', '"redis://127.0.0.1:1/?passwrd=***&db=***"'],
  ])('rejects %s', (trackerUrl, reason) => {
    const error = catchError(() => new Recorder({ trackerUrl, handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain(reason)
    expect(error.message).not.toMatch(/password=[ab]\b/)
  })

  it('takes the query parameters that ioredis reads', async () => {
    const recorder = new Recorder({ trackerUrl: 'redis://127.0.0.1:1/?family=4&db=2', handleSignals: false })
    await recorder.close()
  })

  // web-top-cli rejects the same values, so that a URL it reads from is one an app can record to.
  it.each([
    ['redis://:secret@127.0.0.1:1 ', '"redis://:***@127.0.0.1:1 ": it ends with whitespace'],
    ['redis+cluster://127.0.0.1:1,127.0.0.1:2\n', '"redis+cluster://127.0.0.1:1,127.0.0.1:2\\n": it ends with whitespace'],
    ['redis+sentinel://127.0.0.1:1/mymaster\t', '"redis+sentinel://127.0.0.1:1/mymaster\\t": it ends with whitespace'],
    ['memory:// ', '"memory:// ": it ends with whitespace'],
    [' memory:// ', '" memory:// ": it starts and ends with whitespace'],
  ])('rejects whitespace around %j', (trackerUrl, reason) => {
    const error = catchError(() => new Recorder({ trackerUrl, handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toBe(`web-top: Invalid tracker URL ${reason}; remove it`)
  })

  it('rejects a URL of only whitespace', () => {
    const error = catchError(() => new Recorder({ trackerUrl: ' \t', handleSignals: false }))
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toMatch(/^web-top: Invalid tracker URL " \\t": it contains only whitespace; use redis:\/\//)
  })

  // A process has one memory tracker, so a name after memory:// would be ignored.
  it.each(['memory://orders', 'memory:orders', 'memory://?max=5', 'memory:///', 'memory://user:pw@host'])(
    'rejects %j',
    (trackerUrl) => {
      const error = catchError(() => new Recorder({ trackerUrl, handleSignals: false }))
      expect(error).toBeInstanceOf(TypeError)
      expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
      expect(error.message).toContain('memory:// takes no host, path or query')
      expect(error.message).toMatch(/; write memory:\/\/$/)
      expect(error.message).not.toContain(':pw@')
    },
  )

  it.each(['memory', 'memory:', 'memory://', 'MEMORY://'])('accepts %j as the memory tracker', (trackerUrl) => {
    const recorder = new Recorder({ trackerUrl, handleSignals: false })
    expect(recorder.tracker.kind).toBe('memory')
  })

  it('rejects bad options', () => {
    expect(() => new Recorder({ trackerUrl: 'memory://', maxCompletedTasks: -1 })).toThrow(RangeError)
  })

  it.each([
    ['redis://user:p%zz@127.0.0.1:1', 'password'],
    ['redis://u%zz@127.0.0.1:1', 'user'],
    ['redis+cluster://:p%zz@127.0.0.1:1', 'password'],
    ['redis+sentinel://127.0.0.1:1/main%zz', 'master name'],
  ])('rejects an invalid percent escape in %s', (trackerUrl, part) => {
    const error = catchError(() => new Recorder({ trackerUrl, keyPrefix: '{app}:', handleSignals: false }))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
    expect(error.message).toContain(`its ${part} has an invalid percent escape`)
    expect(error.message).not.toContain('p%zz')
  })
})

function catchError(action: () => unknown): Error {
  try {
    action()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error, but none was thrown')
}

describe('unknown options', () => {
  it('suggests the option a typo was meant for', () => {
    const resolved = resolveOptions({ trackerUri: 'redis://x', maxPendingByte: 5 } as TopOptions, EMPTY_ENV)
    expect(resolved.unknownOptions).toEqual([
      { name: 'trackerUri', suggestion: 'trackerUrl' },
      { name: 'maxPendingByte', suggestion: 'maxPendingBytes' },
    ])
  })

  it.each([
    ['trackerURL', 'trackerUrl'],
    ['TrackerUrl', 'trackerUrl'],
    ['tracker_url', 'trackerUrl'],
    ['TRACKER_URL', 'trackerUrl'],
    ['tracker-url', 'trackerUrl'],
    ['keyprefix', 'keyPrefix'],
    ['max_completed_tasks', 'maxCompletedTasks'],
  ])('rejects %s as a case variant', (name, known) => {
    const error = catchError(() => resolveOptions({ [name]: 'memory://' } as TopOptions, EMPTY_ENV))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(isWebTopError(error)).toBe(true)
    expect(error.message).toBe(
      `web-top: Unknown option \`${name}\`: did you mean \`${known}\`? Option names are camelCase and case-sensitive.`,
    )
  })

  it('rejects a case variant next to the option', () => {
    const options = { trackerUrl: 'memory://', trackerURL: 'memory://' } as TopOptions
    const error = catchError(() => resolveOptions(options, EMPTY_ENV))
    expect(error.message).toContain('did you mean `trackerUrl`?')
  })

  describe('TOP_TRACKER_URL', () => {
    afterEach(() => {
      vi.unstubAllEnvs()
    })

    it('is named in the error for an invalid URL', () => {
      vi.stubEnv('TOP_TRACKER_URL', 'redis//x')
      const error = catchError(() => topMiddleware({ handleSignals: false }))
      expect(error).toBeInstanceOf(TypeError)
      expect((error as { code?: unknown }).code).toBe(INVALID_TRACKER_URL)
      expect(error.message).toMatch(/^web-top: Invalid tracker URL "redis\/\/x": .*\(from the TOP_TRACKER_URL environment variable\)$/)
    })

    it('is not named for a URL given as an option', () => {
      vi.stubEnv('TOP_TRACKER_URL', 'memory://')
      const error = catchError(() => topMiddleware({ trackerUrl: 'redis//x', handleSignals: false }))
      expect(error.message).not.toContain('TOP_TRACKER_URL')
    })
  })

  describe('in the adapters', () => {
    // A regression would ignore `trackerURL` and fall back to this
    // environment variable, which names the in-process memory tracker
    // rather than the default redis://127.0.0.1:6379.
    beforeEach(() => {
      vi.stubEnv('TOP_TRACKER_URL', 'memory://')
    })

    afterEach(() => {
      vi.unstubAllEnvs()
    })

    it('topMiddleware rejects a case variant', () => {
      const options = { trackerURL: 'memory://', handleSignals: false } as TopOptions
      const error = catchError(() => topMiddleware(options))
      expect(error).toBeInstanceOf(TypeError)
      expect(error.message).toContain('did you mean `trackerUrl`?')
    })

    it('topPlugin rejects a case variant', async () => {
      const app = fastify()
      const options = { trackerURL: 'memory://', handleSignals: false } as TopOptions
      await expect(app.register(topPlugin, options)).rejects.toThrow('did you mean `trackerUrl`?')
      expect(app.hasDecorator('webTop')).toBe(false)
      await app.close()
    })
  })

  it('reports a name without a close match', () => {
    const resolved = resolveOptions({ colour: true } as TopOptions, EMPTY_ENV)
    expect(resolved.unknownOptions).toEqual([{ name: 'colour', suggestion: undefined }])
  })

  it('warns through the app logger', async () => {
    const warnings: string[] = []
    const logger = { warn: (_object: object, message: string) => warnings.push(message), error: () => {} }
    const options = { tracker: new MemoryTracker(), logger, handleSignals: false, trackerUri: 'redis://x' }
    const recorder = new Recorder(options as TopOptions)
    await recorder.close()

    expect(warnings).toEqual(['unknown option `trackerUri` ignored: did you mean `trackerUrl`?'])
  })

  describe("Fastify's register options", () => {
    const registerOptions = { prefix: 'shop:', logLevel: 'warn', logSerializers: {} }

    function unknownOptionWarnings(logger: ReturnType<typeof captureLogger>): string[] {
      return logger.lines.map((line) => line.message).filter((message) => message.startsWith('unknown option'))
    }

    it.each([
      ['topMiddleware', (options: TopOptions) => topMiddleware(options).close()],
      ['createRequestTracker', (options: TopOptions) => createRequestTracker(options).close()],
      ['withTop', (options: TopOptions) => withTop(() => {}, options).close()],
    ])('draw a warning from %s', async (_adapter, createAndClose) => {
      const logger = captureLogger()
      const tracker = new MemoryTracker()
      await createAndClose({ tracker, logger, handleSignals: false, ...registerOptions } as TopOptions)

      expect(unknownOptionWarnings(logger)).toEqual([
        'unknown option `prefix` ignored: did you mean `keyPrefix`?',
        'unknown option `logLevel` ignored: check the spelling against the README',
        'unknown option `logSerializers` ignored: check the spelling against the README',
      ])
    })

    it('draw a no-effect warning from topPlugin', async () => {
      const logger = captureLogger()
      const app = fastify()
      const options = { tracker: new MemoryTracker(), logger, handleSignals: false, ...registerOptions }
      await app.register(topPlugin, options as TopOptions)
      await app.ready()
      await app.close()

      const warnings = logger.lines.map((line) => line.message).filter((message) => message.startsWith('register option'))
      expect(unknownOptionWarnings(logger)).toEqual([])
      expect(warnings).toEqual([
        'register option `prefix` has no effect on topPlugin, because Fastify applies it only to encapsulated plugins: for a key prefix on Redis, use `keyPrefix`',
        "register option `logLevel` has no effect on topPlugin, because Fastify applies it only to encapsulated plugins: set the level on the app's logger or on the `logger` option",
        "register option `logSerializers` has no effect on topPlugin, because Fastify applies it only to encapsulated plugins: set serializers on the app's logger or on the `logger` option",
      ])
    })

    it('record routes outside a prefix in topPlugin', async () => {
      const logger = captureLogger()
      const tracker = new MemoryTracker()
      const app = fastify()
      app.get('/a', async () => 'ok')
      await app.register(topPlugin, { tracker, logger, handleSignals: false, prefix: '/api' } as TopOptions)
      const response = await app.inject('/a')
      const snapshot = await tracker.read()
      await app.close()

      expect(response.statusCode).toBe(200)
      expect(snapshot.completed.map((task) => task.path)).toEqual(['/a'])
      expect(logger.lines.map((line) => line.message)).toContain(
        'register option `prefix` has no effect on topPlugin, because Fastify applies it only to encapsulated plugins: for a key prefix on Redis, use `keyPrefix`',
      )
    })
  })
})
