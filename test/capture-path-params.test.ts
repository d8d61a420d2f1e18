/**
 * Session ids that servlet containers write into the path
 * (`/cart;jsessionid=…`) must be masked like a `session` query parameter:
 * in the record's `path` and `uri`, in a Referer, and in the `path` field
 * of web-top's log lines.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryTracker, withTop, type HttpTask, type TopOptions } from '../src/index'
import { sendRequest, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'

let server: Server | undefined

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

/** Serves one request through `withTop` on 127.0.0.1 and returns its completed record. */
async function recordOne(target: string, options: TopOptions = {}, headers: Array<[string, string]> = []): Promise<HttpTask> {
  const tracker = new MemoryTracker()
  const listener = withTop((_req, res) => res.end('ok'), { tracker, handleSignals: false, ...options })
  server = createServer(listener)
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  try {
    const { port } = server.address() as AddressInfo
    const response = await sendRequest(`http://127.0.0.1:${port}${target}`, { headers })
    expect(response.status).toBe(200)
    return await waitFor('the completed record', async () => (await tracker.read()).completed[0])
  } finally {
    await listener.close()
  }
}

describe('secret path parameters', () => {
  it('masks jsessionid in path and uri', async () => {
    const task = await recordOne('/cart;jsessionid=1A2B3C4D/items;v=2?page=1')
    expect(task.path).toBe('/cart;jsessionid=[REDACTED]/items;v=2')
    expect(task.uri).toBe('/cart;jsessionid=[REDACTED]/items;v=2?page=1')
    expect(JSON.stringify(task)).not.toContain('1A2B3C4D')
  })

  it('masks it without a query', async () => {
    const task = await recordOne('/login;JSESSIONID=ABC123')
    expect(task.path).toBe('/login;JSESSIONID=[REDACTED]')
    expect(task.uri).toBe('/login;JSESSIONID=[REDACTED]')
  })

  it('keeps other path parameters', async () => {
    const task = await recordOne('/maps;lat=50.1;lng=8.6')
    expect(task.path).toBe('/maps;lat=50.1;lng=8.6')
    expect(task.uri).toBe('/maps;lat=50.1;lng=8.6')
  })

  it('keeps one that allowParams names', async () => {
    const task = await recordOne('/cart;jsessionid=1A2B', { allowParams: ['jsessionid'] })
    expect(task.path).toBe('/cart;jsessionid=1A2B')
  })

  it('masks it in a Referer', async () => {
    const task = await recordOne('/', {}, [['referer', 'https://shop.test/cart;jsessionid=1A2B?x=1']])
    const referer = task.request_headers?.find(([name]) => name === 'REFERER')
    expect(referer?.[1]).toBe('https://shop.test/cart;jsessionid=[REDACTED]?x=1')
  })

  it('masks it in the path of a log line', async () => {
    const logger = captureLogger()
    const ignore = () => {
      throw new Error('ignore failed')
    }
    const task = await recordOne('/cart;jsessionid=1A2B3C4D', { ignore, logger })
    expect(task.path).toBe('/cart;jsessionid=[REDACTED]')
    const line = logger.lines.find((entry) => entry.fields.path !== undefined)
    expect(line?.fields.path).toBe('/cart;jsessionid=[REDACTED]')
  })
})
