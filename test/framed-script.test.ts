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

describe('frameRequest', () => {
  it('counts bytes, not characters, for text that is not ASCII', () => {
    const { request } = frameRequest('s'.repeat(40), ['k'], ['é'])

    expect(request.toString()).toBe(
      `*5\r\n$7\r\nevalsha\r\n$40\r\n${'s'.repeat(40)}\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\né\r\n`,
    )
  })
})

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
