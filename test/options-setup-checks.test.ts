/**
 * Option values that cost every request, or that fell back to defaults
 * without a word. These are a key prefix of any length, a pending budget
 * smaller than one record, options that are not a plain object, a BigInt
 * count, and `console` as the logger.
 */
import fastify from 'fastify'
import fastify4 from 'fastify4'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { INVALID_OPTION, Recorder, topMiddleware, topPlugin, type TopOptions } from '../src/index'
import { MAX_KEY_PREFIX_LENGTH, MIN_MAX_PENDING_BYTES, resolveOptions, SMALL_MAX_PENDING_BYTES } from '../src/options'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

afterEach(() => {
  vi.restoreAllMocks()
})

const EMPTY_ENV: NodeJS.ProcessEnv = {}

describe('keyPrefix length', () => {
  it('accepts the max length', () => {
    const prefix = 'p'.repeat(MAX_KEY_PREFIX_LENGTH)
    expect(resolveOptions({ keyPrefix: prefix }, EMPTY_ENV).keyPrefix).toBe(prefix)
  })

  it('counts characters, not UTF-16 units', () => {
    const prefix = '😀'.repeat(MAX_KEY_PREFIX_LENGTH)
    expect(resolveOptions({ keyPrefix: prefix }, EMPTY_ENV).keyPrefix).toBe(prefix)
  })

  it('rejects a longer option with its length', () => {
    const error = catchError(() => resolveOptions({ keyPrefix: 'p'.repeat(1024 * 1024) }, EMPTY_ENV))
    expect(error).toBeInstanceOf(RangeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toBe(
      `web-top: The \`keyPrefix\` option must be at most ${MAX_KEY_PREFIX_LENGTH} characters long, ` +
        'because every Redis key and write carries it (received "1048576 characters")',
    )
  })

  it('rejects a longer TOP_TRACKER_PREFIX', () => {
    const error = catchError(() => resolveOptions({}, { TOP_TRACKER_PREFIX: 'p'.repeat(MAX_KEY_PREFIX_LENGTH + 1) }))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toContain('The TOP_TRACKER_PREFIX environment variable must be at most 256 characters long')
    expect(error.message).toContain('(received "257 characters")')
  })

  it('opens no connection for a rejected prefix', async () => {
    const clientsBefore = await countClients()
    const error = catchError(() => topMiddleware({ trackerUrl: redis.url, keyPrefix: 'p'.repeat(10_000), handleSignals: false }))
    expect(error).toBeInstanceOf(RangeError)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await countClients()).toBe(clientsBefore)
  })
})

describe('maxPendingBytes floor', () => {
  it('rejects a budget below one record', () => {
    const error = catchError(() => resolveOptions({ maxPendingBytes: MIN_MAX_PENDING_BYTES - 1 }, EMPTY_ENV))
    expect(error).toBeInstanceOf(RangeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toBe(
      `web-top: The \`maxPendingBytes\` option must be a whole number of at least ${MIN_MAX_PENDING_BYTES} bytes, ` +
        'because one task record takes about 1 KB of the budget (received 1023)',
    )
  })

  it.each([0, -1, 1.5, 1024.5, Number.NaN])('names the floor for %s', (value) => {
    const error = catchError(() => resolveOptions({ maxPendingBytes: value }, EMPTY_ENV))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toContain(`must be a whole number of at least ${MIN_MAX_PENDING_BYTES} bytes`)
  })

  it('warns about a small budget at setup', async () => {
    const logger = captureLogger()
    const recorder = new Recorder({ trackerUrl: redis.url, maxPendingBytes: 4_096, logger, handleSignals: false })
    await recorder.close()
    const warnings = logger.lines.filter((line) => line.message.startsWith('maxPendingBytes is below'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.fields).toEqual({ maxPendingBytes: 4_096 })
  })

  it('keeps quiet about a budget of 16 KiB', async () => {
    const logger = captureLogger()
    const options = { trackerUrl: redis.url, maxPendingBytes: SMALL_MAX_PENDING_BYTES, logger, handleSignals: false }
    const recorder = new Recorder(options)
    await recorder.close()
    expect(logger.lines.filter((line) => line.message.startsWith('maxPendingBytes is below'))).toEqual([])
  })
})

describe('BigInt count', () => {
  it('shows the n suffix', () => {
    const error = catchError(() => resolveOptions({ maxCompletedTasks: 10n as unknown as number }, EMPTY_ENV))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toBe('web-top: The `maxCompletedTasks` option must be a number (received 10n)')
  })
})

describe('options that are not a plain object', () => {
  it.each([
    ['a Map', new Map([['trackerUrl', 'memory://']])],
    ['a Date', new Date(0)],
    ['a Number', Object(5) as object],
  ])('topMiddleware rejects %s', (description, options) => {
    const error = catchError(() => topMiddleware(options as TopOptions))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toBe(`web-top: The options must be a plain object or left out (received ${description})`)
  })

  it('accepts an object without a prototype', async () => {
    const options = Object.assign(Object.create(null) as TopOptions, { trackerUrl: 'memory://', handleSignals: false })
    const middleware = topMiddleware(options)
    await middleware.close()
  })

  const FASTIFY_VERSIONS = [
    ['fastify5', fastify],
    ['fastify4', fastify4 as unknown as typeof fastify],
  ] as const

  describe.each(FASTIFY_VERSIONS)('%s register', (_name, createApp) => {
    it.each([
      ['5', 5, 'an object or left out (received 5)'],
      ['true', true, 'an object or left out (received true)'],
      ['a Map', new Map(), 'a plain object or left out (received a Map)'],
    ])('rejects %s as the options', async (_label, options, expected) => {
      const app = createApp()
      app.register(topPlugin, options as unknown as TopOptions)
      const error = await app.ready().then(
        () => undefined,
        (err: unknown) => err as Error,
      )
      await app.close()
      expect(error).toBeInstanceOf(TypeError)
      expect((error as { code?: unknown } | undefined)?.code).toBe(INVALID_OPTION)
      expect(error?.message).toBe(`web-top: The options must be ${expected}`)
    })
  })
})

describe('console as the logger', () => {
  it('gets the message first', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const options = { trackerUrl: 'memory://', logger: console, handleSignals: false, trackerUri: 'x' } as TopOptions
    const recorder = new Recorder(options)
    await recorder.close()
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]).toEqual([
      'web-top: unknown option `trackerUri` ignored: did you mean `trackerUrl`?',
      { option: 'trackerUri' },
    ])
  })

  it('gets the message alone without fields', async () => {
    const info = vi.spyOn(console, 'info').mockImplementation(() => {})
    const recorder = new Recorder({ trackerUrl: redis.url, logger: console, handleSignals: false })
    await recorder.close()
    expect(info.mock.calls).toEqual([[`web-top: web-top records to ${redis.url} (from the trackerUrl option)`]])
  })
})

describe('a function as the logger', () => {
  it('gets the messages of its methods', async () => {
    const lines: string[] = []
    const logger = Object.assign(() => {}, {
      warn: (_fields: object, message: string) => lines.push(`warn ${message}`),
      error: (_fields: object, message: string) => lines.push(`error ${message}`),
      info: (_fields: object, message: string) => lines.push(`info ${message}`),
    })
    const recorder = new Recorder({ trackerUrl: redis.url, logger, handleSignals: false })
    await recorder.close()
    expect(lines).toEqual([`info web-top records to ${redis.url} (from the trackerUrl option)`])
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

async function countClients(): Promise<number> {
  const list = await redis.client.client('LIST')
  return String(list).trim().split('\n').length
}
