/**
 * The ready check of the CLI's Redis client, against a real redis-server.
 * A user whose ACL denies INFO gets no console warning from ioredis on
 * standard error. A server that is still loading its data set is waited
 * for, as ioredis's own check waits, up to the CLI's connect deadline. A
 * server that Sentinel names with the wrong role is rejected.
 */
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrackerFromUrl } from '../src/trackers/from-url'
import { runCli, startCli } from './helpers/cli'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { SENTINEL_WAIT_MS, startRedisSentinel, type TestSentinel } from './helpers/redis-sentinel'

/** The reader's commands as README.md lists them, without `info`. */
const READER_COMMANDS_WITHOUT_INFO =
  '+multi +exec +hgetall +lrange +llen +get +evalsha +eval +hkeys +hstrlen +hmget +exists +smembers +mget ' +
  '+subscribe +unsubscribe +scan +select +ping +quit'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush('past_tasks', JSON.stringify(completedRecord('/ready/one', 200, 20)))
})

afterAll(async () => {
  await redis?.close()
})

/** Creates an ACL user with these commands on every key and channel, and returns its URL. */
async function createUser(name: string, commands: string): Promise<string> {
  await redis.client.acl('SETUSER', name, 'reset', 'on', '>secret-pw', '~*', '&*', ...commands.split(' '))
  return `redis://${name}:secret-pw@127.0.0.1:${redis.port}`
}

describe('reader without the INFO command', () => {
  it('reads without a warning on stderr', async () => {
    const url = await createUser('no-info', READER_COMMANDS_WITHOUT_INFO)
    const result = await runCli(['recent', '--tracker-url', url])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/ready/one')
  })

  it('prints only its own line for a failed read', async () => {
    const url = await createUser('no-info-no-lrange', READER_COMMANDS_WITHOUT_INFO.replace('+lrange ', ''))
    const result = await runCli(['recent', '--tracker-url', url])

    expect(result.code).toBe(1)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/^web-top-cli: Cannot read from the tracker at /)
    expect(result.stderr).not.toContain('ready check')
  })

  it('names the ACL for a denied PING', async () => {
    const url = await createUser('no-ping', READER_COMMANDS_WITHOUT_INFO.replace('+ping ', ''))
    const result = await runCli(['recent', '--tracker-url', url])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain('NOPERM')
    expect(result.stderr).toContain("Check the Redis user's ACL")
    expect(result.stderr).not.toContain('Check that Redis is running')
  })

  it('subscribes in tail without a warning on stderr', async () => {
    const url = await createUser('no-info-tail', READER_COMMANDS_WITHOUT_INFO)
    const tail = startCli(['tail', '--tracker-url', url])
    try {
      // One SUBSCRIBE client joins the reader's: two connections of the user.
      await waitForClients('no-info-tail', 2)
      const record = JSON.stringify(completedRecord('/ready/two', 200, 20))
      await redis.client.lpush('past_tasks', record)
      await redis.client.publish('task_updates', record)
      await tail.waitFor((stdout) => stdout.includes('/ready/two'), 'the published request')
    } finally {
      await tail.stop()
    }
    expect(tail.stderr()).toBe('')
  })
})

describe('server loading its data set', () => {
  let loading: TestRedis

  beforeAll(async () => {
    // 1,500 keys at 1 ms each keep the server loading for about 2 s after a
    // restart, within the CLI's 5 s deadline to connect. The server replies to
    // INFO meanwhile and rejects PING and reads with LOADING.
    loading = await startRedis(['--key-load-delay', '1000', '--loading-process-events-interval-bytes', '1024'])
    const pipeline = loading.client.pipeline()
    for (let index = 0; index < 1_500; index++) pipeline.set(`filler:${index}`, 'x'.repeat(100))
    pipeline.rpush('past_tasks', JSON.stringify(completedRecord('/loaded/one', 200, 20)))
    await pipeline.exec()
    await loading.client.save()
  }, 30_000)

  afterAll(async () => {
    await loading?.close()
  })

  it('waits until the data set is loaded', async () => {
    await loading.stop()
    await loading.start()
    const info = await readInfo(loading)
    expect(info).toMatch(/^loading:1/m)

    const result = await runCli(['recent', '--tracker-url', loading.url], { timeoutMs: 20_000 })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/loaded/one')
  }, 30_000)
})

describe('server loading past the deadline', () => {
  let slow: TestRedis

  beforeAll(async () => {
    // 2,000 keys at 4 ms each keep the server loading for about 8 s, past the CLI's 5 s deadline.
    slow = await startRedis(['--key-load-delay', '4000', '--loading-process-events-interval-bytes', '1024'])
    const pipeline = slow.client.pipeline()
    for (let index = 0; index < 2_000; index++) pipeline.set(`filler:${index}`, 'x'.repeat(100))
    await pipeline.exec()
    await slow.client.save()
  }, 30_000)

  afterAll(async () => {
    await slow?.close()
  })

  it('says that Redis is still loading', async () => {
    await slow.stop()
    await slow.start()
    expect(await readInfo(slow)).toMatch(/^loading:1/m)

    const result = await runCli(['recent', '--tracker-url', slow.url], { timeoutMs: 20_000 })

    expect(result.code).toBe(1)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/is still loading its data set into memory \(about \d+ s left/)
    expect(result.stderr).not.toContain('did not reply')
  }, 40_000)
})

describe('Sentinel that names a replica', () => {
  let setup: TestSentinel

  beforeAll(async () => {
    setup = await startRedisSentinel()
    const replica = setup.nodes[1]
    // A second name whose monitored server is the replica, as a wrong Sentinel configuration has it.
    await setup.sentinels[0]?.client.call('SENTINEL', 'MONITOR', 'wrongly', '127.0.0.1', String(replica.port), '1')
  }, SENTINEL_WAIT_MS)

  afterAll(async () => {
    await setup?.close()
  })

  it('rejects the replica with its role', async () => {
    const url = setup.url.replace(/\/mymaster$/, '/wrongly')
    const result = await runCli(['recent', '--tracker-url', url], { timeoutMs: 20_000 })

    expect(result.code).toBe(1)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('Sentinel named a Redis server for "wrongly" whose role is slave, not master')
  }, 30_000)

  it('reads the master', async () => {
    const result = await runCli(['recent', '--tracker-url', setup.url], { timeoutMs: 20_000 })

    expect(result.code).toBe(0)
    // The master contains no records, which the CLI notes.
    expect(result.stderr).toMatch(/^web-top-cli: no app has recorded/)
  }, 30_000)

  it('names sentinelPassword when a Sentinel wants one', async () => {
    await setup.sentinels[0]?.client.call('ACL', 'SETUSER', 'default', 'resetpass', '>sentinel-pw')

    const denied = await runCli(['recent', '--tracker-url', setup.url], { timeoutMs: 20_000 })
    expect(denied.code).toBe(1)
    expect(denied.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(denied.stderr).toContain('Sentinels with a password of their own take it as ?sentinelPassword=')

    const logger = captureLogger()
    const tracker = createTrackerFromUrl(setup.url, { logger })
    try {
      tracker.recordStart('h/1-0-1.0', JSON.stringify(activeRecord('sentinel-auth', '/sentinel/auth')))
      await waitFor('the authentication line', async () =>
        logger.lines.find((line) => line.message.includes('authentication failed')),
      )
      const line = logger.lines.find((candidate) => candidate.message.includes('authentication failed'))
      expect(line?.message).toContain('?sentinelPassword=')
    } finally {
      await tracker.close()
    }

    const allowed = await runCli(['recent', '--tracker-url', `${setup.url}?sentinelPassword=sentinel-pw`], {
      timeoutMs: 20_000,
    })
    expect(allowed.code).toBe(0)
  }, 60_000)
})

/** Returns INFO persistence of a test server, through a client of its own. */
async function readInfo(server: TestRedis): Promise<string> {
  const client = new Redis(server.url, { enableReadyCheck: false, maxRetriesPerRequest: 1 })
  try {
    return await client.info('persistence')
  } finally {
    client.disconnect()
  }
}

/** Waits, 15 s at most, until `user` has `count` connections to the test server. */
async function waitForClients(user: string, count: number): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const list = (await redis.client.client('LIST')) as string
    const connections = list.split('\n').filter((line) => line.includes(` user=${user} `)).length
    if (connections >= count) return
    if (Date.now() > deadline) throw new Error(`${user} has ${connections} connections, not ${count}, after 15 s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
