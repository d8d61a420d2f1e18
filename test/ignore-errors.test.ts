/**
 * An `ignore` function that throws must not cost the request its record:
 * the request is served and recorded, and the error is logged once per
 * 30 s, naming the option.
 */
import type { IncomingMessage } from 'node:http'
import { describe, expect, it, vi } from 'vitest'
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

describe.each(FRAMEWORKS)('%s ignore function that throws an unreadable value', (framework) => {
  const throwUnreadable = () => {
    throw new Proxy(
      {},
      {
        get() {
          throw new Error('property read failed')
        },
      },
    )
  }

  it('names the ignore option on stderr', async () => {
    const tracker = new MemoryTracker()
    const stderrWrite = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const app = await startApp(framework, { tracker, ignore: throwUnreadable, handleSignals: false })
      try {
        await requestAndWaitForRecord(app.url, tracker)
      } finally {
        await app.close()
      }

      const output = stderrWrite.mock.calls.map((call) => String(call[0])).join('')
      expect(output).toContain(IGNORE_THREW)
      expect(output).toContain('(the thrown value could not be read, because reading its properties threw)')
      expect(output).not.toContain('the logger given')
    } finally {
      stderrWrite.mockRestore()
    }
  })

  it('passes the logger a readable error', async () => {
    const tracker = new MemoryTracker()
    const logger = captureLogger()
    const app = await startApp(framework, { tracker, logger, ignore: throwUnreadable, handleSignals: false })
    try {
      await requestAndWaitForRecord(app.url, tracker)
    } finally {
      await app.close()
    }

    const lines = logger.lines.filter((line) => line.message.startsWith(IGNORE_THREW))
    expect(lines).toHaveLength(1)
    const err = lines[0]?.fields.err
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toBe('the thrown value could not be read, because reading its properties threw')
  })

  it('survives a logger that throws an unreadable value', async () => {
    const tracker = new MemoryTracker()
    const throwing = () => throwUnreadable()
    const stderrWrite = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const app = await startApp(framework, {
        tracker,
        logger: { warn: throwing, error: throwing },
        ignore: throwUnreadable,
        handleSignals: false,
      })
      try {
        await requestAndWaitForRecord(app.url, tracker)
      } finally {
        await app.close()
      }

      const output = stderrWrite.mock.calls.map((call) => String(call[0])).join('')
      expect(output).toContain('the logger given in the `logger` option threw (a value that could not be read)')
    } finally {
      stderrWrite.mockRestore()
    }
  })
})

/** Sends one request to `/users/1` and waits until the tracker has its completed task. */
async function requestAndWaitForRecord(url: string, tracker: MemoryTracker): Promise<void> {
  const response = await sendRequest(`${url}/users/1`, { abortAfterMs: 5_000 })
  expect(response.status).toBe(200)
  await waitFor('a completed task', async () => ((await tracker.read()).completed.length >= 1 ? true : undefined))
}
