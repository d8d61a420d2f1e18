/**
 * The test Redis's `reset()`, which the tests that freeze Redis run
 * between tests. A process that gave up on a frozen Redis and closed its
 * connection leaves its last writes in the server's socket buffer. Redis
 * reads that input in parts, one per turn of its event loop, so a FLUSHALL
 * sent at once can run between two parts, and the next test would find
 * the rest of those writes.
 */
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** RPUSH commands of about 64 KiB, more than Redis reads in one turn of its event loop. */
const LEFT_WRITES = 'RPUSH left x\r\n'.repeat(4_000)

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

describe('test Redis reset after a freeze', () => {
  it('deletes writes a closed connection left', async () => {
    // Without the wait, a round can pass by chance, so three rounds run.
    for (let round = 1; round <= 3; round++) {
      const socket = await openSocket(redis.port)
      redis.freeze()
      socket.write(LEFT_WRITES)
      await new Promise((resolve) => setTimeout(resolve, 50))
      socket.destroy()
      const reset = redis.reset()
      await new Promise((resolve) => setTimeout(resolve, 50))
      redis.thaw()
      await reset

      expect({ round, length: await redis.client.llen('left') }).toEqual({ round, length: 0 })
    }
  })
})
