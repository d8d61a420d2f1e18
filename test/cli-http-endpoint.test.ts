/**
 * The built CLI reading an Express app's memory:// tracker through
 * topTrackerEndpoint, over real HTTP on 127.0.0.1, and a server that
 * rejects every key.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware, topTrackerEndpoint } from '../src/index'
import { runCli, startCli, startLiveSession } from './helpers/cli'
import { writeOversizedJson } from './helpers/large-reply'
import { hasTmux } from './helpers/pty'

const API_KEY = randomBytes(24).toString('base64url')

let server: Server
let endpointUrl = ''
let recording: ReturnType<typeof topMiddleware>
const heldResponses: ServerResponse[] = []

beforeAll(async () => {
  recording = topMiddleware({ trackerUrl: 'memory://' })
  const app = express()
  app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY }))
  app.use(recording)
  app.get('/cli-http/held', (_req, res) => {
    heldResponses.push(res)
  })
  app.get('/cli-http/done', (_req, res) => {
    res.send('done')
  })
  server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  endpointUrl = `${origin}/web-top`

  await fetch(`${origin}/cli-http/done`).then((response) => response.text())
  void fetch(`${origin}/cli-http/held`).catch(() => {})
  while (heldResponses.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
})

afterAll(async () => {
  for (const response of heldResponses) response.end('released')
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await recording.close()
})

describe('web-top-cli on an http:// tracker', () => {
  it('prints active requests with --mode active', async () => {
    const result = await runCli(['recent', '--mode', 'active', '--tracker-url', endpointUrl], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/cli-http/held')
    expect(result.stdout).not.toContain('/cli-http/done')
  })

  it('prints completed requests with --mode complete', async () => {
    const result = await runCli(['recent', '--mode', 'complete', '--tracker-url', endpointUrl], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/cli-http/done')
    expect(result.stdout).not.toContain('/cli-http/held')
  })
})

describe('key prefix on an http:// tracker', () => {
  it('ignores TOP_TRACKER_PREFIX', async () => {
    const result = await runCli(['recent', '--mode', 'complete', '--tracker-url', endpointUrl], {
      env: { TOP_WEB_API_KEY: API_KEY, TOP_TRACKER_PREFIX: 'shop:' },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/cli-http/done')
  })

  it('rejects --prefix', async () => {
    const result = await runCli(['recent', '--tracker-url', endpointUrl, '--prefix', 'shop:'], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.stderr).toContain('web-top-cli: --prefix does not apply to an http(s):// tracker')
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
  })
})

describe('web-top-cli on an endpoint that rejects the key', () => {
  let rejecting: Server
  let origin = ''
  const seen: Array<Pick<IncomingMessage, 'url' | 'headers'>> = []

  beforeAll(async () => {
    rejecting = createServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers })
      let status = 403
      if (req.url?.startsWith('/unauthorized') === true) status = 401
      if (req.url?.startsWith('/missing') === true) status = 404
      if (req.url?.startsWith('/broken') === true) status = 500
      res.writeHead(status).end('rejected')
    })
    await new Promise<void>((resolve) => rejecting.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(rejecting.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    rejecting.closeAllConnections()
    await new Promise<void>((resolve) => rejecting.close(() => resolve()))
  })

  it.each([
    ['/forbid', 'rejected the API key (HTTP 403 Forbidden)'],
    ['/unauthorized', 'requires an API key (HTTP 401 Unauthorized)'],
  ])('keeps the key out of every URL at %s', async (path, reason) => {
    seen.length = 0
    const result = await runCli(['recent', '--tracker-url', `${origin}${path}`], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain(`Cannot read from the tracker at ${origin}${path}: ${origin}${path} ${reason}`)
    // The app replied with 403, so only the key can be wrong.
    const hint =
      path === '/forbid'
        ? 'Check that --api-key or TOP_WEB_API_KEY holds the key the app was started with.'
        : 'Check that the app is running, that the URL points at its tracker endpoint, and that --api-key'
    expect(result.stderr).toContain(`. ${hint}`)
    expect(result.stderr).not.toContain(API_KEY)
    expect(seen.length).toBeGreaterThan(0)
    for (const request of seen) {
      expect(request.headers['x-api-key']).toBe(API_KEY)
      expect(request.url).not.toContain(API_KEY)
      expect(request.url).not.toContain('api-key')
    }
  })

  it('names the endpoint path, not the key, after a 404', async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/missing`], { env: { TOP_WEB_API_KEY: API_KEY } })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${origin}/missing returned HTTP 404 Not Found`)
    expect(result.stderr).toContain(
      'Check that the URL points at the tracker endpoint, the path given to topTrackerEndpoint or topTrackerRoute.',
    )
    expect(result.stderr).not.toContain('api-key')
    expect(result.stderr).not.toContain('TOP_WEB_API_KEY')
  })

  it("names the app's log, not the key, after a 500", async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/broken`], { env: { TOP_WEB_API_KEY: API_KEY } })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${origin}/broken returned HTTP 500 Internal Server Error`)
    expect(result.stderr).toContain("Check the app's log for the tracker endpoint's error.")
    expect(result.stderr).not.toContain('api-key')
  })

  it('names the app, not the key, when nothing listens', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))

    const result = await runCli(['recent', '--tracker-url', `http://127.0.0.1:${port}/web-top`], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain('ECONNREFUSED')
    expect(result.stderr).toContain("Check that the app is running and that the URL's host and port are the app's.")
    expect(result.stderr).not.toContain('api-key')
  })

  it('sends the key in the query when the URL has it', async () => {
    seen.length = 0
    const result = await runCli(['recent', '--tracker-url', `${origin}/forbid?api-key=${API_KEY}`])

    expect(result.code).toBe(1)
    expect(result.stderr).not.toContain(API_KEY)
    expect(seen.length).toBeGreaterThan(0)
    for (const request of seen) {
      expect(request.headers['x-api-key']).toBeUndefined()
      expect(new URL(request.url ?? '/', origin).searchParams.get('api-key')).toBe(API_KEY)
    }
  })

  it('names the api-key parameter when the URL key is rejected', async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/forbid?api-key=${API_KEY}`])

    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `web-top-cli: Cannot read from the tracker at ${origin}/forbid?api-key=***: ${origin}/forbid rejected the ` +
        "API key (HTTP 403 Forbidden). Check that the URL's api-key parameter holds the key the app was started with.\n",
    )
  })

  it('sends the URL key, not TOP_WEB_API_KEY', async () => {
    seen.length = 0
    const result = await runCli(['recent', '--tracker-url', `${origin}/forbid?api-key=${API_KEY}`], {
      env: { TOP_WEB_API_KEY: 'another-key-of-the-environment' },
    })

    expect(result.code).toBe(1)
    expect(seen.length).toBeGreaterThan(0)
    for (const request of seen) {
      expect(new URL(request.url ?? '/', origin).searchParams.get('api-key')).toBe(API_KEY)
    }
  })

  it('rejects a key in both the URL and --api-key', async () => {
    seen.length = 0
    const result = await runCli([
      'recent',
      '--tracker-url',
      `${origin}/forbid?api-key=${API_KEY}`,
      '--api-key',
      'another-key-on-the-command-line',
    ])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      'web-top-cli: The tracker URL has an api-key parameter and --api-key is given too; ' +
        'pass the key in only one of them\n',
    )
    expect(seen).toHaveLength(0)
  })
})

/** Ports on the Fetch standard's "bad ports" list, tried in order until one is free on this host. */
const BAD_PORTS = [10080, 6665, 6666, 6667, 6668, 6669, 6000]

/** Listens on the first free port of `ports` on 127.0.0.1 and returns it. */
async function listenOnFreePort(server: Server, ports: readonly number[]): Promise<number> {
  for (const port of ports) {
    const listening = await new Promise<boolean>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false)
        else reject(error)
      }
      server.once('error', onError)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError)
        resolve(true)
      })
    })
    if (listening) return port
  }
  throw new Error(`none of the ports ${ports.join(', ')} is free on 127.0.0.1`)
}

describe('web-top-cli on a port that fetch() blocks', () => {
  let blocked: Server
  let blockedUrl = ''
  let requestsSeen = 0

  beforeAll(async () => {
    const app = express()
    app.use((_req, _res, next) => {
      requestsSeen++
      next()
    })
    app.all('/web-top', topTrackerEndpoint({ apiKey: API_KEY }))
    blocked = createServer(app)
    const port = await listenOnFreePort(blocked, BAD_PORTS)
    blockedUrl = `http://127.0.0.1:${port}/web-top`
  })

  afterAll(async () => {
    blocked.closeAllConnections()
    await new Promise<void>((resolve) => blocked.close(() => resolve()))
  })

  it.each([['recent'], ['check']])('%s names the blocked port', async (command) => {
    const result = await runCli([command, '--tracker-url', blockedUrl], { env: { TOP_WEB_API_KEY: API_KEY } })
    const port = new URL(blockedUrl).port

    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      `web-top-cli: Cannot read from the tracker at ${blockedUrl}: Node's fetch() does not connect to ` +
        `${blockedUrl} because port ${port} is on the Fetch standard's list of "bad ports" ` +
        '(such as 6000, 6665-6669 and 10080); serve the tracker endpoint on another port.\n',
    )
    expect(result.stderr).not.toContain('Check that the app is running')
    expect(requestsSeen).toBe(0)
  })
})

describe('web-top-cli on an endpoint whose reply is too large', () => {
  let large: Server
  let largeUrl = ''
  const appAdvice =
    'make the app keep fewer completed tasks (maxCompletedTasks or TOP_MAX_COMPLETED_TASKS) ' +
    'or smaller records (its limits option)'

  beforeAll(async () => {
    // No active tasks, and 65 MiB of completed ones: more than the reader accepts.
    large = createServer((req, res) => {
      if (req.url?.includes('action=completed-tasks')) {
        writeOversizedJson(res, '[')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    await new Promise<void>((resolve) => large.listen(0, '127.0.0.1', resolve))
    largeUrl = `http://127.0.0.1:${(large.address() as AddressInfo).port}/web-top`
  })

  afterAll(async () => {
    large.closeAllConnections()
    await new Promise<void>((resolve) => large.close(() => resolve()))
  })

  it.each([['tail'], ['live'], ['check']])('%s names no --limit, which it lacks', async (command) => {
    const result = await runCli([command, '--tracker-url', largeUrl], { env: { TOP_WEB_API_KEY: API_KEY } })

    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `web-top-cli: Cannot read from the tracker at ${largeUrl}: ${largeUrl} returned a body larger than ` +
        `64 MiB for action=completed-tasks; ${appAdvice}\n`,
    )
    expect(result.stderr).not.toContain('--limit')
  })

  it('recent suggests a lower --limit', async () => {
    const result = await runCli(['recent', '--tracker-url', largeUrl], { env: { TOP_WEB_API_KEY: API_KEY } })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`for action=completed-tasks; read fewer with a --limit below 10000, or ${appAdvice}\n`)
  })

  it('recent with a filter suggests no --limit', async () => {
    const result = await runCli(['recent', '--status', '5xx', '--limit', '5', '--tracker-url', largeUrl], {
      env: { TOP_WEB_API_KEY: API_KEY },
    })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`for action=completed-tasks; ${appAdvice}\n`)
    expect(result.stderr).not.toContain('--limit')
  })
})

describe('tail on an endpoint too large for its gap read', () => {
  let busy: GrowingEndpoint

  beforeAll(async () => {
    // Each reply contains 1,000 requests that ended since the previous one, so
    // tail's read of 1,000 never reaches back and it reads 10,000, whose
    // reply is over the reader's limit.
    busy = await startGrowingEndpoint('busy', 1_000)
  })

  afterAll(async () => {
    await busy.close()
  })

  it('prints the smaller read and says what may be missing', async () => {
    const tail = startCli(['tail', '--json', '--refresh-rate', '0.5', '--tracker-url', busy.url], {
      TOP_WEB_API_KEY: API_KEY,
    })
    try {
      await tail.waitFor((_stdout, stderr) => stderr.includes('MiB limit'), 'the note on the large reply')
      await tail.waitFor((stdout) => stdout.includes('/busy/'), 'a request of a later read')
    } finally {
      await tail.stop()
    }

    expect(tail.stderr()).not.toContain('Cannot read')
    expect(tail.stderr()).toMatch(
      /web-top-cli: requests that ended in the \S+ before the oldest one read may be missing, because the reply to a read of 10000 requests was over the reader's 64 MiB limit, so only the newest 1000 were read; /,
    )
  })
})

describe('tail and check on an endpoint too large for 1,000 requests', () => {
  let heavy: GrowingEndpoint

  beforeAll(async () => {
    // A reply of more than 100 completed requests is over the reader's
    // limit, as with records of about 77 KB (many 1 KB headers). Each reply
    // contains new requests, so tail never reaches back to its previous read.
    heavy = await startGrowingEndpoint('heavy', 100)
  })

  afterAll(async () => {
    await heavy.close()
  })

  it('check judges the newest 100', async () => {
    heavy.limitsRequested.length = 0
    const result = await runCli(['check', '--tracker-url', heavy.url], { env: { TOP_WEB_API_KEY: API_KEY } })

    expect(result.code).toBe(0)
    // An HTTP tracker has no past_tasks: the line names what the read returned.
    expect(result.stdout).toMatch(/^OK: .*; 100 requests in the last 60s \(the completed requests read go back \d+s\)\n$/)
    expect(result.stderr).toBe(
      "web-top-cli: the reply to a read of 10000 requests was over the reader's 64 MiB limit, so only the " +
        'newest 100 were read; the figures leave out the requests that ended before them\n',
    )
    expect(heavy.limitsRequested).toEqual([10001, 1000, 100])
  })

  it('tail prints the newest 100 and says what may be missing', async () => {
    const tail = startCli(['tail', '--json', '--refresh-rate', '0.3', '--tracker-url', heavy.url], {
      TOP_WEB_API_KEY: API_KEY,
    })
    try {
      await tail.waitFor((_stdout, stderr) => stderr.includes('MiB limit'), 'the note on the large reply')
      await tail.waitFor((stdout) => stdout.includes('/heavy/'), 'a request of a later read')
    } finally {
      await tail.stop()
    }

    expect(tail.stderr()).not.toContain('Cannot read')
    expect(tail.stderr()).toMatch(
      /web-top-cli: requests that ended in the \S+ before the oldest one read may be missing, because the reply to a read of 1000 requests was over the reader's 64 MiB limit, so only the newest 100 were read; /,
    )
    // Each read after the first prints its 100 requests whole.
    const printed = tail.stdout().trim().split('\n').length
    expect(printed).toBeGreaterThanOrEqual(100)
    expect(printed % 100).toBe(0)
  })
})

describe.skipIf(!hasTmux())('live on an http:// tracker (needs tmux)', () => {
  it('says that a pause counts no updates', async () => {
    const session = await startLiveSession(
      endpointUrl,
      (text) => text.includes('/cli-http/held') && text.includes('q quit'),
      { TOP_WEB_API_KEY: API_KEY },
    )
    try {
      session.sendKeys('p')
      const screen = await session.waitForScreen((text) => text.includes('PAUSED:'), 15_000, 'the pause notice')
      expect(screen).toContain('PAUSED: the table is frozen while reads go on; p resumes')
    } finally {
      session.kill()
    }
  })
})

interface GrowingEndpoint {
  url: string
  /** The `limit` parameter of each read of completed tasks, in order. */
  limitsRequested: number[]
  close(): Promise<void>
}

/**
 * Starts an endpoint on 127.0.0.1 whose reply of completed tasks is over
 * the reader's 64 MiB limit when the read requests more than `maxRequests`,
 * and else contains `maxRequests` requests under `/<name>/` that ended since
 * the previous reply. It has no active tasks.
 */
async function startGrowingEndpoint(name: string, maxRequests: number): Promise<GrowingEndpoint> {
  const limitsRequested: number[] = []
  let replies = 0
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.searchParams.get('action') !== 'completed-tasks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      return
    }
    const limit = Number(url.searchParams.get('limit'))
    limitsRequested.push(limit)
    if (limit > maxRequests) {
      writeOversizedJson(res, '[')
      return
    }
    replies++
    const nowMs = Date.now()
    const tasks = Array.from({ length: maxRequests }, (_, index) => ({
      task_id: `${replies}-${index}`,
      method: 'GET',
      path: `/${name}/${replies}/${index}`,
      started_at: new Date(nowMs - 5).toISOString(),
      ended_at: new Date(nowMs).toISOString(),
      status_code: 200,
    }))
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tasks))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`,
    limitsRequested,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
