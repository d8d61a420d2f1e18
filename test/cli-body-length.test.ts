/**
 * The Length column of `web-top-cli recent` for responses without a body:
 * a HEAD request and a 304 carry the `Content-Length` of the body they
 * leave out, and a 204 has none. Recorded by a real Express 5 app.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware, type TopMiddleware } from '../src/index'
import { runCli } from './helpers/cli'
import { sendRequest } from './helpers/http'
import { waitForCompleted } from './helpers/recording-cases'
import { startRedis, type TestRedis } from './helpers/redis-server'

const BODY = 'x'.repeat(13 * 1024)

let redis: TestRedis
let middleware: TopMiddleware

beforeAll(async () => {
  redis = await startRedis()
  middleware = topMiddleware({ trackerUrl: redis.url, batchWindowMs: 0, handleSignals: false })
  const app = express()
  app.use(middleware)
  app.get('/file', (_req, res) => res.send(BODY))
  app.delete('/file', (_req, res) => res.status(204).end())
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  // One at a time, so that the completed list has a known order. Not
  // fetch(), which adds `Cache-Control: no-cache` to a conditional request.
  const full = await sendRequest(`${base}/file`)
  const etag = String(full.headers.etag)
  await sendRequest(`${base}/file`, { method: 'HEAD' })
  expect((await sendRequest(`${base}/file`, { headers: [['If-None-Match', etag]] })).status).toBe(304)
  await sendRequest(`${base}/file`, { method: 'DELETE' })
  await waitForCompleted(redis.client, 4)
  await new Promise((resolve) => server.close(resolve))
  await middleware.close()
})

afterAll(async () => {
  await redis?.close()
})

describe('recent Length column', () => {
  it('shows 0 B for responses without a body', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Method,Resp,Length'])

    expect(result.code).toBe(0)
    const rows = result.stdout.trimEnd().split('\n').slice(1).map((line) => line.trim().split(/\s{2,}/))
    expect(rows).toEqual([
      ['DELETE', '204', '0 B'],
      ['GET', '304', '0 B'],
      ['HEAD', '200', '0 B'],
      ['GET', '200', '13 KiB'],
    ])
  })
})
