/**
 * What the Redis tracker logs about faults: a stall that ends
 * without a reply, Redis's error text shown once, Redis's echo of command
 * arguments left out, and the end of a period of rejected writes. Each
 * Redis is a private redis-server on a free loopback port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import type { Logger } from '../src/util/logger'
import { hideArgumentEcho } from '../src/util/redis-error-cause'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

interface LogLine {
  level: 'warn' | 'error' | 'info'
  message: string
  fields: Record<string, unknown>
}

/** Creates a logger with `info` that keeps every line. */
function captureAllLevels(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  return {
    lines,
    warn: (fields, message) => lines.push({ level: 'warn', message, fields }),
    error: (fields, message) => lines.push({ level: 'error', message, fields }),
    info: (fields, message) => lines.push({ level: 'info', message, fields }),
  }
}

/**
 * Returns a line as one text, as a logger that prints the error's message,
 * its stack and every field would: the message, the error and the JSON of
 * the other fields.
 */
function renderLine(line: LogLine): string {
  const { err, ...rest } = line.fields
  const error = err instanceof Error ? ` (${err.message}) ${err.stack ?? ''} ${JSON.stringify(err)}` : ''
  return `${line.message}${error} ${JSON.stringify(rest)}`
}

function countOccurrences(text: string, part: string): number {
  return text.split(part).length - 1
}

function waitForReady(tracker: RedisTracker): Promise<true> {
  return waitFor('the tracker connection', () => (tracker.client.status === 'ready' ? true : undefined), WAIT_MS)
}

/** Max wait for a connection or a log line, in milliseconds: generous for a loaded CI machine. */
const WAIT_MS = 15_000

const STALL_MESSAGE = 'redis has not replied to a write for 5 s or more; records wait in memory within maxPendingBytes'
const STALL_END_MESSAGE = 'redis replied again after a stall'
const WRITE_FAILED_MESSAGE = 'redis write failed, records dropped'
const RECOVERED_MESSAGE = 'redis takes writes again after rejecting some'

/** Wait after the latest rejected write before a success counts as the recovery, with a margin. */
const RECOVERED_AFTER_MS = 2_200

/**
 * Puts 1 MB of data into `redis`, started with `--maxmemory 1mb`, so that
 * it rejects writes with OOM until the limit is lifted. The limit is off
 * while the data goes in, because Redis counts the query buffer of a write
 * too and would reject the first large SET.
 */
async function fillPastMaxmemory(redis: TestRedis): Promise<void> {
  await redis.client.config('SET', 'maxmemory', '0')
  for (let i = 0; i < 10; i++) await redis.client.set(`filler-${i}`, 'x'.repeat(100_000))
  await redis.client.config('SET', 'maxmemory', '1mb')
}

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

describe('stall given up without a reply', () => {
  it('logs no stall end', async () => {
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: redis.url, logger: log, batchWindowMs: 0 })
    await waitForReady(tracker)
    redis.freeze()
    try {
      tracker.recordEnd('p1', JSON.stringify({ task_id: 1, path: '/frozen' }))
      await new Promise((resolve) => setTimeout(resolve, 5_500))
      // The next write finds the first one unanswered for 5 s.
      tracker.recordEnd('p2', JSON.stringify({ task_id: 2, path: '/frozen' }))
      await waitFor('the stall line', () => log.lines.find((line) => line.message === STALL_MESSAGE), WAIT_MS)
      await tracker.close({ waitMs: 300 })
    } finally {
      redis.thaw()
    }

    const messages = log.lines.map((line) => line.message)
    expect(messages).not.toContain(STALL_END_MESSAGE)
    const giveUp = log.lines.find((line) => line.message.startsWith('redis tracker closed before'))
    expect(giveUp?.fields.unconfirmed).toBe(2)
  }, 30_000)
})

describe('Redis that refuses connections for 7 s or more', () => {
  it('logs no wait for readiness', async () => {
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: redis.url, logger: log, batchWindowMs: 0 })
    await tracker.flush()
    await redis.stop()
    try {
      // Records arrive during the attempts of the outage, as an app's traffic sends them.
      for (let round = 0; round < 1_400; round++) {
        tracker.recordEnd(`p${round}`, JSON.stringify({ task_id: `r${round}`, path: '/outage' }))
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    } finally {
      await redis.start()
    }
    await waitFor('the restored line', () =>
      log.lines.find((entry) => entry.message.startsWith('redis connection restored')),
    WAIT_MS)
    await tracker.close()

    const messages = log.lines.map((line) => line.message)
    expect(messages.filter((message) => message.startsWith('redis accepted the connection'))).toEqual([])
    expect(messages.filter((message) => message.startsWith('redis connection ready'))).toEqual([])
  }, 30_000)
})

describe('connection that never becomes ready', () => {
  it('logs the wait, then the ready connection', async () => {
    const log = captureAllLevels()
    // Frozen before the tracker connects: the kernel accepts the connection, and Redis never replies to its ready check.
    redis.freeze()
    let tracker: RedisTracker | undefined
    try {
      tracker = new RedisTracker({ url: redis.url, logger: log, batchWindowMs: 0 })
      tracker.recordEnd('p1', JSON.stringify({ task_id: 'n1', path: '/waiting' }))
      await new Promise((resolve) => setTimeout(resolve, 5_500))
      expect(tracker.client.status).toBe('connect')
      // The next write finds the first record waiting for 5 s.
      tracker.recordEnd('p2', JSON.stringify({ task_id: 'n2', path: '/waiting' }))
      const line = await waitFor('the not-ready line', () =>
        log.lines.find((entry) => entry.message.startsWith('redis accepted the connection but has not become ready')),
      WAIT_MS)
      expect(line.level).toBe('warn')
      expect(line.fields.status).toBe('connect')
      expect(Number(line.fields.waitingMs)).toBeGreaterThanOrEqual(5_000)
    } finally {
      redis.thaw()
    }

    await waitFor('the ready line', () =>
      log.lines.find((entry) => entry.message === 'redis connection ready; waiting records are sent now'),
    WAIT_MS)
    await tracker.flush()
    const stored = await redis.client.lrange('past_tasks', 0, -1)
    expect(stored.filter((record) => record.includes('/waiting'))).toHaveLength(2)
    await tracker.close()
  }, 40_000)
})

describe('database the server does not have', () => {
  it('logs the Redis error once', async () => {
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: `${redis.url}/99`, logger: log })
    try {
      const line = await waitFor('the SELECT failure', () => log.lines.find((entry) => entry.level === 'error'), WAIT_MS)
      expect(countOccurrences(renderLine(line), 'DB index is out of range')).toBe(1)
    } finally {
      await tracker.close()
    }
  })
})

describe('Redis out of memory', () => {
  let full: TestRedis

  beforeAll(async () => {
    full = await startRedis(['--maxmemory', '1mb', '--maxmemory-policy', 'noeviction'])
  })

  afterAll(async () => {
    await full.close()
  })

  it('logs the Redis error once, then the recovery', async () => {
    await fillPastMaxmemory(full)
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: full.url, logger: log, batchWindowMs: 0 })
    try {
      await waitForReady(tracker)
      // Starts, because their HSET comes first and meets the OOM check: a script without flags runs it at its first write.
      tracker.recordStartFields('p1', '"task_id":"t1","path":"/rejected"', '"ended_at":null', '', true)
      tracker.recordStartFields('p2', '"task_id":"t2","path":"/rejected"', '"ended_at":null', '', true)
      await tracker.flush()
      const failure = log.lines.find((line) => line.message === WRITE_FAILED_MESSAGE)
      expect(failure).toBeDefined()
      expect(countOccurrences(renderLine(failure as LogLine), 'OOM command not allowed')).toBe(1)
      expect(log.lines.map((line) => line.message)).not.toContain(RECOVERED_MESSAGE)

      // Redis needs about 1 MB of its own, so lifting the limit ends the rejections more surely than deleting the data.
      await full.client.config('SET', 'maxmemory', '0')
      // A success counts as the recovery only 2 s after the latest rejection.
      await new Promise((resolve) => setTimeout(resolve, RECOVERED_AFTER_MS))
      tracker.recordStartFields('p3', '"task_id":"t3","path":"/stored"', '"ended_at":null', '', true)
      await tracker.flush()
      expect(await full.client.hexists('processors', 'p3')).toBe(1)
      const recovered = log.lines.filter((line) => line.message === RECOVERED_MESSAGE)
      expect(recovered).toHaveLength(1)
      expect(recovered[0]?.level).toBe('info')
      expect(recovered[0]?.fields.dropped).toBe(tracker.stats().dropped)
      expect(recovered[0]?.fields.dropped).toBeGreaterThanOrEqual(2)
      expect(recovered[0]?.fields.failedMs).toBeGreaterThanOrEqual(0)
      expect(log.lines.at(-1)?.message).toBe(RECOVERED_MESSAGE)

      // A second success after the recovery logs nothing more.
      tracker.recordStartFields('p4', '"task_id":"t4","path":"/stored"', '"ended_at":null', '', true)
      await tracker.flush()
      expect(log.lines.filter((line) => line.message === RECOVERED_MESSAGE)).toHaveLength(1)
    } finally {
      await tracker.close()
    }
  })

  it('logs no recovery between rejections', async () => {
    await fillPastMaxmemory(full)
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: full.url, logger: log, batchWindowMs: 0 })
    const recordStart = (id: string) =>
      tracker.recordStartFields(id, `"task_id":"${id}","path":"/flap"`, '"ended_at":null', '', true)
    try {
      await waitForReady(tracker)
      recordStart('p1')
      await tracker.flush()
      expect(tracker.stats().dropped).toBe(1)

      // One write goes through between two rejections, as under OOM when a batch frees memory first.
      await full.client.config('SET', 'maxmemory', '0')
      recordStart('p2')
      await tracker.flush()
      expect(await full.client.hexists('processors', 'p2')).toBe(1)
      expect(log.lines.map((line) => line.message)).not.toContain(RECOVERED_MESSAGE)

      await full.client.config('SET', 'maxmemory', '1mb')
      recordStart('p3')
      await tracker.flush()
      expect(tracker.stats().dropped).toBe(2)

      await full.client.config('SET', 'maxmemory', '0')
      await new Promise((resolve) => setTimeout(resolve, RECOVERED_AFTER_MS))
      recordStart('p4')
      await tracker.flush()
      const recovered = log.lines.filter((line) => line.message === RECOVERED_MESSAGE)
      expect(recovered).toHaveLength(1)
      expect(recovered[0]?.fields.dropped).toBe(2)
    } finally {
      await tracker.close()
    }
  }, 30_000)
})

describe('Redis without EVALSHA', () => {
  let renamed: TestRedis

  beforeAll(async () => {
    // Redis then replies "unknown command 'evalsha', with args beginning with: …", echoing a record's start.
    renamed = await startRedis(['--rename-command', 'EVALSHA', ''])
  })

  afterAll(async () => {
    await renamed.close()
  })

  it('logs no echoed record text', async () => {
    const log = captureAllLevels()
    const tracker = new RedisTracker({ url: renamed.url, logger: log, batchWindowMs: 0 })
    try {
      await waitForReady(tracker)
      // The first call on a connection sends the whole script (EVAL); the ones after it use EVALSHA.
      tracker.recordStartFields('p0', '"u":"first"', '"ended_at":null', '', true)
      await tracker.flush()
      tracker.recordStartFields('p', '"u":"SECRET"', '"ended_at":null', '', true)
      await tracker.flush()
      const failure = await waitFor('the failed write', () =>
        log.lines.find((line) => line.message === WRITE_FAILED_MESSAGE), WAIT_MS,
      )
      const text = renderLine(failure)
      expect(text).toContain("unknown command 'evalsha' (arguments not logged)")
      expect(text).not.toContain('SECRET')
      expect(text).not.toContain('with args beginning with')
      for (const line of log.lines) expect(renderLine(line)).not.toContain('SECRET')
    } finally {
      await tracker.close()
    }
  })
})

describe('hideArgumentEcho', () => {
  it('hides a command name made of record text', async () => {
    // A request that Redis reads out of step makes it take record text for a command name.
    const reply = await redis.client.call('"u":"SECRET"', 'x').then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(String(reply)).toContain('SECRET')
    const hidden = hideArgumentEcho((reply as Error).message)
    expect(hidden).toBe('ERR unknown command (name not logged) (arguments not logged)')
  })
})
