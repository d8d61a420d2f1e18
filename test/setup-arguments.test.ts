/**
 * Options arguments that are no options object, and `limits` at the top of
 * their range, given to the Express middleware and the `node:http` adapters.
 */
import { describe, expect, it } from 'vitest'
import { createRequestTracker, INVALID_OPTION, MemoryTracker, topMiddleware, withTop } from '../src/index'
import { sendRequest, startApp, waitFor } from './helpers/http'

const FUNCTION_MESSAGE = 'web-top: The options must be an object or left out (received a function)'
const ARRAY_MESSAGE = 'web-top: The options must be an object or left out (received an array)'

function catchError(action: () => unknown): Error {
  try {
    action()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error, but none was thrown')
}

describe('options argument that is not an object', () => {
  it('rejects a function in topMiddleware without calling it', () => {
    const calls: unknown[] = []
    const ignoreHealth = (req: unknown) => {
      calls.push(req)
      return false
    }

    const error = catchError(() => topMiddleware(ignoreHealth as never))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toBe(FUNCTION_MESSAGE)
    expect(calls).toEqual([])
  })

  it.each([
    ['topMiddleware', () => topMiddleware([] as never)],
    ['createRequestTracker', () => createRequestTracker([] as never)],
    ['withTop', () => withTop(() => {}, [] as never)],
  ])('rejects an array in %s', (_label, create) => {
    const error = catchError(create)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toBe(ARRAY_MESSAGE)
  })
})

describe('limits without a cap', () => {
  it.each([Infinity, 1e10])('keeps every header with maxHeaders %s', async (maxHeaders) => {
    const tracker = new MemoryTracker()
    const app = await startApp('express5', { tracker, limits: { maxHeaders }, handleSignals: false })
    const headers = Array.from({ length: 100 }, (_, index): [string, string] => [`X-Extra-${index}`, `${index}`])
    try {
      expect((await sendRequest(`${app.url}/health`, { headers, abortAfterMs: 5_000 })).status).toBe(200)
      const [task] = await waitFor('the record of /health', async () => {
        const { completed } = await tracker.read()
        return completed.length > 0 ? completed : undefined
      })

      const names = (task?.request_headers ?? []).map(([name]) => name)
      expect(names).toContain('X-EXTRA-0')
      expect(names).toContain('X-EXTRA-99')
      expect(names.filter((name) => name.startsWith('X-EXTRA-'))).toHaveLength(100)
      expect(names).not.toContain('X-WEB-TOP-TRUNCATED')
    } finally {
      await app.close()
    }
  })

  it.each([0, 1.5, Number.NaN, -Infinity])('rejects maxUrlLength %s', (maxUrlLength) => {
    const error = catchError(() => createRequestTracker({ tracker: new MemoryTracker(), limits: { maxUrlLength } }))
    expect(error).toBeInstanceOf(RangeError)
    expect((error as { code?: unknown }).code).toBe(INVALID_OPTION)
    expect(error.message).toContain('`limits.maxUrlLength` option must be a whole number of at least 1, or Infinity for no cap')
  })
})
