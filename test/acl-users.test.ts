/**
 * Redis ACL users: the command lists that the README gives for a writer, a
 * reader and an admin are enough for what each does. And a recorder whose
 * user may not run PUBLISH, PUBSUB or INFO still stores every record, and
 * logs once why readers get no updates. A reader subscribes meanwhile, so
 * the batch script tries to publish.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { resyncReadOptions } from '../src/cli/live'
import { formatIsoTime } from '../src/task/time'
import { DecodeCache } from '../src/trackers/decode-cache'
import type { Heartbeat } from '../src/trackers/heartbeat'
import { runCli } from './helpers/cli'
import { recorderStartText } from './helpers/records'
import { sendRequest, startApp, waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** The commands of each ACL user, as README.md lists them. */
const WRITER_COMMANDS =
  '+evalsha +eval +info +pubsub|numsub +pubsub|numpat +publish +hset +hdel +hscan +lpush +ltrim +lrange +lrem +exists +get +set +sadd +srem +del +multi +exec +select +ping +quit'
const READER_COMMANDS =
  '+multi +exec +hgetall +lrange +llen +get +evalsha +eval +hkeys +hstrlen +hmget +exists +smembers +mget +subscribe +unsubscribe +scan +info +select +ping +quit'
const ADMIN_COMMANDS =
  '+smembers +mget +evalsha +eval +exists +type +srem +hscan +hdel +lpush +ltrim +llen +publish +del +set +multi +exec +info +select +ping +quit'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

/** Creates an ACL user with these rules on every key and channel, and returns its URL. */
async function createUserWith(name: string, commands: string): Promise<string> {
  await redis.client.acl('SETUSER', name, 'reset', 'on', '>secret-pw', '~*', '&*', ...commands.split(' '))
  return `redis://${name}:secret-pw@127.0.0.1:${redis.port}`
}

/** Creates an ACL user that may run every command but `denied`, and returns its URL. */
async function createUser(name: string, denied: string[]): Promise<string> {
  await redis.client.acl('SETUSER', name, 'reset', 'on', '>secret-pw', '~*', '&*', '+@all', ...denied.map((command) => `-${command}`))
  return `redis://${name}:secret-pw@127.0.0.1:${redis.port}`
}

describe('README ACL table', () => {
  it('lists the commands these tests grant', () => {
    const readme = readFileSync(resolve(__dirname, '../README.md'), 'utf8')

    expect(readme).toContain(`| app (writer) | \`${WRITER_COMMANDS.replaceAll('|', '\\|')}\` |`)
    expect(readme).toContain(`| \`recent\`, \`check\`, \`tail\`, \`live\`, \`prefixes\` | \`${READER_COMMANDS}\` |`)
    expect(readme).toContain(`| \`prune\`, \`clear\` | \`${ADMIN_COMMANDS}\` |`)
  })
})

describe('writer without publish rights', () => {
  it.each([
    ['nopublish', ['publish']],
    ['nopubsub', ['pubsub', 'info']],
  ])('stores every record as %s', async (name, denied) => {
    await redis.client.flushall()
    const url = await createUser(name, denied)
    const subscriber = new Redis(redis.url)
    const messages: string[] = []
    subscriber.on('message', (_channel: string, text: string) => messages.push(text))
    await subscriber.subscribe('task_updates')

    const warnings: Array<{ message: string; fields: Record<string, unknown> }> = []
    const logger = {
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ message, fields }),
      error: (fields: Record<string, unknown>, message: string) => warnings.push({ message, fields }),
    }
    const tracker = new RedisTracker({ url, logger })
    try {
      for (let i = 1; i <= 10; i++) {
        tracker.recordStart(`p${i}`, JSON.stringify({ task_id: i, path: `/a/${i}` }))
        tracker.recordEnd(`p${i}`, JSON.stringify({ task_id: i, path: `/a/${i}`, status_code: 200 }))
      }
      await tracker.flush()

      expect(await redis.client.llen('past_tasks')).toBe(10)
      expect(tracker.stats()).toMatchObject({ written: 20, dropped: 0 })
      if (denied.includes('publish')) {
        expect(warnings.map((warning) => warning.message)).toEqual([
          'redis rejected PUBLISH, so live views and tail get no updates; records are still stored. Let the Redis user run PUBLISH',
        ])
        expect(String(warnings[0]?.fields.reason)).toContain("can't run this command")
        expect(messages).toEqual([])
      } else {
        // Without PUBSUB the script cannot tell whether anyone listens, so it publishes.
        expect(warnings).toEqual([])
        await waitFor('the published records', () => (messages.length === 20 ? true : undefined))
      }
    } finally {
      await tracker.close()
      subscriber.disconnect()
    }
  })
})

describe('writer without del', () => {
  it('logs the kept sequence key at close', async () => {
    await redis.client.flushall()
    const url = await createUser('nodel', ['del'])
    const warnings: Array<{ message: string; fields: Record<string, unknown> }> = []
    const logger = {
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ message, fields }),
      error: (fields: Record<string, unknown>, message: string) => warnings.push({ message, fields }),
    }
    const tracker = new RedisTracker({ url, logger })
    tracker.recordStart('p1', JSON.stringify({ task_id: 1, path: '/a' }))
    tracker.recordEnd('p1', JSON.stringify({ task_id: 1, path: '/a', status_code: 200 }))
    await tracker.flush()
    await tracker.close()

    const keys = await redis.client.keys('write_seq:*')
    expect(keys).toHaveLength(1)
    const ttlSeconds = await redis.client.ttl(keys[0] as string)
    expect(ttlSeconds).toBeGreaterThan(500)
    await waitFor('the DEL warning', () => (warnings.length > 0 ? true : undefined))
    expect(warnings.map((warning) => warning.message)).toEqual([
      'redis rejected DEL of the write sequence key, which stays until its 10 minute TTL ends; let the Redis user run DEL',
    ])
    expect(warnings[0]?.fields.key).toBe(keys[0])
    expect(JSON.stringify(warnings[0]?.fields)).not.toContain('secret-pw')
  })
})

describe('writer without a command of the batch script', () => {
  it.each([['hset'], ['evalsha', 'eval']])('names the ACL table when %s is denied', async (...denied) => {
    await redis.client.flushall()
    const url = await createUser(`no${denied.join('')}`, denied)
    const logger = captureLogger()
    const tracker = new RedisTracker({ url, logger })
    try {
      tracker.recordStart('p1', JSON.stringify({ task_id: 1, path: '/denied' }))
      await tracker.flush()
      const line = await waitFor('the failed write', async () =>
        logger.lines.find((candidate) => candidate.message.startsWith('redis write failed')),
      )
      expect(line.fields.hint).toBe(
        'let the Redis user run the writer\'s commands that README.md lists under "Redis users (ACL)", ' +
          'on the keys of the prefix and its task_updates channel',
      )
      expect(JSON.stringify(line.fields)).not.toContain('secret-pw')
    } finally {
      await tracker.close()
    }
  })
})

describe('documented ACL users', () => {
  it('record, read and administer', async () => {
    await redis.client.flushall()
    const writerUrl = await createUserWith('web-top-writer', WRITER_COMMANDS)
    const readerUrl = await createUserWith('web-top-reader', READER_COMMANDS)
    const adminUrl = await createUserWith('web-top-admin', ADMIN_COMMANDS)

    // A reader subscribes, so the writer publishes.
    const reader = new RedisTracker({ url: readerUrl })
    const published: string[] = []
    const unsubscribe = await reader.subscribe((json) => published.push(json))
    const warnings: string[] = []
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message), error: (_fields: unknown, message: string) => warnings.push(message) }
    const app = await startApp('express5', { trackerUrl: writerUrl, logger })
    try {
      for (let id = 1; id <= 5; id++) await sendRequest(`${app.url}/users/${id}`)
      const waiting = sendRequest(`${app.url}/wait`)
      await waitFor('the active request in processors', async () => ((await redis.client.hlen('processors')) === 1 ? true : undefined))

      const light = await reader.read(resyncReadOptions(true, new DecodeCache()))
      expect(light.reused).toBeDefined()
      expect([...light.active.values()].map((task) => task.path)).toEqual(['/wait'])
      const heartbeats = await reader.readHeartbeats()
      expect(heartbeats.live).toHaveLength(1)
      // The batch script stores its sequence number (GET and SET) as the writer too.
      expect(await redis.client.keys('write_seq:*')).toHaveLength(1)

      app.releaseWaiting()
      await waiting
    } finally {
      await app.close()
    }
    await waitFor('12 published updates', () => (published.length === 12 ? true : undefined))
    expect(warnings).toEqual([])

    const recent = await runCli(['recent', '--json', '--tracker-url', readerUrl])
    expect(recent.stderr).toBe('')
    expect(recent.code).toBe(0)
    expect((JSON.parse(recent.stdout) as unknown[]).length).toBe(6)
    const check = await runCli(['check', '--max-stalled', '10', '--tracker-url', readerUrl])
    expect(check.code).toBe(0)
    const typo = await runCli(['recent', '--prefix', 'typo:', '--tracker-url', readerUrl])
    expect(typo.code).toBe(0)
    expect(typo.stderr).toContain('no app has recorded under the key prefix "typo:"')
    // The URL has a password, masked in the note, so the suggested command does not repeat it.
    expect(typo.stderr).toContain('list the prefixes in use with web-top-cli prefixes and the same --tracker-url')
    expect(typo.stderr).not.toContain('secret-pw')

    // A process that stopped without cleaning up: its heartbeat expires.
    const stopped = new RedisTracker({ url: redis.url })
    stopped.writeHeartbeat(stoppedHeartbeat(), 300)
    stopped.recordStart('web-9/999-0-1.0', recorderStartText({ task_id: 'left', path: '/left', started_at: formatIsoTime(Date.now()) }))
    await stopped.flush()
    await stopped.close()
    await new Promise((resolve) => setTimeout(resolve, 500))

    const prune = await runCli(['prune', '--tracker-url', adminUrl])
    expect(prune.stderr).toBe('')
    expect(prune.code).toBe(0)
    expect(prune.stdout).toContain('Removed 1 stopped recorder from the heartbeat list and its 1 active task: web-9/999\n')
    expect(prune.stdout).toContain('1 task moved to the completed tasks as ended by cleanup')
    expect(await redis.client.lindex('past_tasks', 0)).toContain('"web_top.outcome":"process_stopped"')
    const clear = await runCli(['clear', '--yes', '--tracker-url', adminUrl])
    expect(clear.stderr).toBe('')
    expect(clear.code).toBe(0)
    expect(await redis.client.llen('past_tasks')).toBe(0)

    await unsubscribe()
    await reader.close()
  })
})


describe('reader limited to one prefix', () => {
  it('names the ACL when prefixes cannot read the other apps', async () => {
    await redis.client.flushall()
    await redis.client.lpush('shop:past_tasks', JSON.stringify({ path: '/shop' }))
    await redis.client.lpush('blog:past_tasks', JSON.stringify({ path: '/blog' }))
    await redis.client.acl('SETUSER', 'shop-reader', 'reset', 'on', '>secret-pw', '~shop:*', '&shop:task_updates', ...READER_COMMANDS.split(' '))
    const url = `redis://shop-reader:secret-pw@127.0.0.1:${redis.port}`

    const own = await runCli(['recent', '--json', '--prefix', 'shop:', '--tracker-url', url])
    expect(own.code).toBe(0)
    const prefixes = await runCli(['prefixes', '--tracker-url', url])
    expect(prefixes.code).toBe(1)
    expect(prefixes.stderr).toContain("Check the Redis user's ACL")
    expect(prefixes.stderr).toContain('every key (~*)')
    expect(prefixes.stderr).not.toContain('secret-pw')

    // prune runs a script whose commands a reader may not run.
    await redis.client.sadd('shop:heartbeats', 'web-9/999-0-1.')
    const prune = await runCli(['prune', '--prefix', 'shop:', '--tracker-url', url])
    expect(prune.code).toBe(1)
    expect(prune.stderr).toMatch(/^web-top-cli: Cannot prune the tracker at .*: .*Check the Redis user's ACL/)
  })
})
/** Returns the heartbeat of a recorder that stops right after writing it. */
function stoppedHeartbeat(): Heartbeat {
  const now = formatIsoTime(Date.now())
  return {
    processor_id_prefix: 'web-9/999-0-1.',
    host_name: 'web-9',
    process_id: 999,
    thread_id: 0,
    processor_name: 'node:999',
    started_at: now,
    updated_at: now,
    ttl_ms: 300,
    event_loop_delay_p99_ms: 1,
    heap_used_bytes: 1,
    rss_bytes: 1,
    requests_in_flight: 1,
    requests_completed: 0,
    records_dropped: 0,
  }
}

describe('documented prune user and a key of the wrong type', () => {
  it.each([
    ['heartbeats', 'string', 'set'],
    ['processors', 'string', 'hash'],
  ])('names a %s %s', async (key, actual, expected) => {
    await redis.client.flushall()
    await redis.client.sadd('heartbeats', 'web-9/999-0-1.')
    await redis.client.del(key)
    await redis.client.set(key, 'not a tracker key')
    const url = await createUserWith('web-top-admin', ADMIN_COMMANDS)

    const result = await runCli(['prune', '--tracker-url', url])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`the key "${key}" is a ${actual}, not a ${expected} (WRONGTYPE)`)
  })
})

describe('reader that runs prune or clear', () => {
  it.each([[['prune']], [['clear', '--yes']]])('names the commands that %s needs', async (command) => {
    await redis.client.flushall()
    await redis.client.sadd('heartbeats', 'web-9/999-0-1.')
    await redis.client.lpush('past_tasks', JSON.stringify({ path: '/done' }))
    const url = await createUserWith('prune-reader', READER_COMMANDS)

    const result = await runCli([...command, '--tracker-url', url])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      `Check the Redis user's ACL: ${command[0]} needs ${ADMIN_COMMANDS} on the keys of the prefix and its task_updates channel`,
    )
    expect(result.stderr).not.toContain('--all-prefixes')
    expect(result.stderr.split('\n')).toHaveLength(2)
  })
})
