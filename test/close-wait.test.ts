/**
 * What `close()` and the suspend after the last server closes do with the
 * records they wait for: they send again the batches Redis rejects without
 * running them and wait for Redis to come back, within their 2 s wait.
 * Whatever they give up on is counted in `dropped` and logged with its
 * count, so written plus dropped equals the records handed to the tracker.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Redis from 'ioredis'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisTracker, withTop } from '../src/index'
import { blockRedis } from './helpers/busy-redis'
import { waitFor } from './helpers/http'
import { captureLogger, type LogLine } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Milliseconds a script runs before Redis replies BUSY to other clients. */
const BUSY_AFTER_MS = 100

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

const isIdleLine = (line: LogLine) => line.message.startsWith('redis tracker went idle after its servers closed')
const isClosingLine = (line: LogLine) => line.message.startsWith('redis tracker closed before')
const isDropLine = (line: LogLine) => line.message.startsWith('task records dropped')
const isWriteFailureLine = (line: LogLine) => line.message === 'redis write failed, records dropped'

/** Returns the sum of the numeric field `field` over the lines of `lines` that `match` selects. */
function sumField(lines: LogLine[], match: (line: LogLine) => boolean, field: string): number {
  return lines.filter(match).reduce((sum, line) => sum + Number(line.fields[field]), 0)
}

function taskJson(id: number): string {
  return JSON.stringify({ processor_id: `p${id}`, path: `/t${id}` })
}

/** Serves `listener` on a free loopback port, sends `requests` requests, and returns the server. */
async function serve(listener: ReturnType<typeof withTop>, requests: number): Promise<Server> {
  const server = createServer(listener)
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  await sendRequests(server, requests)
  return server
}

async function sendRequests(server: Server, requests: number): Promise<void> {
  const port = (server.address() as AddressInfo).port
  for (let round = 1; round <= requests; round++) await (await fetch(`http://127.0.0.1:${port}/?round=${round}`)).text()
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

describe('server close while Redis replies BUSY', () => {
  it('counts and logs the records it gives up on', async () => {
    const logger = captureLogger()
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, logger })
    const tracker = listener.recorder.tracker
    const server = await serve(listener, 1)
    await waitFor('the first records', () => (tracker.stats().written === 2 ? true : undefined))
    // Far longer than the 2 s of removing the entries plus the 2 s of
    // suspend(), so that a loaded machine's delays end no test early. The
    // block ends once the idle line is there.
    const blocked = await blockRedis(redis.url, 25_000)
    try {
      await sendRequests(server, 5)
      await closeServer(server)

      const idle = await waitFor('the log of the lost records', () => logger.lines.find(isIdleLine), 15_000)
      const stats = tracker.stats()
      // Each request has a start and an end record.
      expect(stats.written + stats.dropped).toBe(12)
      expect(stats.dropped).toBeGreaterThan(0)
      expect(idle.fields.records).toBe(stats.dropped)
      expect(stats.pendingBytes).toBe(0)
    } finally {
      await blocked.release()
      await listener.close()
    }
  }, 40_000)
})

describe('close while Redis replies BUSY', () => {
  it('sends the rejected records again within its wait', async () => {
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0 })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const blocked = await blockRedis(redis.url, 800)
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      await tracker.close({ waitMs: 3_000 })
      const stats = tracker.stats()

      expect(stats.written).toBe(7)
      expect(stats.dropped).toBe(0)
      expect(stats.pendingBytes).toBe(0)
      expect(await redis.client.llen('past_tasks')).toBe(6)
    } finally {
      await blocked.done
      blocked.client.disconnect()
    }
  })

  it('logs the records it gives up on', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0, logger })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const blocked = await blockRedis(redis.url, 3_000)
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      await tracker.close({ waitMs: 500 })
      const stats = tracker.stats()

      expect(stats.written).toBe(1)
      expect(stats.dropped).toBe(6)
      expect(stats.pendingBytes).toBe(0)
      const closing = logger.lines.filter(isClosingLine)
      expect(closing).toHaveLength(1)
      expect(closing[0]?.fields.records).toBe(6)
      // A batch sent again just before the give-up is in flight, but the cause is Redis's rejection.
      expect(closing[0]?.fields.reason).toMatch(/^redis kept rejecting writes without running them, the last one with: BUSY/)
    } finally {
      await blocked.done
      blocked.client.disconnect()
    }
  })
})

describe('close while Redis is frozen after replying BUSY', () => {
  it('names the missing reply as the cause', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0, logger })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const blocked = await blockRedis(redis.url, 10_000)
    try {
      for (let id = 1; id <= 3; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      await waitFor('a rejected write', () =>
        logger.lines.find((line) => line.message === 'redis did not apply a write, sending it again'),
      )
      // Frozen in the middle of the script, Redis now replies to nothing.
      redis.freeze()
      await tracker.close({ waitMs: 2_000 })
    } finally {
      redis.thaw()
      await blocked.release()
    }

    const closing = logger.lines.filter(isClosingLine)
    expect(closing).toHaveLength(1)
    expect(closing[0]?.fields.reason).toMatch(/^redis has not replied to a write sent \d+ ms ago$/)
  }, 40_000)
})

describe('close while its connection is killed', () => {
  it('logs the records lost with it', async () => {
    const logger = captureLogger()
    const tracker = new RedisTracker({ url: redis.url, batchWindowMs: 0, logger })
    tracker.recordStart('p0', taskJson(0))
    await tracker.flush()
    const connectionId = await tracker.client.client('ID')
    // CLIENT PAUSE WRITE keeps the batch unanswered until the kill.
    await redis.client.client('PAUSE', 3_000, 'WRITE')
    try {
      for (let id = 1; id <= 6; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      const killing = new Promise((resolve) => setTimeout(resolve, 300)).then(() =>
        redis.client.client('KILL', 'ID', String(connectionId)),
      )
      await tracker.close({ waitMs: 2_000 })
      await killing
      const stats = tracker.stats()

      expect(stats.written).toBe(1)
      expect(stats.dropped).toBe(6)
      expect(stats.pendingBytes).toBe(0)
      const counted = logger.lines.filter((line) => line.message.startsWith('task records dropped'))
      expect(counted.map((line) => line.fields.dropped)).toEqual([6])
    } finally {
      await redis.client.client('UNPAUSE')
    }
  })
})

describe('server close while Redis is briefly down', () => {
  it('writes the records once Redis is back', async () => {
    const logger = captureLogger()
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, logger })
    const tracker = listener.recorder.tracker
    let down = false
    try {
      const server = await serve(listener, 1)
      await waitFor('the first records', () => (tracker.stats().written === 2 ? true : undefined))
      await redis.stop()
      down = true
      // ioredis's wait between two attempts grows to its 2 s maximum meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 3_500))
      await sendRequests(server, 4)

      await closeServer(server)
      await new Promise((resolve) => setTimeout(resolve, 300))
      await redis.start()
      down = false

      await waitFor('the records of the outage', () => (tracker.stats().written === 10 ? true : undefined))
      expect(tracker.stats().dropped).toBe(0)
      expect(logger.lines.filter(isIdleLine)).toEqual([])
      expect(await redis.client.llen('past_tasks')).toBe(4)
    } finally {
      if (down) await redis.start()
      await listener.close()
    }
  })
})

describe('server closes in a row with a wrong password', () => {
  it('logs the first give-up and counts every one', async () => {
    await redis.client.acl('SETUSER', 'weak', 'on', '>weakpass', '~*', '&*', '+@all')
    const logger = captureLogger()
    const listener = withTop((_req, res) => res.end('ok'), {
      trackerUrl: `redis://weak:wrongpw@127.0.0.1:${redis.port}`,
      logger,
    })
    try {
      await closeServer(await serve(listener, 2))
      await waitFor('the first give-up', () => (logger.lines.filter(isIdleLine).length === 1 ? true : undefined))
      await closeServer(await serve(listener, 3))
      await waitFor('the second give-up', () => (listener.recorder.tracker.stats().dropped === 10 ? true : undefined))

      // The second line repeats the first within the log interval, as a test
      // suite against a misconfigured Redis would for every test.
      const counts = logger.lines.filter(isIdleLine).map((line) => line.fields.records)
      expect(counts).toEqual([4])
      expect(listener.recorder.tracker.stats()).toMatchObject({ dropped: 10, pendingBytes: 0 })
    } finally {
      await listener.close()
      await redis.client.acl('DELUSER', 'weak')
    }
  })
})

describe('overlapping server closes while Redis is down', () => {
  it('share one connection attempt per pause', async () => {
    const down = await startRedis()
    await down.stop()
    const tracker = new RedisTracker({ url: down.url, logger: captureLogger() })
    let attempts = 0
    tracker.client.on('error', () => attempts++)
    try {
      for (let id = 1; id <= 20; id++) tracker.recordEnd(`p${id}`, taskJson(id))
      // As supertest does: a server closes per request, each one waiting on its own.
      const waits: Array<Promise<void>> = []
      for (let close = 0; close < 20; close++) {
        waits.push(tracker.suspend())
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      await Promise.all(waits)

      expect(tracker.stats()).toMatchObject({ dropped: 20, pendingBytes: 0 })
      // One attempt per 250 ms of the 2 s wait, and ioredis's own, where each wait starting its own gave hundreds.
      expect(attempts).toBeLessThan(30)
    } finally {
      await tracker.close()
      await down.close()
    }
  })
})

describe('a Redis Cluster URL whose nodes all refuse', () => {
  it('connects again with a growing wait', async () => {
    const down = await startRedis()
    await down.stop()
    const listener = withTop((_req, res) => res.end('ok'), {
      trackerUrl: `redis+cluster://127.0.0.1:${down.port}`,
      keyPrefix: '{t}:',
      logger: captureLogger(),
    })
    const tracker = listener.recorder.tracker as RedisTracker
    let ends = 0
    tracker.client.on('end', () => ends++)
    const server = await serve(listener, 1)
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      // Attempts after 0, 100, 200, 400 and 800 ms, where connecting again at once made thousands.
      expect(ends).toBeGreaterThan(0)
      expect(ends).toBeLessThan(15)
    } finally {
      await closeServer(server)
      await listener.close()
      await down.close()
    }
  })
})

/**
 * Serves a `withTop` listener that writes through an ioredis client of its
 * own, as an app passes one in the `redis` option, and waits until the
 * records of one request are written.
 */
/** Responses of `serveWithGivenClient()` apps that have emitted `finish`, when the recorder ends their tasks. */
let finishedResponses = 0

async function serveWithGivenClient() {
  const logger = captureLogger()
  const client = new Redis(redis.url)
  client.on('error', () => {})
  const handle = (_req: IncomingMessage, res: ServerResponse) => {
    res.on('finish', () => finishedResponses++)
    res.end('ok')
  }
  const listener = withTop(handle, { redis: client, logger, handleSignals: false })
  const server = await serve(listener, 1)
  await waitFor('the first records', () => (listener.recorder.tracker.stats().written === 2 ? true : undefined))
  return { logger, client, listener, server }
}

describe('given client disconnected after server close', () => {
  it('logs every record it drops at once', async () => {
    const { logger, client, listener, server } = await serveWithGivenClient()
    const tracker = listener.recorder.tracker
    try {
      // Frozen, Redis replies to none of the next writes, which stay in flight.
      redis.freeze()
      await sendRequests(server, 3)
      await closeServer(server)
      await new Promise((resolve) => setTimeout(resolve, 500))
      // As an app's own shutdown does. On a frozen Redis, ioredis closes
      // the socket after its disconnectTimeout (2 s by default).
      client.disconnect()

      await waitFor('the dropped records', () => (tracker.stats().dropped === 6 ? true : undefined), 15_000)
      const loggedDrops = () => sumField(logger.lines, isDropLine, 'dropped')
      await waitFor('a log line for every dropped record', () => (loggedDrops() === 6 ? true : undefined), 15_000)
      expect(tracker.stats()).toMatchObject({ written: 2, dropped: 6 })
      const failures = logger.lines.filter(isWriteFailureLine)
      expect(failures.map((line) => line.fields.records)).toEqual([6])
    } finally {
      redis.thaw()
      await listener.close()
      client.disconnect()
    }
  }, 40_000)
})

describe('server close after budget drops', () => {
  it('logs the drops summed so far at once', async () => {
    const logger = captureLogger()
    // Room for a few records in flight; the records past it are dropped.
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, logger, maxPendingBytes: 1_500 })
    const tracker = listener.recorder.tracker
    try {
      const server = await serve(listener, 1)
      await waitFor('the first records', () => (tracker.stats().written === 2 ? true : undefined))
      redis.freeze()
      await sendRequests(server, 10)
      const dropped = tracker.stats().dropped
      // The first drop is logged at once, and the later ones are summed for the 30 s log interval.
      expect(dropped).toBeGreaterThan(sumField(logger.lines, isDropLine, 'dropped'))

      await closeServer(server)
      // Logged when the tracker goes idle, 4 s after the close with Redis frozen.
      const loggedDrops = () => sumField(logger.lines, isDropLine, 'dropped')
      await waitFor('a log line for every dropped record', () => (loggedDrops() === dropped ? true : undefined), 15_000)
    } finally {
      redis.thaw()
      await listener.close()
    }
  }, 40_000)
})

describe('given client quit before server close', () => {
  it('counts and logs the records it never sent', async () => {
    const { logger, client, listener, server } = await serveWithGivenClient()
    const tracker = listener.recorder.tracker
    try {
      // As an app's own shutdown does, before its last requests end.
      await client.quit()
      const finishedBefore = finishedResponses
      await sendRequests(server, 3)
      // The client can read a response before the server emits `finish`. An end
      // queued after the close would count as the app serving again, and keep
      // the recorder from going idle.
      await waitFor('the finished responses', () => (finishedResponses === finishedBefore + 3 ? true : undefined))
      await closeServer(server)

      // A batch sent while the connection was closing fails on its own line; the idle line counts the rest.
      // Under load every batch may go out before the close, and then there is no idle line.
      const loggedRecords = () =>
        Number(logger.lines.find(isIdleLine)?.fields.records ?? 0) + sumField(logger.lines, isWriteFailureLine, 'records')
      await waitFor('the log of the lost records', () => (loggedRecords() === 6 ? true : undefined), 10_000)
      const idle = logger.lines.find(isIdleLine)
      if (idle !== undefined) {
        expect(idle.fields.unsent).toBe(idle.fields.records)
        expect(idle.fields.reason).toContain('ioredis status end')
      }
      expect(tracker.stats()).toMatchObject({ written: 2, dropped: 6, pendingBytes: 0 })
    } finally {
      await listener.close()
    }
  }, 30_000)
})

describe('server close while Redis is frozen', () => {
  it('gives up on the replies, then records again', async () => {
    const logger = captureLogger()
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, logger })
    const tracker = listener.recorder.tracker
    let frozen = false
    try {
      const first = await serve(listener, 1)
      await waitFor('the first records', () => (tracker.stats().written === 2 ? true : undefined))
      redis.freeze()
      frozen = true
      await sendRequests(first, 3)
      await closeServer(first)

      // 2 s for the removal of the entries, then 8 s in all for the replies.
      const idle = await waitFor('the give-up on the replies', () => logger.lines.find(isIdleLine), 20_000)
      expect(idle.fields.unconfirmed).toBe(6)
      expect(tracker.stats()).toMatchObject({ written: 2, dropped: 6, pendingBytes: 0 })
      redis.thaw()
      frozen = false

      // The next server's requests connect again.
      const second = await serve(listener, 2)
      await waitFor('the records after the give-up', () => (tracker.stats().written === 6 ? true : undefined), 15_000)
      await closeServer(second)
      const uris = (await redis.client.lrange('past_tasks', 0, -1)).map((text) => JSON.parse(text).uri as string)
      expect(uris.slice(0, 2)).toEqual(['/?round=2', '/?round=1'])
    } finally {
      if (frozen) redis.thaw()
      await listener.close()
    }
  }, 60_000)
})
