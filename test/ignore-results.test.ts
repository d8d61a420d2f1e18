/**
 * What an `ignore` function returns decides by JavaScript's truthiness, as
 * `Array.prototype.filter` reads it. A returned Promise comes too late to
 * decide, so the request is recorded and a warning names the mistake.
 */
import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { MemoryTracker, type TopOptions } from '../src/index'
import { FRAMEWORKS, sendRequest, startApp, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'

const RETURNED_PROMISE = "web-top recorded a request for which the `ignore` option's function returned a Promise"

const isHealth = (req: IncomingMessage) => req.url?.startsWith('/health') === true

/** Sends `/health` and then `/users/1`, and returns the paths recorded once `/users/1` is. */
async function recordedPaths(framework: (typeof FRAMEWORKS)[number], options: TopOptions): Promise<string[]> {
  const tracker = new MemoryTracker()
  const app = await startApp(framework, { ...options, tracker, handleSignals: false })
  try {
    expect((await sendRequest(`${app.url}/health`, { abortAfterMs: 5_000 })).status).toBe(200)
    expect((await sendRequest(`${app.url}/users/1`, { abortAfterMs: 5_000 })).status).toBe(200)
    const snapshot = await waitFor('the record of /users/1', async () => {
      const read = await tracker.read()
      return read.completed.some((task) => task.path === '/users/1') ? read : undefined
    })
    return snapshot.completed.map((task) => String(task.path)).sort()
  } finally {
    await app.close()
  }
}

describe.each(FRAMEWORKS)('%s ignore function results', (framework) => {
  it.each([
    ['a match() result', (req: IncomingMessage) => req.url?.match(/^\/health/) ?? null],
    ['the number 1', (req: IncomingMessage) => (isHealth(req) ? 1 : 0)],
    ['a non-empty string', (req: IncomingMessage) => (isHealth(req) ? 'health check' : '')],
  ])('ignores a request for %s', async (_label, ignore) => {
    const logger = captureLogger()
    const paths = await recordedPaths(framework, { ignore, logger })
    expect(paths).toEqual(['/users/1'])
    expect(logger.lines).toEqual([])
  })

  it('records a request for a falsy result', async () => {
    const logger = captureLogger()
    const paths = await recordedPaths(framework, { ignore: () => undefined, logger })
    expect(paths).toEqual(['/health', '/users/1'])
    expect(logger.lines).toEqual([])
  })

  it('records and warns for an async function', async () => {
    const logger = captureLogger()
    const ignore = async (req: IncomingMessage) => isHealth(req)
    const paths = await recordedPaths(framework, { ignore, logger })
    expect(paths).toEqual(['/health', '/users/1'])

    const lines = logger.lines.filter((line) => line.message.startsWith(RETURNED_PROMISE))
    expect(lines).toHaveLength(1)
    expect(lines[0]?.message).toContain('the function must return true or false synchronously')
    expect(lines[0]?.fields.method).toBe('GET')
    expect(lines[0]?.fields.path).toBe('/health')
  })

  it('handles the rejection of an async function', async () => {
    const logger = captureLogger()
    const ignore = async () => {
      throw new Error('async ignore failed')
    }
    // An unhandled rejection fails the test run.
    const paths = await recordedPaths(framework, { ignore, logger })
    expect(paths).toEqual(['/health', '/users/1'])
    expect(logger.lines.filter((line) => line.message.startsWith(RETURNED_PROMISE))).toHaveLength(1)
  })
})
