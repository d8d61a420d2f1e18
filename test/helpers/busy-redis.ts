/**
 * Makes a Redis started with a low `--busy-reply-threshold` reply BUSY to
 * other clients, by running a long script from a client of its own.
 */
import Redis from 'ioredis'
import { waitFor } from './http'

export interface BlockedRedis {
  /** Settles when the script ends. */
  done: Promise<unknown>
  client: Redis
  /** Ends the script now if it still runs (SCRIPT KILL), waits for its end and closes its client. */
  release(): Promise<void>
}

/**
 * Runs a script that keeps the Redis at `url` busy for `blockMs`, and
 * resolves once other clients get BUSY. A test that waits for something to
 * happen during the block can block for long, to stay clear of a loaded
 * machine's delays, and call `release()` once it has seen it.
 */
export async function blockRedis(url: string, blockMs: number): Promise<BlockedRedis> {
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
  let ended = false
  void done.then(
    () => (ended = true),
    () => (ended = true),
  )
  const release = async () => {
    if (!ended) {
      const killer = new Redis(url, { maxRetriesPerRequest: 0 })
      killer.on('error', () => {})
      // NOTBUSY when the script ended meanwhile.
      await killer.script('KILL').catch(() => undefined)
      killer.disconnect()
    }
    await done.catch(() => undefined)
    client.disconnect()
  }
  return { done, client, release }
}
