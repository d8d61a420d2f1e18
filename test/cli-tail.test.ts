/**
 * `web-top-cli tail` as a child process: following task_updates of a
 * private Redis, through a lost subscription and a Redis restart, and
 * polling an app's HTTP tracker endpoint, including one that trims
 * requests before they are read.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topTrackerEndpoint } from '../src/adapters/express-endpoint'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { MemoryTracker } from '../src/trackers/memory-tracker'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { TAIL_READ_LIMIT } from '../src/cli/tail'
import { runCli, startCli, type RunningCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

const API_KEY = 'tail-test-key-0123456789'
/** An access-log line: time, status, duration, method, path, length, IP, process, user agent. */
const ACCESS_LINE =
  /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) +(\d{3}|-) +(\S+) (\S+) (\S+) (.+?) (\S+) (\S+) (".*")$/

let redis: TestRedis
let writer: RedisTracker
let sequence = 0

beforeAll(async () => {
  redis = await startRedis()
  writer = new RedisTracker({ url: redis.url })
})

afterAll(async () => {
  await writer?.close()
  await redis?.close()
})

describe('tail on Redis', () => {
  it('prints each completed request as one access-log line, as it happens', async () => {
    const tail = await startTail(['--tracker-url', redis.url])
    try {
      writer.recordStart('p-active', JSON.stringify(record('/still-running', { ended: false })))
      writer.recordEnd('p-1', JSON.stringify(record('/users/1', { status: 200, durationMs: 12 })))
      writer.recordEnd('p-2', JSON.stringify(record('/fail', { status: 500, durationMs: 1_500 })))
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/fail'), 'the /fail line')

      const lines = tail.stdout().trimEnd().split('\n')
      expect(lines).toHaveLength(2)
      const first = ACCESS_LINE.exec(lines[0] as string)
      expect(first?.slice(2)).toEqual([
        '200',
        '12.0ms',
        'GET',
        '/users/1',
        '2.0 KiB',
        '203.0.113.9',
        'web-1/4242',
        '"curl/8.5.0"',
      ])
      expect(ACCESS_LINE.exec(lines[1] as string)?.slice(2, 5)).toEqual(['500', '1.50s', 'GET'])
      expect(tail.stdout()).not.toContain('/still-running')
      expect(tail.stdout()).not.toContain('outcome=')
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })

  it('names how an unfinished request ended', async () => {
    const tail = await startTail(['--tracker-url', redis.url])
    try {
      for (const outcome of ['aborted', 'process_stopped']) {
        const task = record(`/${outcome}`, { durationMs: 40 })
        const unfinished = { ...task, status_code: null, recorded_successfully: false, tags: { 'web_top.outcome': outcome } }
        writer.recordEnd(`p-${outcome}`, JSON.stringify(unfinished))
      }
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/process_stopped'), 'the process_stopped line')

      const lines = tail.stdout().trimEnd().split('\n')
      expect(lines).toHaveLength(2)
      expect(lines[0]).toMatch(/ +- +40\.0ms GET \/aborted .* outcome=aborted$/)
      expect(lines[1]).toMatch(/ +- +40\.0ms GET \/process_stopped .* outcome=process_stopped$/)
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })

  it('prints NDJSON that passes the filters', async () => {
    const tail = await startTail([
      '--tracker-url',
      redis.url,
      '--json',
      '--status',
      '5xx',
      '--path',
      '/api/*',
      '--min-duration',
      '100ms',
      '--method',
      'GET,DELETE',
      '--host',
      'web-1',
    ])
    try {
      const cases: Array<[string, Partial<RecordFields>]> = [
        ['/api/match', { status: 503, durationMs: 150 }],
        ['/api/fast', { status: 503, durationMs: 20 }],
        ['/api/ok', { status: 200, durationMs: 150 }],
        ['/other', { status: 503, durationMs: 150 }],
        ['/api/post', { status: 503, durationMs: 150, method: 'POST' }],
        ['/api/elsewhere', { status: 503, durationMs: 150, host: 'db-2' }],
        ['/api/delete', { status: 500, durationMs: 900, method: 'DELETE' }],
      ]
      for (const [path, fields] of cases) writer.recordEnd(`p-${path}`, JSON.stringify(record(path, fields)))
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/api/delete'), 'the /api/delete record')
      await sleep(200)

      const records = tail
        .stdout()
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as HttpTask)
      expect(records.map((task) => task.path)).toEqual(['/api/match', '/api/delete'])
      expect(records[0]?.status_code).toBe(503)
      expect(records[0]?.request_headers).toContainEqual(['USER-AGENT', 'curl/8.5.0'])
    } finally {
      await tail.stop()
    }
  })

  it('counts messages that are not task records', async () => {
    const tail = await startTail(['--tracker-url', redis.url])
    try {
      await redis.client.publish('task_updates', 'not json')
      await redis.client.publish('task_updates', '[1, 2]')
      writer.recordEnd('p-after', JSON.stringify(record('/after-garbage', { status: 200, durationMs: 5 })))
      await writer.flush()
      // stdout and stderr are separate pipes, so the note may be read after the line.
      await tail.waitFor(
        (stdout, stderr) => stdout.includes('/after-garbage') && stderr.includes('skipped a message'),
        'the line after the bad messages, and the note',
      )

      expect(tail.stderr()).toMatch(/^web-top-cli: skipped a message on the update stream that is not a task record \(.+\); further ones are counted$/m)
    } finally {
      expect(await tail.stop()).toBe(130)
    }
    expect(tail.stderr()).toContain('web-top-cli: 2 messages on the update stream skipped: not task records\n')
  })

  it('reads back what ended while its subscription was down', async () => {
    const tail = await startTail(['--tracker-url', redis.url])
    const admin = new Redis(redis.port, '127.0.0.1')
    try {
      // Redis stays up; only the subscriber's connection goes, as on a network drop.
      await admin.client('KILL', 'TYPE', 'pubsub')
      for (let i = 1; i <= 3; i++) writer.recordEnd(`gap-${i}`, JSON.stringify(record(`/during-gap/${i}`)))
      await writer.flush()
      await tail.waitFor((_stdout, stderr) => stderr.includes('reconnected after a gap'), 'the reconnection')
      await tail.waitFor((stdout) => stdout.includes('/during-gap/3'), 'the records of the gap')

      expect(tail.stderr()).toMatch(/^web-top-cli: update stream lost \(.*\); reconnecting$/m)
      expect(tail.stderr()).toMatch(
        /^web-top-cli: reconnected after a gap of \d+\.\d+s; 3 requests read back from past_tasks$/m,
      )
      const paths = tail.stdout().match(/\/during-gap\/\d/g)
      expect(paths).toEqual(['/during-gap/1', '/during-gap/2', '/during-gap/3'])

      writer.recordEnd('after', JSON.stringify(record('/after-gap')))
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/after-gap'), 'a record after the gap')
    } finally {
      admin.disconnect()
      await tail.stop()
    }
  })

  it('goes on after a Redis restart', async () => {
    const tail = await startTail(['--tracker-url', redis.url])
    try {
      await redis.stop()
      await tail.waitFor((_stdout, stderr) => stderr.includes('update stream lost'), 'the lost stream')
      await redis.start()
      await tail.waitFor((_stdout, stderr) => stderr.includes('reconnected after a gap'), 'the reconnection', 15_000)
      writer.recordEnd('restart', JSON.stringify(record('/after-restart')))
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/after-restart'), 'a record after the restart')
    } finally {
      expect(await tail.stop('SIGTERM')).toBe(143)
    }
  })
})

describe('tail on an HTTP tracker endpoint', () => {
  let server: Server
  let tracker: MemoryTracker
  let url: string
  let requestCount = 0

  beforeAll(async () => {
    tracker = new MemoryTracker()
    const endpoint = topTrackerEndpoint({ apiKey: API_KEY, tracker })
    server = createServer((req, res) => {
      requestCount++
      endpoint(req, res, () => res.writeHead(500).end())
    })
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`
  })

  afterAll(async () => {
    await new Promise((resolveClose) => server?.close(resolveClose))
  })

  it('polls the completed requests and prints only new ones', async () => {
    tracker.recordEnd('old', JSON.stringify(record('/before-tail')))
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.2'], { TOP_WEB_API_KEY: API_KEY })
    try {
      // Records written before tail's first read count as printed.
      await waitForNewRead(() => requestCount, tail)
      tracker.recordEnd('new-1', JSON.stringify(record('/polled/1')))
      tracker.recordEnd('new-2', JSON.stringify(record('/polled/2')))
      await tail.waitFor((stdout) => stdout.includes('/polled/2'), 'the polled records')
      await sleep(500)
      const paths = tail
        .stdout()
        .trimEnd()
        .split('\n')
        .map((line) => ACCESS_LINE.exec(line)?.[5])
      expect(paths).toEqual(['/polled/1', '/polled/2'])
      expect(tail.stderr()).toBe('')
    } finally {
      await tail.stop()
    }
  })

  it.each([
    [['--refresh-rate', '1e7'], {}],
    [[], { TOP_REFRESH_RATE: '2147484' }],
  ])('rejects a refresh rate past the largest timer delay: %j %j', async (args, env) => {
    const countBefore = requestCount
    const result = await runCli(['tail', '--tracker-url', url, ...args], {
      env: { TOP_WEB_API_KEY: API_KEY, ...env },
      // Only a CLI that accepted the value keeps running until this interrupt.
      interruptAfterMs: 10_000,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Expected a number of seconds from 0.1 to 2147483, or a duration such as 90s')
    expect(result.stderr).not.toContain('TimeoutOverflowWarning')
    expect(requestCount).toBe(countBefore)
  })

  it('takes the key from --api-key', async () => {
    const tail = await startTail(['--tracker-url', url, '--api-key', API_KEY, '--refresh-rate', '0.2'])
    try {
      await waitForNewRead(() => requestCount, tail)
      tracker.recordEnd('new-3', JSON.stringify(record('/polled/3')))
      await tail.waitFor((stdout) => stdout.includes('/polled/3'), 'the polled record')
    } finally {
      await tail.stop()
    }
  })
})

describe('tail on an HTTP endpoint that goes down', () => {
  it('reports the failure once and the recovery', async () => {
    const tracker = new MemoryTracker()
    const endpoint = topTrackerEndpoint({ apiKey: API_KEY, tracker })
    let reads = 0
    const server = createServer((req, res) => {
      reads++
      endpoint(req, res, () => res.writeHead(500).end())
    })
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    const port = (server.address() as AddressInfo).port
    const url = `http://127.0.0.1:${port}/web-top`
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.1'], { TOP_WEB_API_KEY: API_KEY })
    try {
      // The endpoint goes down only after tail has read it, however long a loaded machine takes to start tail.
      await waitForNewRead(() => reads, tail)
      server.closeAllConnections()
      await new Promise((resolveClose) => server.close(resolveClose))
      await tail.waitFor((_stdout, stderr) => stderr.includes('ECONNREFUSED'), 'the refused poll', 15_000)
      // About 15 more polls at 0.1 s, each refused.
      await sleep(2_000)
      const downLines = tail.stderr().trimEnd().split('\n')
      // A poll in flight when the connections closed may fail first with another error, printed in full too.
      expect(downLines.length).toBeLessThanOrEqual(2)
      expect(downLines.filter((line) => line.includes('ECONNREFUSED'))).toHaveLength(1)
      expect(downLines.at(-1)).toMatch(/^web-top-cli: .*ECONNREFUSED/)

      await new Promise<void>((resolveListen) => server.listen(port, '127.0.0.1', resolveListen))
      tracker.recordEnd('after-restart', JSON.stringify(record('/after-restart')))
      // stdout and stderr are separate pipes, so the recovery notice may be read after the record.
      await tail.waitFor(
        (stdout, stderr) => stdout.includes('/after-restart') && stderr.includes('can be read again'),
        'the record written after the restart, and the recovery notice',
        15_000,
      )
      const lines = tail.stderr().trimEnd().split('\n')
      expect(lines).toHaveLength(downLines.length + 1)
      const recovered = /^web-top-cli: the tracker can be read again, after (\d+) failed reads in [\d.]+s$/.exec(lines.at(-1) ?? '')
      expect(recovered, lines.at(-1)).not.toBeNull()
      expect(Number(recovered?.[1])).toBeGreaterThanOrEqual(5)
    } finally {
      await tail.stop()
      server.closeAllConnections()
      await new Promise((resolveClose) => server.close(resolveClose))
    }
  })
})

describe('tail on an HTTP endpoint that trims', () => {
  const servers: Server[] = []

  afterAll(async () => {
    for (const server of servers) await new Promise((resolveClose) => server.close(resolveClose))
  })

  /** Number of requests served by each endpoint URL. */
  const readCounts = new Map<string, number>()

  /** Serves the tracker at /web-top on 127.0.0.1 and returns the endpoint URL. */
  async function serve(tracker: MemoryTracker): Promise<string> {
    const endpoint = topTrackerEndpoint({ apiKey: API_KEY, tracker })
    let url = ''
    const server = createServer((req, res) => {
      readCounts.set(url, (readCounts.get(url) ?? 0) + 1)
      endpoint(req, res, () => res.writeHead(500).end())
    })
    servers.push(server)
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`
    return url
  }


  function recordMany(tracker: MemoryTracker, prefix: string, count: number): void {
    for (let i = 1; i <= count; i++) tracker.recordEnd(`${prefix}-${i}`, JSON.stringify(record(`/${prefix}/${i}`)))
  }

  function printedPaths(tail: RunningCli): string[] {
    return tail
      .stdout()
      .trimEnd()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => ACCESS_LINE.exec(line)?.[5] ?? line)
  }

  it('names a restart as a possible cause', async () => {
    const tracker = new MemoryTracker()
    const url = await serve(tracker)
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.3'], { TOP_WEB_API_KEY: API_KEY })
    try {
      await waitForNewRead(() => readCounts.get(url) ?? 0, tail)
      recordMany(tracker, 'kept', 3)
      await tail.waitFor((stdout) => stdout.includes('/kept/3'), 'the first polled records')
      await sleep(700)
      // As the app behind the endpoint restarting: its memory tracker starts empty.
      await tracker.clear()
      recordMany(tracker, 'restarted', 1)
      // stdout and stderr are separate pipes, so the notice may be read after the record.
      await tail.waitFor(
        (stdout, stderr) => stdout.includes('/restarted/1') && stderr.includes('may be missing'),
        'the record after the restart, and the notice',
        15_000,
      )
      await sleep(700)

      const notices = tail.stderr().trimEnd().split('\n')
      expect(notices).toHaveLength(1)
      expect(notices[0]).toMatch(
        /^web-top-cli: requests that ended in the \d+\.\d+s before the oldest one read may be missing, because the tracker keeps only the newest, or lost them in a restart of its app or a clear; if it keeps only the newest, a shorter --refresh-rate reads it more often$/,
      )
    } finally {
      await tail.stop()
    }
  })

  it('reports no period too short to print', async () => {
    const tracker = new MemoryTracker()
    const url = await serve(tracker)
    const lastSeenMs = Date.now()
    tracker.recordEnd('seen', JSON.stringify(endedAt('/seen', lastSeenMs)))
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.3'], { TOP_WEB_API_KEY: API_KEY })
    try {
      await waitForNewRead(() => readCounts.get(url) ?? 0, tail)

      // As an app restarting: the next request it keeps ended 9 ms after the last one read, which prints as 0.00s.
      await tracker.clear()
      tracker.recordEnd('close', JSON.stringify(endedAt('/close', lastSeenMs + 9)))
      await waitForNewRead(() => readCounts.get(url) ?? 0, tail)
      expect(tail.stderr()).toBe('')

      // 10 ms prints as 0.01s, so that period is reported.
      await tracker.clear()
      tracker.recordEnd('later', JSON.stringify(endedAt('/later', lastSeenMs + 9 + 10)))
      await tail.waitFor((_stdout, stderr) => stderr.includes('may be missing'), 'the notice of missing requests', 15_000)
      expect(tail.stderr()).toMatch(/^web-top-cli: requests that ended in the 0\.01s before the oldest one read may be missing, /)
    } finally {
      await tail.stop()
    }
  })

  it('reports requests trimmed between two polls', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 5 })
    const url = await serve(tracker)
    tracker.recordEnd('old', JSON.stringify(record('/before-tail')))
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.3'], { TOP_WEB_API_KEY: API_KEY })
    try {
      await waitForNewRead(() => readCounts.get(url) ?? 0, tail)
      // Fewer than the tracker keeps: the next read still returns /before-tail, so nothing is missing.
      recordMany(tracker, 'few', 3)
      await tail.waitFor((stdout) => stdout.includes('/few/3'), 'the first polled records')
      await sleep(700)
      expect(printedPaths(tail)).toEqual(['/few/1', '/few/2', '/few/3'])
      expect(tail.stderr()).toBe('')

      recordMany(tracker, 'burst', 30)
      // stdout and stderr are separate pipes, so the last record may be read after the notice.
      await tail.waitFor(
        (stdout, stderr) => stderr.includes('may be missing') && stdout.includes('/burst/30 '),
        'the notice of missing requests, and the last record',
        15_000,
      )
      await sleep(700)

      expect(printedPaths(tail).slice(3)).toEqual(['/burst/26', '/burst/27', '/burst/28', '/burst/29', '/burst/30'])
      const notices = tail.stderr().trimEnd().split('\n')
      expect(notices).toHaveLength(1)
      expect(notices[0]).toMatch(
        /^web-top-cli: requests that ended in the \d+\.\d+s before the oldest one read may be missing, because the tracker keeps only the newest, or lost them in a restart of its app or a clear; if it keeps only the newest, a shorter --refresh-rate reads it more often$/,
      )
    } finally {
      await tail.stop()
    }
  })

  it('reads more when a poll stops at its limit', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 3 * TAIL_READ_LIMIT })
    const url = await serve(tracker)
    tracker.recordEnd('old', JSON.stringify(record('/before-tail')))
    const tail = await startTail(['--tracker-url', url, '--refresh-rate', '0.5'], { TOP_WEB_API_KEY: API_KEY })
    try {
      await waitForNewRead(() => readCounts.get(url) ?? 0, tail)
      const count = TAIL_READ_LIMIT + 500
      recordMany(tracker, 'many', count)
      await tail.waitFor((stdout) => stdout.includes(`/many/${count} `), 'the last record', 10_000)
      await sleep(1_200)

      const paths = printedPaths(tail)
      expect(paths).toHaveLength(count)
      expect(paths[0]).toBe('/many/1')
      expect(paths.at(-1)).toBe(`/many/${count}`)
      expect(tail.stderr()).toBe('')
    } finally {
      await tail.stop()
    }
  })
})

interface RecordFields {
  status: number
  durationMs: number
  method: string
  host: string
  ended: boolean
}

function record(path: string, fields: Partial<RecordFields> = {}): HttpTask {
  const now = Date.now()
  const ended = fields.ended ?? true
  return {
    task_id: `tail-${++sequence}`,
    host_name: fields.host ?? 'web-1',
    process_id: 4242,
    thread_id: 0,
    started_at: formatIsoTime(now - (fields.durationMs ?? 5)),
    ended_at: ended ? formatIsoTime(now) : null,
    method: fields.method ?? 'GET',
    path,
    client_ip_address: '203.0.113.9',
    request_headers: [['USER-AGENT', 'curl/8.5.0']],
    status_code: ended ? (fields.status ?? 200) : null,
    response_headers: [['Content-Length', '2048']],
  }
}

/**
 * Waits until tail has handled a read of its HTTP tracker that began after
 * this call, given the count of requests the tracker served. Reads run one
 * after another, so the third request from now follows such a read.
 */
async function waitForNewRead(readCount: () => number, tail: RunningCli): Promise<void> {
  const target = readCount() + 3
  const deadline = Date.now() + 15_000
  while (readCount() < target) {
    if (Date.now() > deadline) throw new Error(`tail made ${readCount()} reads, not ${target}:\n${tail.stderr()}`)
    await sleep(25)
  }
}

/** Returns a completed record that ended at `endedAtMs`. */
function endedAt(path: string, endedAtMs: number): HttpTask {
  return { ...record(path), started_at: formatIsoTime(endedAtMs - 5), ended_at: formatIsoTime(endedAtMs) }
}

/**
 * Starts tail and waits until it has subscribed to the private Redis, or,
 * for another tracker, until it has had time to read once.
 */
async function startTail(args: string[], env: Record<string, string> = {}): Promise<RunningCli> {
  const before = await countSubscribers()
  const tail = startCli(['tail', ...args], env)
  if (!args.includes(redis.url)) {
    await sleep(700)
    return tail
  }
  const deadline = Date.now() + 10_000
  while ((await countSubscribers()) <= before) {
    if (Date.now() > deadline) throw new Error(`tail did not subscribe to task_updates:\n${tail.stderr()}`)
    await sleep(25)
  }
  return tail
}

async function countSubscribers(): Promise<number> {
  const [, count] = (await redis.client.pubsub('NUMSUB', 'task_updates')) as [string, number]
  return count
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms))
}
