/**
 * `web-top-cli recent` as a child process against a private Redis seeded
 * with the Python tracker's records and with records of this package's
 * Express middleware.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { resolve } from 'node:path'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware, type TopMiddleware } from '../src/adapters/express'
import type { HttpTask } from '../src/task/http-task'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

interface PythonFixture {
  processors: Record<string, unknown>
  past_tasks: unknown[]
  last_cleared_at: string
}

const FIXTURE_PATH = resolve(__dirname, 'fixtures/python-tracker-records.json')

/** The columns of `recent` without --columns, in order. */
const DEFAULT_HEADER = ['Cty', 'IP', 'Method', 'Path', 'Duration', 'Ago', 'Resp', 'Length', 'User agent']

let redis: TestRedis
let trustedApp: RunningApp
let untrustedApp: RunningApp
let releaseSlowRequest: () => void
let slowResponse: Promise<Response>

interface RunningApp {
  url: string
  middleware: TopMiddleware
  server: Server
}

beforeAll(async () => {
  redis = await startRedis()
  await seedPythonFixture(redis)

  const gate = new Promise<void>((resolveGate) => {
    releaseSlowRequest = resolveGate
  })
  trustedApp = await startExpressApp(redis.url, true, gate)
  untrustedApp = await startExpressApp(redis.url, false, gate)

  // One request at a time, so the completed list has a known order.
  const forwarded = { 'X-Forwarded-For': '203.0.113.7', 'User-Agent': 'node-test/1.0' }
  await fetchOk(`${trustedApp.url}/api/orders?page=2`, {
    method: 'POST',
    headers: { ...forwarded, 'CF-IPCOUNTRY': 'DE' },
  })
  await fetchOk(`${trustedApp.url}/api/fail`, { headers: forwarded })
  await fetchOk(`${trustedApp.url}/old-home`, { headers: forwarded, redirect: 'manual' })
  await fetchOk(`${untrustedApp.url}/api/spoofed`, {
    headers: { 'X-Forwarded-For': '198.51.100.9', 'CF-IPCOUNTRY': 'FR' },
  })
  slowResponse = fetch(`${trustedApp.url}/slow`, { headers: { 'User-Agent': 'slow-client/2.0' } })

  await waitForRedis(async () => (await redis.client.hlen('processors')) === 2)
  await waitForRedis(async () => (await redis.client.llen('past_tasks')) === 6)
})

afterAll(async () => {
  releaseSlowRequest?.()
  await slowResponse?.catch(() => undefined)
  for (const app of [trustedApp, untrustedApp]) {
    if (app === undefined) continue
    await app.middleware.close()
    await new Promise((resolveClose) => app.server.close(resolveClose))
  }
  await redis?.close()
})

describe('recent', () => {
  it('prints active then completed requests with the default columns', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)

    const [header, ...rows] = tableLines(result.stdout)
    expect(splitCells(header)).toEqual(DEFAULT_HEADER)
    expect(rows.map((row) => cellOf(row, header, 'Path'))).toEqual([
      '/api/slow',
      '/slow',
      '/api/spoofed',
      '/old-home',
      '/api/fail',
      '/api/orders',
      '/no-status',
      '/api/candles',
    ])
    expect(rows.map((row) => cellOf(row, header, 'Method'))).toEqual([
      'POST',
      'GET',
      'GET',
      'GET',
      'GET',
      'POST',
      'GET',
      'GET',
    ])
    expect(rows.map((row) => cellOf(row, header, 'Resp'))).toEqual(['-', '-', '200', '302', '500', '201', '-', '200'])
  })

  it('shows the values a user checks on each row', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url])
    const [header, ...rows] = tableLines(result.stdout)
    const row = (path: string) => rows.find((line) => cellOf(line, header, 'Path') === path) ?? ''

    expect(cellOf(row('/api/slow'), header, 'IP')).toBe('2001:db8::1')
    expect(cellOf(row('/api/slow'), header, 'User agent')).toBe('Mozilla/5.0 (X11; Linux x86_64)')
    expect(cellOf(row('/api/candles'), header, 'Cty')).toBe('🇺🇸 US')
    expect(cellOf(row('/api/candles'), header, 'IP')).toBe('203.0.113.7')
    expect(cellOf(row('/api/candles'), header, 'Length')).toBe('419 KiB')
    expect(cellOf(row('/api/orders'), header, 'IP')).toBe('203.0.113.7')
    expect(cellOf(row('/api/orders'), header, 'User agent')).toBe('node-test/1.0')
    expect(cellOf(row('/api/spoofed'), header, 'IP')).toBe('127.0.0.1')
    expect(cellOf(row('/api/orders'), header, 'Cty')).toBe('🇩🇪 DE')
    expect(cellOf(row('/api/spoofed'), header, 'Cty')).toBe('-')
    expect(cellOf(row('/slow'), header, 'User agent')).toBe('slow-client/2.0')
    expect(cellOf(row('/slow'), header, 'Ago')).toBe('-')
    // A fast request shows milliseconds, which `0.00s` would hide.
    expect(cellOf(row('/api/fail'), header, 'Duration')).toMatch(/^\d+(\.\d+)?ms$/)
    expect(cellOf(row('/api/fail'), header, 'Ago')).toMatch(/^\d+\.\d+s$/)
  })

  it('leaves out Cty for untrusted countries', async () => {
    // /api/spoofed sent CF-IPCOUNTRY: FR to the app without a trusted proxy.
    const result = await runCli(['recent', '--tracker-url', redis.url, '--path', '/api/spoofed'])
    expect(result.code).toBe(0)
    const [header, ...rows] = tableLines(result.stdout)
    expect(rows).toHaveLength(1)
    expect(splitCells(header)).not.toContain('Cty')

    const help = await runCli(['recent', '--help'])
    // The help wraps between words, so it is read with its lines joined.
    const helpText = help.stdout.replace(/\s+/g, ' ')
    expect(helpText).toContain('The column appears only when some request has a country to show')
    expect(helpText).toContain('requests recorded without a trusted proxy do not bring it in')
    expect(help.stdout).not.toContain('Cty only when some request has a\nCF-IPCOUNTRY header')
  })

  it('shows untagged countries as the help says', async () => {
    const countries = ['de', 'XX', 'XYZ']
    for (const country of countries) {
      const task: HttpTask = { ...completedCountryRecord(country), request_headers: [['CF-IPCOUNTRY', country]] }
      await redis.client.rpush('cty:past_tasks', JSON.stringify(task))
    }
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'cty:', '--columns', 'Cty,Path'])
    expect(result.code).toBe(0)
    const [, ...rows] = tableLines(result.stdout)
    const cells = rows.map((line) => splitCells(line))

    expect(cells).toEqual([
      ['🇩🇪 DE', '/country/de'],
      ['XX', '/country/XX'],
      ['-', '/country/XYZ'],
    ])

    const help = await runCli(['recent', '--help'])
    const helpText = help.stdout.replace(/\s+/g, ' ')
    expect(helpText).toContain(
      'Cty shows a CF-IPCOUNTRY header of two characters that starts with a letter: ' +
        "two letters as the country's flag and its code in capitals (de as DE), " +
        'others such as XX and T1 as they are, and no other value.',
    )
    expect(helpText).toContain('such as the Python tracker writes, is shown by the same rules.')
    expect(helpText).not.toContain('shows the header as it is')
  })

  it('prints plain text when stdout is not a terminal', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url])
    expect(result.stdout).not.toContain('\x1b')
  })

  it('prints only active requests with --mode active', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--mode', 'active'])
    const [header, ...rows] = tableLines(result.stdout)
    expect(rows.map((row) => cellOf(row, header, 'Path'))).toEqual(['/api/slow', '/slow'])
  })

  it('prints only completed requests with --mode complete', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--mode', 'complete'])
    const [header, ...rows] = tableLines(result.stdout)
    expect(rows.map((row) => cellOf(row, header, 'Path'))).toEqual([
      '/api/spoofed',
      '/old-home',
      '/api/fail',
      '/api/orders',
      '/no-status',
      '/api/candles',
    ])
  })

  it('prints at most --limit rows', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--limit', '3'])
    const [header, ...rows] = tableLines(result.stdout)
    expect(rows.map((row) => cellOf(row, header, 'Path'))).toEqual(['/api/slow', '/slow', '/api/spoofed'])
  })

  it('prints the columns of --columns in that order', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--columns', 'resp, path,Worker', '--limit', '4'],
    )
    expect(result.code).toBe(0)
    expect(tableLines(result.stdout)).toEqual([
      expect.stringMatching(/^Resp {2}Path +Worker$/),
      expect.stringMatching(/^ {3}- {2}\/api\/slow +7508:MainThread$/),
      expect.stringMatching(/^ {3}- {2}\/slow +\S+/),
      expect.stringMatching(/^ 200 {2}\/api\/spoofed +\S+/),
      expect.stringMatching(/^ 302 {2}\/old-home +\S+/),
    ])
  })

  it('reads its settings from the environment', async () => {
    const result = await runCli(['recent'], {
      env: {
        TOP_TRACKER_URL: redis.url,
        TOP_RECENT_MODE: 'complete',
        TOP_RECENT_LIMIT: '2',
        TOP_RECENT_COLUMNS: 'Path,Resp',
      },
    })
    expect(result.code).toBe(0)
    expect(tableLines(result.stdout).map(splitCells)).toEqual([
      ['Path', 'Resp'],
      ['/api/spoofed', '200'],
      ['/old-home', '302'],
    ])
  })

  it('prints the records as JSON with --json', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json'])
    expect(result.code).toBe(0)

    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records.map((record) => record.path)).toEqual([
      '/api/slow',
      '/slow',
      '/api/spoofed',
      '/old-home',
      '/api/fail',
      '/api/orders',
      '/no-status',
      '/api/candles',
    ])
    expect(records[0]?.task_id).toBe('req-7')
    expect(records[0]?.client_ip_address).toBe('2001:db8::1')
    expect(records[0]?.ended_at).toBeNull()
    expect(records[5]?.status_code).toBe(201)
    expect(records[5]?.params).toEqual({ page: '2' })
    expect(records[7]?.task_id).toBe(140538974609616)
    expect(records[7]?.request_headers).toContainEqual(['CF-IPCOUNTRY', 'US'])
  })

  it('applies --mode and --limit to --json', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--json', '--mode', 'complete', '--limit', '1'],
    )
    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records.map((record) => record.path)).toEqual(['/api/spoofed'])
  })

  it('prints one record per line with --ndjson', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--ndjson', '--mode', 'complete'])
    expect(result.code).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    const records = lines.map((line) => JSON.parse(line) as HttpTask)
    expect(records.map((record) => record.path)).toEqual([
      '/api/spoofed',
      '/old-home',
      '/api/fail',
      '/api/orders',
      '/no-status',
      '/api/candles',
    ])
  })

  it.each([
    [['--status', '5xx'], ['/api/fail']],
    [['--status', '200,302'], ['/api/spoofed', '/old-home', '/api/candles']],
    [['--status', '200-299'], ['/api/spoofed', '/api/orders', '/api/candles']],
    [['--path', '/api/*'], ['/api/slow', '/api/spoofed', '/api/fail', '/api/orders', '/api/candles']],
    [['--path', 'slow'], ['/api/slow', '/slow']],
    [['--method', 'post'], ['/api/slow', '/api/orders']],
    [['--method', 'POST', '--status', '2xx'], ['/api/orders']],
  ])('filters with %j', async (filter, paths) => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json', ...filter])
    expect(result.stderr).toBe('')
    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records.map((record) => record.path)).toEqual(paths)
  })

  it('filters by duration and applies --limit after the filter', async () => {
    const all = JSON.parse((await runCli(['recent', '--tracker-url', redis.url, '--json'])).stdout) as HttpTask[]
    const slowActive = await runCli(['recent', '--tracker-url', redis.url, '--json', '--min-duration', '100000d'])
    expect(slowActive.code).toBe(2)
    expect(slowActive.stderr).toContain('Expected a duration such as 250')

    const longRunning = await runCli(
      ['recent', '--tracker-url', redis.url, '--json', '--min-duration', '0.2s', '--limit', '1'],
    )
    const records = JSON.parse(longRunning.stdout) as HttpTask[]
    expect(records).toHaveLength(1)
    expect(all.length).toBeGreaterThan(1)
  })

  it('rejects an invalid --status with exit code 2', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--status', '0xx'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Invalid status "0xx": expected a code (404), a class (5xx) or a range (400-499).')
  })

  it.each([
    ['099', 'Invalid status "099": status codes are from 100 to 999.', '099'],
    ['a range past 999', 'Invalid status "100-1000": expected a code (404)', '100-1000'],
    ['a range from 99', 'Invalid status "099-200": status codes are from 100 to 999.', '099-200'],
    ['a reversed range', 'Invalid status range "499-400": its first code is greater than its last.', '499-400'],
  ])('rejects --status with %s', async (_case, message, status) => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--status', status])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  })

  it.each([['999'], ['9xx'], ['600-999'], ['100-999']])('takes codes up to 999 in --status %s', async (status) => {
    await redis.client.lpush('odd:past_tasks', JSON.stringify({ task_id: 'odd', path: '/odd', status_code: 999 }))
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'odd:', '--json', '--status', status])
    await redis.client.del('odd:past_tasks')

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path)).toEqual(['/odd'])
  })

  it('reads keys under --prefix', async () => {
    const writer = new RedisTracker({ url: redis.url, keyPrefix: 'shop:' })
    writer.recordEnd('shop-1', JSON.stringify(completedRecord('/shop/cart', 204)))
    await writer.flush()
    await writer.close()

    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'shop:', '--columns', 'Path,Resp'],
    )
    expect(tableLines(result.stdout).map(splitCells)).toEqual([
      ['Path', 'Resp'],
      ['/shop/cart', '204'],
    ])

    const fromEnv = await runCli(['recent', '--columns', 'Path'], {
      env: { TOP_TRACKER_URL: redis.url, TOP_TRACKER_PREFIX: 'shop:' },
    })
    expect(tableLines(fromEnv.stdout)).toEqual(['Path', '/shop/cart'])
  })

  it('accepts tracker options before the command', async () => {
    const result = await runCli(
      ['--tracker-url', redis.url, '--prefix', 'shop:', 'recent', '--columns', 'Path'],
    )
    expect(result.code).toBe(0)
    expect(tableLines(result.stdout)).toEqual(['Path', '/shop/cart'])

    const overridden = await runCli(['--prefix', 'shop:', 'recent', '--prefix', '', '--columns', 'Path'], {
      env: { TOP_TRACKER_URL: redis.url },
    })
    expect(tableLines(overridden.stdout)).toContain('/api/candles')
  })

  it('rejects an unknown column with exit code 2', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path,Colour'])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('Unknown column "Colour"')
    expect(result.stderr).toContain(
      'Valid columns: Cty, IP, Host, Process, Worker, Method, Route, Path, Duration, Ago, Resp, ' +
        'Status text, Length, Tags, User agent',
    )
  })

  it('rejects an unknown column from the environment with exit code 2', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url],
      { env: { TOP_RECENT_COLUMNS: 'Nope' } },
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("from env 'TOP_RECENT_COLUMNS'")
  })

  it('rejects an invalid --mode and --limit with exit code 2', async () => {
    const mode = await runCli(['recent', '--tracker-url', redis.url, '--mode', 'finished'])
    expect(mode.code).toBe(2)
    expect(mode.stderr).toContain('all, active, complete')

    const limit = await runCli(['recent', '--tracker-url', redis.url, '--limit', '0'])
    expect(limit.code).toBe(2)
    expect(limit.stderr).toContain('whole number from 1 to 9007199254740991')
  })
})

describe('version and help', () => {
  const packageVersion = (JSON.parse(readFileSync(resolve(__dirname, '../package.json'), 'utf8')) as { version: string })
    .version

  it('prints the package version', async () => {
    for (const args of [['version'], ['--version']]) {
      const result = await runCli(args)
      expect(result.code).toBe(0)
      expect(result.stdout).toBe(`${packageVersion}\n`)
    }
  })

  it('prints help for every command', async () => {
    for (const command of ['recent', 'live', 'tail', 'check', 'clear', 'prune', 'version']) {
      const result = await runCli([command, '--help'])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain(`Usage: web-top-cli ${command}`)
    }
    const live = await runCli(['live', '--help'])
    expect(live.stdout).toContain('--tracker-url <url>')
    expect(live.stdout).toContain('--prefix <prefix>')
    expect(live.stdout).toContain('not a terminal')
    expect(live.stdout).toContain('--api-key <key>')
    expect(live.stdout).toContain('--window <seconds>')
    expect(live.stdout).toContain('--stall-after <seconds>')

    const program = await runCli(['--help'])
    for (const scheme of ['redis://', 'rediss://', 'redis+cluster://', 'http://', 'TOP_WEB_API_KEY', 'memory://']) {
      expect(program.stdout).toContain(scheme)
    }
  })

  it('rejects memory:// and explains why', async () => {
    const result = await runCli(['recent', '--tracker-url', 'memory://'])
    expect(result.code).toBe(2)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain("memory:// is the tracker inside one app's process")
    expect(result.stderr).toContain('http://host:port/web-top')
  })
})

/** Returns the non-empty lines of the output. */
function tableLines(output: string): string[] {
  return output.split('\n').filter((line) => line.trim() !== '')
}

/** Splits a line into cells separated by two or more spaces. */
function splitCells(line: string | undefined): string[] {
  return (line ?? '').trim().split(/ {2,}/)
}

/** Returns the cell of a row under a header name. Cells never hold two spaces in a row, and a missing value shows as `-`. */
function cellOf(row: string, header: string | undefined, name: string): string {
  return splitCells(row)[splitCells(header).indexOf(name)] ?? ''
}

async function seedPythonFixture(target: TestRedis): Promise<void> {
  const fixture = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as PythonFixture
  for (const [processorId, task] of Object.entries(fixture.processors)) {
    await target.client.hset('processors', processorId, JSON.stringify(task))
  }
  for (const task of fixture.past_tasks) await target.client.rpush('past_tasks', JSON.stringify(task))
  await target.client.set('last_cleared_at', fixture.last_cleared_at)
}

async function startExpressApp(trackerUrl: string, trustProxy: boolean, gate: Promise<void>): Promise<RunningApp> {
  const app = express()
  const middleware = topMiddleware({ trackerUrl, trustProxy })
  app.use(middleware)
  app.post('/api/orders', (_req, res) => {
    res.status(201).json({ id: 1 })
  })
  app.get('/api/fail', (_req, res) => {
    res.status(500).send('failed')
  })
  app.get('/old-home', (_req, res) => {
    res.redirect(302, '/')
  })
  app.get('/api/spoofed', (_req, res) => {
    res.send('ok')
  })
  app.get('/slow', async (_req, res) => {
    await gate
    res.send('done')
  })

  const server = await new Promise<Server>((resolveListen) => {
    const listening = app.listen(0, '127.0.0.1', () => resolveListen(listening))
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { url: `http://127.0.0.1:${port}`, middleware, server }
}

async function fetchOk(url: string, init: RequestInit): Promise<void> {
  const response = await fetch(url, init)
  await response.arrayBuffer()
}

async function waitForRedis(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the records in Redis')
    await new Promise((resolveWait) => setTimeout(resolveWait, 20))
  }
}

function completedRecord(path: string, status: number): HttpTask {
  const now = new Date().toISOString()
  return {
    task_id: `test-${path}`,
    started_at: now,
    ended_at: now,
    recorded_successfully: true,
    method: 'GET',
    path,
    status_code: status,
  }
}

/** Returns a completed record of `/country/<country>` without the web_top.client_ip_source tag. */
function completedCountryRecord(country: string): HttpTask {
  const endedMs = Date.now() - 1_000
  return {
    task_id: `country-${country}`,
    host_name: 'web-1',
    process_id: 4242,
    method: 'GET',
    path: `/country/${country}`,
    started_at: new Date(endedMs - 20).toISOString(),
    ended_at: new Date(endedMs).toISOString(),
    recorded_successfully: true,
    status_code: 200,
  }
}
