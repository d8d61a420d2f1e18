/**
 * Writes that Redis rejects without running them are sent again. A real
 * Redis runs a long script from another client, so that it replies to every
 * other command with BUSY for about a second. (Redis Cluster redirections
 * are covered by the failover test in redis-cluster.test.ts.) Then what
 * the tracker logs while Redis stalls or is gone, and when it is back.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { formatIsoTime } from '../src/task/time'
import type { Heartbeat } from '../src/trackers/heartbeat'
import { isNotAppliedError } from '../src/trackers/write-retry'
import { blockRedis } from './helpers/busy-redis'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { captureLogger } from './helpers/logger'

/** Milliseconds a script runs before Redis replies BUSY to other clients. */
const BUSY_AFTER_MS = 100
/** How long the blocking script runs, in milliseconds. */
const BLOCK_MS = 1_200

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis(['--busy-reply-threshold', String(BUSY_AFTER_MS)])
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.reset()
})

describe('writes Redis did not run', () => {
  it('are sent again after BUSY', async () => {
    const messages: string[] = []
    const logger = { warn: (_fields: unknown, message: string) => messages.push(message), error() {} }
    const tracker = new RedisTracker({ url: redis.url, logger })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const blocker = await blockRedis(redis.url, BLOCK_MS)

    for (let i = 1; i <= 20; i++) tracker.recordEnd(`p${i}`, JSON.stringify({ task_id: i, path: `/r/${i}` }))
    await waitFor('a rejected write', () => (messages.length > 0 ? true : undefined))
    expect(tracker.stats().pendingBytes).toBeGreaterThan(0)

    await blocker.done
    blocker.client.disconnect()
    await waitFor('the records in past_tasks', async () => ((await redis.client.llen('past_tasks')) === 20 ? true : undefined))

    const recovered = 'redis applies writes again after rejecting some, which are kept and sent again'
    await waitFor('the log of the recovery', () => (messages.includes(recovered) ? true : undefined))
    expect(messages[0]).toBe('redis did not apply a write, sending it again')
    expect(messages.at(-1)).toBe(recovered)
    expect(tracker.stats()).toEqual({ written: 20, dropped: 0, pendingBytes: 0 })
    const paths = (await redis.client.lrange('past_tasks', 0, -1)).map((text) => (JSON.parse(text) as { path: string }).path)
    expect(new Set(paths).size).toBe(20)
    await tracker.close()
  })

  it('are waited for by flush', async () => {
    const tracker = new RedisTracker({ url: redis.url, logger: { warn() {}, error() {} } })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const blocker = await blockRedis(redis.url, BLOCK_MS)

    for (let i = 1; i <= 5; i++) tracker.recordEnd(`p${i}`, JSON.stringify({ task_id: i, path: `/f/${i}` }))
    await tracker.flush()

    expect(tracker.stats()).toEqual({ written: 5, dropped: 0, pendingBytes: 0 })
    expect(await redis.client.llen('past_tasks')).toBe(5)
    await blocker.done
    blocker.client.disconnect()
    await tracker.close()
  })

  it('keep their order with later writes', async () => {
    const tracker = new RedisTracker({ url: redis.url, logger: { warn() {}, error() {} } })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const blocker = await blockRedis(redis.url, BLOCK_MS)

    tracker.recordStart('p1', JSON.stringify({ task_id: 1, path: '/slow' }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    tracker.recordEnd('p1', JSON.stringify({ task_id: 1, path: '/slow', status_code: 200 }))
    await blocker.done
    blocker.client.disconnect()
    await waitFor('the end in past_tasks', async () => ((await redis.client.llen('past_tasks')) === 1 ? true : undefined))

    expect(await redis.client.hlen('processors')).toBe(0)
    expect(tracker.stats().dropped).toBe(0)
    await tracker.close()
  })

  it.each([
    ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.', true],
    ['LOADING Redis is loading the dataset in memory', true],
    ['CLUSTERDOWN The cluster is down', true],
    ['TRYAGAIN Multiple keys request during rehashing of slot', true],
    ['Too many Cluster redirections. Last error: ReplyError: MOVED 3808 127.0.0.1:7000', true],
    ['Failed to refresh slots cache.', true],
    ['None of startup nodes is available', true],
    ['READONLY You can\'t write against a read only replica. script: abc, on @user_script:17.', true],
    ["MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true],
    [
      "ERR Error running script (call to f_abc): @user_script:1: @user_script: 1: -READONLY You can't write against a read only replica.",
      true,
    ],
    ['NOREPLICAS Not enough good replicas to write.', true],
    ["Stream isn't writeable and enableOfflineQueue options is false", true],
    ['Connection is closed.', false],
    ['OOM command not allowed when used memory > \'maxmemory\'.', false],
    ['NOPERM this user has no permissions to run the \'evalsha\' command', false],
  ])('classifies %s', (message, expected) => {
    expect(isNotAppliedError(new Error(message))).toBe(expected)
  })
})

describe('a master that became a replica', () => {
  let master: TestRedis

  beforeAll(async () => {
    // The master sends its data set to a new replica at once, without the 5 s wait of Redis's default.
    master = await startRedis(['--repl-diskless-sync-delay', '0'])
  })

  afterAll(async () => {
    await redis.client.call('REPLICAOF', 'NO', 'ONE')
    await master.close()
  })

  /** Makes the test server a replica of `master` and waits until it has synced. */
  async function demote(): Promise<void> {
    await redis.client.call('REPLICAOF', '127.0.0.1', String(master.port))
    await waitFor(
      'the replica to sync',
      async () => {
        const info = await redis.client.info('replication')
        return info.includes('master_link_status:up') ? true : undefined
      },
      15_000,
    )
  }

  it('reconnects once for many READONLY replies', async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    const tracker = new RedisTracker({ url: redis.url, logger: { warn() {}, error() {} } })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await demote()
    let connections = 0
    tracker.client.on('ready', () => connections++)
    process.on('warning', onWarning)
    try {
      // Fifteen writes in flight on one connection get fifteen READONLY replies.
      const replies = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => tracker.client.set(`k${i}`, 'v')))
      expect(replies.map((reply) => reply.status)).toEqual(Array(15).fill('rejected'))
      await waitFor('the new connection', () => (connections > 0 ? true : undefined))
      await new Promise((resolve) => setTimeout(resolve, 300))
    } finally {
      process.off('warning', onWarning)
    }

    expect(connections).toBe(1)
    expect(warnings).not.toContain('MaxListenersExceededWarning')
    await redis.client.call('REPLICAOF', 'NO', 'ONE')
    await tracker.close()
  })

  it('gets the kept writes once it is a master again', async () => {
    const log = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger: log, batchWindowMs: 0 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await demote()

    // A replica delivers PUBLISH to its own subscribers.
    const subscriber = redis.client.duplicate()
    const messages: string[] = []
    subscriber.on('message', (_channel: string, message: string) => messages.push(message))
    await subscriber.subscribe('task_updates')

    // Each start and end in one batch go as one operation, which publishes before it writes.
    for (let i = 1; i <= 20; i++) {
      const fixed = `"task_id":"t${i}","path":"/r/${i}"`
      tracker.recordStartFields(`p${i}`, fixed, '"ended_at":null', '', true)
      tracker.recordEndFields(`p${i}`, fixed, '"ended_at":"2026-12-05T00:00:00.000000+00:00"', '')
    }
    await waitFor('a rejected write', () =>
      log.lines.some((line) => line.message === 'redis did not apply a write, sending it again') ? true : undefined,
    )
    expect(await redis.client.llen('past_tasks')).toBe(0)

    await redis.client.call('REPLICAOF', 'NO', 'ONE')
    await waitFor('the records in past_tasks', async () => ((await redis.client.llen('past_tasks')) === 20 ? true : undefined))
    // The repair of processors that follows the kept writes may still be in flight.
    await waitFor('the repair', () => (tracker.stats().pendingBytes === 0 ? true : undefined))
    expect(tracker.stats()).toEqual({ written: 40, dropped: 0, pendingBytes: 0 })
    expect(log.lines.map((line) => line.message)).not.toContain('redis write failed, records dropped')
    // Published once each: the rejected calls published nothing.
    await waitFor('40 messages', () => (messages.length >= 40 ? true : undefined))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(messages).toHaveLength(40)
    subscriber.disconnect()
    await tracker.close()
  })
})

describe('a Redis at its maxmemory with noeviction', () => {
  let full: TestRedis

  beforeAll(async () => {
    full = await startRedis(['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'])
    // Each write runs while there is room, until one finds Redis over its limit.
    for (let i = 0; i < 100; i++) {
      const written = await full.client.set(`filler-${i}`, 'x'.repeat(200_000)).then(
        () => true,
        () => false,
      )
      if (!written) return
    }
    throw new Error('Redis took 20 MB without reaching its maxmemory of 4 MB')
  })

  afterAll(async () => {
    await full.close()
  })

  it('rejects the batch before anything is stored or published', async () => {
    const log = captureLogger()
    const tracker = new RedisTracker({ url: full.url, logger: log })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const subscriber = full.client.duplicate()
    const messages: string[] = []
    subscriber.on('message', (_channel: string, message: string) => messages.push(message))
    await subscriber.subscribe('task_updates')

    // A start alone, and a start and end that go as one operation.
    tracker.recordStartFields('p1', '"task_id":"t1","path":"/held"', '"ended_at":null', '', true)
    const fixed = '"task_id":"t2","path":"/quick"'
    tracker.recordStartFields('p2', fixed, '"ended_at":null', '', true)
    tracker.recordEndFields('p2', fixed, '"ended_at":"2026-12-05T00:00:00.000000+00:00"', '')
    await tracker.flush()
    await new Promise((resolve) => setTimeout(resolve, 200))

    expect(await full.client.hlen('processors')).toBe(0)
    expect(await full.client.llen('past_tasks')).toBe(0)
    expect(messages).toEqual([])
    expect(tracker.stats().dropped).toBe(3)
    const failure = log.lines.find((line) => line.message === 'redis write failed, records dropped')
    expect(String(failure?.fields.reason ?? failure?.fields.err)).toMatch(/OOM/)
    subscriber.disconnect()
    await tracker.close()
  })
})

describe('write health log', () => {
  it('reports a stall and its end', async () => {
    const log = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger: log, batchWindowMs: 0 })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    redis.freeze()
    try {
      tracker.recordEnd('p1', JSON.stringify({ task_id: 1, path: '/during-stall' }))
      // Writes made while the first has no reply check how long it waits.
      for (let i = 2; i <= 7; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1_000))
        tracker.recordEnd(`p${i}`, JSON.stringify({ task_id: i, path: '/during-stall' }))
      }
    } finally {
      redis.thaw()
    }
    await waitFor('the stall to end', () => (log.lines.length >= 2 ? true : undefined), 10_000)

    const [stall, end] = log.lines
    expect(stall?.message).toBe('redis has not replied to a write for 5 s or more; records wait in memory within maxPendingBytes')
    expect(stall?.fields.waitingMs).toBeGreaterThanOrEqual(5_000)
    expect(stall?.fields.pendingBytes).toBeGreaterThan(0)
    expect(end?.message).toBe('redis replied again after a stall')
    await tracker.flush()
    expect(tracker.stats()).toEqual({ written: 7, dropped: 0, pendingBytes: 0 })
    expect(log.lines).toHaveLength(2)
    await tracker.close()
  }, 20_000)

  it('reports a stall without traffic', async () => {
    const log = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger: log })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const heartbeat: Heartbeat = {
      processor_id_prefix: 'web-1/111-0-1.',
      host_name: 'web-1',
      process_id: 111,
      thread_id: 0,
      processor_name: 'node:111',
      started_at: formatIsoTime(Date.now()),
      updated_at: formatIsoTime(Date.now()),
      ttl_ms: 30_000,
      event_loop_delay_p99_ms: 1,
      heap_used_bytes: 1,
      rss_bytes: 1,
      requests_in_flight: 0,
      requests_completed: 0,
      records_dropped: 0,
    }
    redis.freeze()
    try {
      tracker.writeHeartbeat(heartbeat, 30_000)
      await new Promise((resolve) => setTimeout(resolve, 5_500))
      // The recorder's next heartbeat finds the first one unanswered.
      tracker.writeHeartbeat(heartbeat, 30_000)
    } finally {
      redis.thaw()
    }
    await waitFor('the stall to end', () => (log.lines.length >= 2 ? true : undefined), 10_000)

    expect(log.lines.map((line) => line.message)).toEqual([
      'redis has not replied to a write for 5 s or more; records wait in memory within maxPendingBytes',
      'redis replied again after a stall',
    ])
    expect(log.lines[0]?.fields.pendingBytes).toBe(0)
    await tracker.close()
  }, 20_000)

  it('reports a restored connection', async () => {
    const log = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, logger: log })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    await redis.stop()
    try {
      await waitFor('the connection error', () => (log.lines.length > 0 ? true : undefined), 10_000)
    } finally {
      await redis.start()
    }
    await waitFor('the restored connection', () => (log.lines.some((line) => line.message.startsWith('redis connection restored')) ? true : undefined), 10_000)

    expect(log.lines[0]?.message).toBe('redis connection error')
    const restored = log.lines.find((line) => line.message.startsWith('redis connection restored'))
    expect(restored?.message).toBe('redis connection restored; waiting records are sent now')
    expect(restored?.fields.downMs).toBeGreaterThan(0)
    await tracker.close()
  }, 20_000)

  it('ends the log on a restored connection after two outages', async () => {
    const log = captureLogger()
    const logIntervalMs = 4_000
    const tracker = new RedisTracker({ url: redis.url, logger: log, logIntervalMs })
    await waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined))
    const restoredMessage = 'redis connection restored; waiting records are sent now'
    const countLines = (message: string) => log.lines.filter((line) => line.message === message).length

    // A first outage longer than the interval, so that the second one's
    // connection error is written again.
    await redis.stop()
    await waitFor('the connection error', () => (countLines('redis connection error') === 1 ? true : undefined), 10_000)
    await new Promise((resolve) => setTimeout(resolve, logIntervalMs + 200))
    await redis.start()
    await waitFor('the restored connection', () => (countLines(restoredMessage) === 1 ? true : undefined), 10_000)

    // A second, short outage: its restored line falls within the first one's interval.
    await redis.stop()
    await waitFor('the second connection error', () => (countLines('redis connection error') === 2 ? true : undefined), 10_000)
    await redis.start()
    await waitFor('the ready connection', () => (tracker.client.status === 'ready' ? true : undefined), 10_000)

    expect(countLines('redis connection error')).toBe(2)
    expect(countLines(restoredMessage)).toBe(2)
    expect(log.lines.at(-1)?.message).toBe(restoredMessage)
    await tracker.close()
  }, 30_000)

  it('reports a missing password with the fix', async () => {
    const secured = await startRedis(['--requirepass', 'secret-pass-4711'])
    const log = captureLogger()
    const tracker = new RedisTracker({ url: secured.url, logger: log })
    try {
      await waitFor('the connection error', () => (log.lines.length > 0 ? true : undefined), 10_000)
      const line = log.lines[0]
      expect(line?.message).toBe(
        'redis connection error: authentication failed; give the right password, and the ACL user if any, ' +
          'in the tracker URL as redis://user:password@host:port',
      )
      expect(String(line?.fields.err)).toMatch(/NOAUTH/)
      expect(JSON.stringify(log.lines)).not.toContain('secret-pass-4711')
    } finally {
      await tracker.close()
      await secured.close()
    }
  }, 20_000)
})
