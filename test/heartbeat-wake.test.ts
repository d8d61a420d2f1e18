/**
 * A withTop app starts idle until its first request, and removes the
 * heartbeat it wrote at start. While its connection is not ready yet, that
 * removal waits for it. A first request in that wait wakes the recorder and
 * writes a new heartbeat, which the removal must leave in place.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTop } from '../src/index'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** Serves one request through a withTop app, so that Redis has the heartbeat script cached, as a running server does. */
async function loadHeartbeatScript(): Promise<void> {
  const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, handleSignals: false })
  const server = createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)).text()
  const prefix = listener.recorder.processorIdPrefix
  await waitFor('the first heartbeat', async () => ((await redis.client.sismember('heartbeats', prefix)) === 1 ? true : undefined))
  await new Promise((resolve) => server.close(resolve))
  await listener.close()
  await redis.reset()
}

describe('first request while the connection gets ready', () => {
  it('keeps the heartbeat of the woken recorder', async () => {
    // Without the script cached, EVAL would follow NOSCRIPT after the removal and hide it.
    await loadHeartbeatScript()
    // Frozen, Redis accepts the connection but does not reply to the ready check.
    redis.freeze()
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, handleSignals: false })
    const server: Server = createServer(listener)
    const prefix = listener.recorder.processorIdPrefix
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const response = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/first`).then((reply) =>
        reply.text(),
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      redis.thaw()
      expect(await response).toBe('ok')
      await waitFor('the request record', async () => ((await redis.client.llen('past_tasks')) === 1 ? true : undefined))
      // The removal ends right after the connection is ready; the next heartbeat comes only after 10 s.
      await new Promise((resolve) => setTimeout(resolve, 1_000))

      expect(await redis.client.sismember('heartbeats', prefix)).toBe(1)
      expect(await redis.client.exists(`heartbeat:${prefix}`)).toBe(1)
    } finally {
      redis.thaw()
      await new Promise((resolve) => server.close(resolve))
      await listener.close()
    }
  })
})
