import Redis from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { createLuaScript, frameRequest, runFramedScript } from '../src/trackers/framed-script'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
const closers: Array<() => Promise<unknown> | void> = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
  await redis.client.script('FLUSH')
})

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

async function openClient(options: { keyPrefix?: string } = {}): Promise<Redis> {
  const client = new Redis(redis.url, options)
  closers.push(() => client.disconnect())
  await waitFor('the client connection', () => (client.status === 'ready' ? true : undefined))
  return client
}

/** A script that returns its keys and arguments, to show what Redis received. */
const ECHO = createLuaScript('return {KEYS[1], KEYS[2], unpack(ARGV)}')

describe('runFramedScript', () => {
  it('passes ASCII and non-ASCII arguments through unchanged', async () => {
    const client = await openClient()
    const args = ['plain', '', 'café', 'Grüße 🚀', '"quoted" \\ \r\n', 'x'.repeat(70_000)]

    const reply = await runFramedScript(client, ECHO, ['first', 'second'], args)

    expect(reply).toEqual(['first', 'second', ...args])
  })

  it('falls back to EVAL once on NOSCRIPT', async () => {
    const client = await openClient()
    await redis.client.config('RESETSTAT')
    await runFramedScript(client, ECHO, ['a', 'b'], ['1'])
    await runFramedScript(client, ECHO, ['a', 'b'], ['2'])
    const stats = await redis.client.info('commandstats')

    expect(/cmdstat_eval:calls=1\b/.test(stats)).toBe(true)
    expect(/cmdstat_evalsha:calls=2\b/.test(stats)).toBe(true)
    expect(await redis.client.script('EXISTS', ECHO.sha)).toEqual([1])
  })

  it('prefixes keys with the client keyPrefix, as ioredis commands do', async () => {
    const client = await openClient({ keyPrefix: 'app:' })

    const reply = await runFramedScript(client, ECHO, ['processors', 'past_tasks'], [])

    expect(reply).toEqual(['app:processors', 'app:past_tasks'])
  })

  it('rejects with the Redis error of a failing script', async () => {
    const client = await openClient()
    const failing = createLuaScript("return redis.error_reply('ERR broken on purpose')")

    await expect(runFramedScript(client, failing, [], [])).rejects.toThrow('broken on purpose')
  })
})

describe('runFramedScript with a guard', () => {
  const PUSH = createLuaScript("return redis.call('RPUSH', KEYS[1], ARGV[1])")

  it('sends PING for an abandoned call from the offline queue', async () => {
    // With lazyConnect, the call waits in ioredis's offline queue until the connection is ready.
    const client = new Redis(redis.url, { lazyConnect: true })
    closers.push(() => client.disconnect())
    const guard = { abandoned: false }
    const reply = runFramedScript(client, PUSH, ['queued'], ['first write'], guard)
    guard.abandoned = true

    // The caller sends the batch again in a call of its own, so this one must not run.
    expect(await reply).toBe('PONG')
    expect(await redis.client.exists('queued')).toBe(0)
  })

  it('sends PING for an abandoned call that ioredis writes again', async () => {
    // Pushes, then keeps Redis busy for 300 ms, so the connection can close before the reply.
    const pushThenWait = createLuaScript(
      "redis.call('RPUSH', KEYS[1], ARGV[1]) " +
        "local start = redis.call('TIME') " +
        'repeat local now = redis.call("TIME") until (now[1] - start[1]) * 1000000 + now[2] - start[2] > 300000 ' +
        'return 1',
    )
    const client = await openClient()
    const guard = { abandoned: false }
    const reply = runFramedScript(client, pushThenWait, ['resent'], ['written once'], guard)
    await new Promise((resolve) => setTimeout(resolve, 100))
    guard.abandoned = true
    client.stream.destroy()

    // Redis ran the call before the connection closed, and ioredis writes it again on its new connection, as a PING.
    expect(await reply).toBe('PONG')
    expect(await redis.client.lrange('resent', 0, -1)).toEqual(['written once'])
  })
})

describe('frameRequest', () => {
  it('counts bytes, not characters, for text that is not ASCII', () => {
    const { request } = frameRequest('s'.repeat(40), ['k'], ['é'])

    expect(request.toString()).toBe(
      `*5\r\n$7\r\nevalsha\r\n$40\r\n${'s'.repeat(40)}\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\né\r\n`,
    )
  })

  it('frames ASCII and other text as the protocol defines', () => {
    const sha = 's'.repeat(40)
    const cases: string[][] = [
      [],
      [''],
      ['a'.repeat(9), 'b'.repeat(10), 'c'.repeat(99), 'd'.repeat(100), 'e'.repeat(1_000), 'f'.repeat(10_000)],
      ['plain', 'ü'.repeat(40)],
      // Multi-byte text last, where an item that did not fit would be cut short.
      ['x'.repeat(50), '€'.repeat(60)],
      ['🚀'.repeat(30)],
      ['lone \ud800 surrogate'],
    ]
    for (const args of cases) {
      const { request, headerBytes } = frameRequest(sha, ['processors', 'past_tasks'], args)

      expect(request.equals(referenceRequest(sha, ['processors', 'past_tasks'], args))).toBe(true)
      expect(request.subarray(0, headerBytes).toString()).toBe(`*${5 + args.length}\r\n$7\r\nevalsha\r\n$40\r\n${sha}\r\n`)
    }
  })
})

/** Frames a command the plain way: each item as a UTF-8 bulk string. */
function referenceRequest(sha: string, keys: string[], args: string[]): Buffer {
  const items = ['evalsha', sha, String(keys.length), ...keys, ...args]
  const parts = items.map((item) => Buffer.concat([Buffer.from(`$${Buffer.byteLength(item)}\r\n`), Buffer.from(item), Buffer.from('\r\n')]))
  return Buffer.concat([Buffer.from(`*${items.length}\r\n`), ...parts])
}

describe('the Redis tracker with records that are not ASCII', () => {
  it('stores and publishes them byte for byte', async () => {
    const tracker = new RedisTracker({ url: redis.url })
    closers.push(() => tracker.close())
    const subscriber = await openClient()
    const messages: string[] = []
    subscriber.on('message', (_channel: string, text: string) => messages.push(text))
    await subscriber.subscribe('task_updates')

    const start = JSON.stringify({ task_id: 't-1', path: '/grüße', ended_at: null })
    const end = JSON.stringify({ task_id: 't-1', path: '/grüße', ended_at: '2026-12-04T10:00:00+00:00', tags: { note: '🚀' } })
    tracker.recordStart('p-1', start)
    await tracker.flush()
    expect(await redis.client.hget('processors', 'p-1')).toBe(start)

    tracker.recordEnd('p-1', end)
    await tracker.flush()
    expect(await redis.client.lrange('past_tasks', 0, -1)).toEqual([end])
    expect(await redis.client.hlen('processors')).toBe(0)
    await waitFor('both updates', () => (messages.length === 2 ? true : undefined))
    expect(messages).toEqual([start, end])
  })
})
