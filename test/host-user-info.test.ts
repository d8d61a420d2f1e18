/**
 * User info in a Host header (`Host: user:password@host`), sent over a raw
 * socket, is left out of the record's `host` and masked in the header
 * list, as the user info of a target in absolute form is.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { REDACTED } from '../src/index'
import { FRAMEWORKS, startApp } from './helpers/http'
import { openConnection } from './helpers/raw-http'
import { headerValues, waitForCompleted } from './helpers/recording-cases'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

/** Sends `GET /health` with `hostLine` as its Host header and returns the stored record's text. */
async function recordWithHost(
  framework: (typeof FRAMEWORKS)[number],
  hostLine: string,
  captureHeaders: boolean,
): Promise<string> {
  const app = await startApp(framework, { trackerUrl: redis.url, captureHeaders, handleSignals: false })
  try {
    const connection = await openConnection(app.port)
    connection.write(`GET /health HTTP/1.1\r\nHost: ${hostLine}\r\nConnection: close\r\n\r\n`)
    const [response] = await connection.readResponses(1)
    expect(response?.status).toBe(200)
    await waitForCompleted(redis.client, 1)
    const [text] = await redis.client.lrange('past_tasks', 0, 0)
    return text ?? ''
  } finally {
    await app.close()
  }
}

describe.each(FRAMEWORKS)('%s Host header with user info', (framework) => {
  it('stores the host without it and masks the header', async () => {
    const text = await recordWithHost(framework, 'ann:hunter2@shop.test:8080', true)
    const task = JSON.parse(text) as { host: unknown; request_headers: Array<[string, string]> }

    expect(task.host).toBe('shop.test:8080')
    expect(headerValues(task.request_headers, 'host')).toEqual([`${REDACTED}@shop.test:8080`])
    expect(text).not.toContain('hunter2')
    expect(text).not.toContain('ann:')
  })

  it('stores the host without it when headers are not captured', async () => {
    const text = await recordWithHost(framework, 'ann:p@ss@shop.test', false)
    const task = JSON.parse(text) as { host: unknown; request_headers: unknown }

    expect(task.host).toBe('shop.test')
    expect(task.request_headers).toBeNull()
    expect(text).not.toContain('p@ss')
  })
})
