/**
 * The live view of the Express example app under the traffic generator, in
 * tmux: the figures in the header must match what the generator counted
 * and measured on its side. With UPDATE_LIVE_SCREEN=1 the test also saves
 * the screen under load to docs/live-screen.txt.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TrafficSummary } from '../examples/traffic-generator'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { runTraffic, startExample, type ExampleProcess } from './helpers/example-process'
import { hasTmux, quoteForShell, TmuxSession } from './helpers/pty'
import { findFreePort, startRedis, type TestRedis } from './helpers/redis-server'

const REQUESTS = 200
const SCREEN_PATH = resolve(__dirname, '../docs/live-screen.txt')

/**
 * The client's durations add the network and its own event-loop delay,
 * which a loaded machine stretches, and the view's percentiles are exact to
 * 0.5 %, so they may differ by 100 ms or 5 %, whichever is more.
 */
function expectCloseDuration(shown: number, measured: number, name: string): void {
  const tolerance = Math.max(100, measured * 0.05)
  expect(Math.abs(shown - measured), `${name}: shown ${shown} ms, measured ${measured} ms`).toBeLessThanOrEqual(
    tolerance,
  )
}

describe.skipIf(!hasTmux())('live under load (needs tmux)', () => {
  let redis: TestRedis
  let app: ExampleProcess
  let session: TmuxSession
  let origin: string

  beforeAll(async () => {
    redis = await startRedis()
    const port = await findFreePort()
    origin = `http://127.0.0.1:${port}`
    app = startExample('express.ts', {
      trackerUrl: redis.url,
      args: ['--port', String(port)],
      env: { TOP_MAX_COMPLETED_TASKS: '2000' },
    })
    await app.waitForLines(/listening/, 1)
    session = TmuxSession.start({ width: 150, height: 46, unset: CLI_VARIABLES })
  })

  afterAll(async () => {
    session?.kill()
    await app?.stop()
    await redis?.close()
  })

  it('shows header figures that match the traffic generator', async () => {
    const command =
      `node ${quoteForShell(CLI_PATH)} live --tracker-url ${redis.url} --window 60 ` +
      '--slow-after 1 --stall-after 2.5'
    session.type(command, true)
    await session.waitForScreen((text) => text.includes('q quit'), 10_000, 'the live view')

    // With a fifth of the requests to GET /slow (0.5 s to 3 s), p50 is a fast
    // request and p95 and p99 are slow ones, away from the border between them.
    const traffic = runTraffic([
      '--url',
      origin,
      '--requests',
      String(REQUESTS),
      '--concurrency',
      '20',
      '--slow-share',
      '0.2',
    ])
    const underLoad = await captureUnderLoad(session)
    if (process.env.UPDATE_LIVE_SCREEN === '1') {
      mkdirSync(resolve(SCREEN_PATH, '..'), { recursive: true })
      writeFileSync(SCREEN_PATH, underLoad)
    }
    const summary = await traffic
    expect(summary.errors).toEqual([])

    const screen = await session.waitForScreen(
      (text) => new RegExp(`\\(${REQUESTS} in (the last 60s|\\d+s; window 60s)\\)`).test(text) && /Active 0 /.test(text),
      10_000,
      `${REQUESTS} completed requests in the header`,
    )
    const header = parseHeader(screen)
    const counted = countByClass(summary)

    expect(header.hosts).toBe(1)
    expect(header.processes).toBe(1)
    expect(header.count).toBe(REQUESTS)
    expect(header.statusMix).toEqual(counted)
    // Shares are shown with one decimal.
    expect(Math.abs(header.serverErrorShare - (100 * counted['5xx']) / REQUESTS)).toBeLessThanOrEqual(0.051)
    expect(Math.abs(header.clientErrorShare - (100 * counted['4xx']) / REQUESTS)).toBeLessThanOrEqual(0.051)
    // The rate is the count over the part of the window the view has covered.
    // That part is shown in whole seconds, so it lies within half a second of
    // the figure, and the traffic may take only a few seconds.
    expect(header.ratePerSecond * (header.coveredSeconds + 0.5)).toBeGreaterThan(REQUESTS * 0.98)
    expect(header.ratePerSecond * Math.max(header.coveredSeconds - 0.5, 0)).toBeLessThan(REQUESTS * 1.02)

    const measured = percentiles(summary.durationsMs)
    expectCloseDuration(header.p50Ms, measured.p50, 'p50')
    expectCloseDuration(header.p95Ms, measured.p95, 'p95')
    expectCloseDuration(header.p99Ms, measured.p99, 'p99')
  })

  it('shows every route on the route board', async () => {
    session.sendKeys('t')
    const screen = await session.waitForScreen((text) => text.includes('Routes in the last 60s'), 15_000, 'routes')
    const rows = screen
      .split('\n')
      .map((line) => /^(\S.*?) {2,}(\d+) +(\d+\.\d\d) +\S+ +\S+ +\S+ +\S+ +\S+ +(\d+)$/.exec(line))
      .filter((match): match is RegExpExecArray => match !== null)
    const counts = new Map(rows.map((match) => [match[1] as string, Number(match[4])]))
    const total = [...counts.values()].reduce((sum, count) => sum + count, 0)
    expect(total).toBe(REQUESTS)
    const slowSent = (await lastSummary).byRoute
      .filter((route) => route.path === '/slow')
      .reduce((sum, route) => sum + route.count, 0)
    expect(counts.get('/slow')).toBe(slowSent)
    session.sendKeys('q')
  })
})

let resolveLastSummary: (summary: TrafficSummary) => void = () => {}
const lastSummary = new Promise<TrafficSummary>((resolveSummary) => {
  resolveLastSummary = resolveSummary
})

/**
 * Waits until slow requests are in flight, and returns the screen without
 * trailing blanks. The screen saved for the docs waits for a stalled one too.
 */
async function captureUnderLoad(session: TmuxSession): Promise<string> {
  const marked = process.env.UPDATE_LIVE_SCREEN === '1' ? /^STALLED /m : /^(STALLED|slow) /m
  const screen = await session.waitForScreen(
    (text) => marked.test(text) && /Completed \d+\.\d+\/s \(1\d\d /.test(text),
    20_000,
    'requests in flight',
  )
  return `${screen
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .trimEnd()}\n`
}

interface Header {
  hosts: number
  processes: number
  count: number
  ratePerSecond: number
  coveredSeconds: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  serverErrorShare: number
  clientErrorShare: number
  statusMix: Record<'2xx' | '3xx' | '4xx' | '5xx', number>
}

function parseHeader(screen: string): Header {
  const seen = /Hosts (\d+) {2}Processes (\d+) {2}Active \d+ {2}Completed (\d+\.\d+)\/s \((\d+) in (?:the last 60s|(\d+)s; window 60s)\)/.exec(
    screen,
  )
  const durations = /Duration p50 (\S+) {2}p95 (\S+) {2}p99 (\S+) {2}Errors 5xx (\d+\.\d)% {2}4xx (\d+\.\d)%/.exec(screen)
  const mix = /Status 2xx (\d+) {2}3xx (\d+) {2}4xx (\d+) {2}5xx (\d+)/.exec(screen)
  if (seen === null || durations === null || mix === null) throw new Error(`No header in:\n${screen}`)
  return {
    hosts: Number(seen[1]),
    processes: Number(seen[2]),
    ratePerSecond: Number(seen[3]),
    count: Number(seen[4]),
    coveredSeconds: seen[5] === undefined ? 60 : Number(seen[5]),
    p50Ms: parseLatency(durations[1] as string),
    p95Ms: parseLatency(durations[2] as string),
    p99Ms: parseLatency(durations[3] as string),
    serverErrorShare: Number(durations[4]),
    clientErrorShare: Number(durations[5]),
    statusMix: { '2xx': Number(mix[1]), '3xx': Number(mix[2]), '4xx': Number(mix[3]), '5xx': Number(mix[4]) },
  }
}

/** Reads `1.23ms`, `420ms`, `1.23s` or `12.3s` as milliseconds. */
function parseLatency(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text)
  if (match === null) throw new Error(`Not a duration: ${text}`)
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1)
}

function countByClass(summary: TrafficSummary): Header['statusMix'] {
  resolveLastSummary(summary)
  const mix = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
  for (const [status, count] of Object.entries(summary.byStatus)) {
    const statusClass = `${status[0]}xx` as keyof typeof mix
    if (statusClass in mix) mix[statusClass] += count
  }
  return mix
}

/** Nearest-rank percentiles, as the view computes them. */
function percentiles(values: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) }
}
