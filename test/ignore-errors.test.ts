/**
 * An `ignore` function that throws must not cost the request its record:
 * the request is served and recorded, and the error is logged once per
 * 30 s, naming the option.
 */
import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { MemoryTracker } from '../src/index'
import { FRAMEWORKS, sendRequest, startApp, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'

const IGNORE_THREW = "web-top recorded a request on which the `ignore` option's function threw"

describe.each(FRAMEWORKS)('%s ignore function that throws', (framework) => {
  it('records the request and logs once', async () => {
    const tracker = new MemoryTracker()
    const logger = captureLogger()
    const ignore = (req: IncomingMessage) => {
      if (req.url?.startsWith('/users/') === true) throw new Error('ignore rule failed')
      return req.url === '/health'
    }
    const app = await startApp(framework, { tracker, logger, ignore, handleSignals: false })

    try {
      for (let i = 1; i <= 3; i++) {
        const response = await sendRequest(`${app.url}/users/${i}?token=secret`, { abortAfterMs: 5_000 })
        expect(response.status).toBe(200)
      }
      expect((await sendRequest(`${app.url}/health`, { abortAfterMs: 5_000 })).status).toBe(200)

      const snapshot = await waitFor('three completed tasks', async () => {
        const read = await tracker.read()
        return read.completed.length >= 3 ? read : undefined
      })
      const paths = snapshot.completed.map((task) => task.path).sort()
      expect(paths).toEqual(['/users/1', '/users/2', '/users/3'])
    } finally {
      await app.close()
    }

    const lines = logger.lines.filter((line) => line.message.startsWith(IGNORE_THREW))
    expect(lines).toHaveLength(1)
    const fields = lines[0]?.fields ?? {}
    expect((fields.err as Error).message).toBe('ignore rule failed')
    expect(fields.method).toBe('GET')
    expect(fields.path).toBe('/users/1')
    expect(JSON.stringify(logger.lines)).not.toContain('secret')
    expect(logger.lines.map((line) => line.message)).not.toContain('web-top failed to record a request')
  })
})
