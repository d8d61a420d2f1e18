/**
 * Makes a Redis started with a low `--busy-reply-threshold` reply BUSY to
 * other clients, by running a long script from a client of its own.
 */
import Redis from 'ioredis'
import { waitFor } from './http'

/**
 * Runs a script that keeps the Redis at `url` busy for `blockMs`, and
 * resolves once other clients get BUSY. `done` settles when the script ends.
 */
export async function blockRedis(url: string, blockMs: number): Promise<{ done: Promise<unknown>; client: Redis }> {
  const client = new Redis(url)
  // While the script runs, Redis replies BUSY to other commands, such as the
  // ready check of a client that connects then. Without a listener, ioredis
  // prints such errors as unhandled.
  client.on('error', () => {})
  const lua = `
    local start = redis.call('TIME')
    local startMs = start[1] * 1000 + start[2] / 1000
    repeat
      local now = redis.call('TIME')
    until now[1] * 1000 + now[2] / 1000 - startMs > ${blockMs}
    return 1`
  const done = client.eval(lua, 0)
  const probe = new Redis(url, { maxRetriesPerRequest: 0 })
  probe.on('error', () => {})
  await waitFor('Redis to answer BUSY', async () => {
    try {
      await probe.ping()
      return undefined
    } catch (err) {
      return (err as Error).message.startsWith('BUSY') ? true : undefined
    }
  })
  probe.disconnect()
  return { done, client }
}
