/**
 * 20,000 requests against an app whose Redis is paused (`CLIENT PAUSE
 * WRITE`). The app runs in a child process, so that its heap and RSS are
 * its own. During the pause the heap may grow by at most 3 ×
 * `maxPendingBytes`, which covers the records queued, the same records
 * held by ioredis as commands in flight, and their encoded copy. 16 MiB of
 * slack covers the requests in flight and V8's own growth. With the budget
 * lifted to 1 GiB the heap grew by about 42 MiB in this test, which fails.
 *
 * Prints its report and writes it to bench/results/tmp/paused-redis-<date>.md,
 * which git ignores, so that a test run leaves the checkout clean. Copy it
 * to bench/results/ to keep it.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppProcess, type AppProcess, type AppStats } from './helpers/app-process'
import { waitFor } from './helpers/http'
import { percentile, runLoad } from './helpers/load'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

const REQUESTS = 20_000
const WARM_UP_REQUESTS = 2_000
const CONCURRENCY = 16
const MAX_PENDING_BYTES = 2 * 1024 * 1024
const HEAP_SLACK_BYTES = 16 * 1024 * 1024
const MAX_HEAP_GROWTH_BYTES = 3 * MAX_PENDING_BYTES + HEAP_SLACK_BYTES
const SAMPLE_INTERVAL_MS = 250

const MIB = 1024 * 1024

let redis: TestRedis
let app: AppProcess | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  app?.kill('SIGKILL')
  await redis.client.client('UNPAUSE').catch(() => undefined)
  await redis.close()
})

describe('paused Redis under load', () => {
  it('bounds memory and drains after the pause', { timeout: 120_000 }, async () => {
    app = await startAppProcess({
      framework: 'express5',
      topOptions: { trackerUrl: redis.url, maxPendingBytes: MAX_PENDING_BYTES, handleSignals: false },
    })
    const running = app
    const url = `${running.url}/ok`

    const warmUp = await runLoad(url, {
      count: WARM_UP_REQUESTS,
      concurrency: CONCURRENCY,
      expectedBody: 'ok',
    })
    expect(warmUp.errors).toEqual([])
    await waitForDrained(running, 5_000)
    const before = await running.stats()

    await redis.client.client('PAUSE', 120_000, 'WRITE')
    const samples: AppStats[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        samples.push(await running.stats())
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS))
      }
    })()
    const loadStartedAt = Date.now()
    const load = await runLoad(url, { count: REQUESTS, concurrency: CONCURRENCY, expectedBody: 'ok' })
    const loadMs = Date.now() - loadStartedAt
    sampling = false
    await sampler
    const endOfPause = await running.stats()
    samples.push(endOfPause)

    await redis.client.client('UNPAUSE')
    const drainStartedAt = Date.now()
    await waitForDrained(running, 30_000)
    const stored = await waitFor('empty processors', async () => {
      const current = await readStoredTasks(redis.client)
      return Object.keys(current.processors).length === 0 ? current : undefined
    })
    const drainMs = Date.now() - drainStartedAt
    const after = await running.stats()

    const peakHeap = Math.max(...samples.map((sample) => sample.heapUsedBytes))
    const peakRss = Math.max(...samples.map((sample) => sample.rssBytes))
    const peakPending = Math.max(...samples.map((sample) => sample.tracker.pendingBytes))
    const report = formatReport({
      before,
      samples,
      endOfPause,
      after,
      peakHeap,
      peakRss,
      peakPending,
      loadMs,
      drainMs,
      latenciesMs: load.latenciesMs,
      droppedDuringPause: endOfPause.tracker.dropped - before.tracker.dropped,
    })
    writeReport(report)
    console.log(report)

    expect(load.errors).toEqual([])
    expect(load.unexpected).toEqual([])
    expect(load.latenciesMs).toHaveLength(REQUESTS)
    expect(peakPending).toBeLessThanOrEqual(MAX_PENDING_BYTES)
    expect(endOfPause.tracker.dropped - before.tracker.dropped).toBeGreaterThan(REQUESTS)
    expect(peakHeap - before.heapUsedBytes).toBeLessThan(MAX_HEAP_GROWTH_BYTES)
    expect(after.tracker.pendingBytes).toBe(0)
    expect(stored.processors).toEqual({})
    expect(stored.pastTasks[0]?.path).toBe('/ok')
  })
})

/** Waits until the app's tracker has no record left to write. */
async function waitForDrained(target: AppProcess, timeoutMs: number): Promise<void> {
  await waitFor(
    'no pending bytes',
    async () => ((await target.stats()).tracker.pendingBytes === 0 ? true : undefined),
    timeoutMs,
  )
}

interface ReportData {
  before: AppStats
  samples: AppStats[]
  endOfPause: AppStats
  after: AppStats
  peakHeap: number
  peakRss: number
  peakPending: number
  loadMs: number
  drainMs: number
  latenciesMs: number[]
  droppedDuringPause: number
}

function formatReport(data: ReportData): string {
  const mib = (bytes: number) => (bytes / MIB).toFixed(1)
  const row = (label: string, stats: Pick<AppStats, 'heapUsedBytes' | 'rssBytes'> & { pending: number }) =>
    `| ${label} | ${mib(stats.heapUsedBytes)} | ${mib(stats.rssBytes)} | ${mib(stats.pending)} |`
  const requestsPerSecond = Math.round((REQUESTS / data.loadMs) * 1000)

  return [
    `# web-top with Redis paused under load, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `- machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ` +
      `Node ${process.version}, ${redisVersion()}`,
    '- app: Express 5 with topMiddleware in a child process, ' +
      `\`maxPendingBytes\` ${mib(MAX_PENDING_BYTES)} MiB`,
    `- load: ${WARM_UP_REQUESTS} warm-up requests with Redis up, then \`CLIENT PAUSE 120000 WRITE\` and ` +
      `${REQUESTS} GET requests, ${CONCURRENCY} in flight on keep-alive connections from the test process`,
    '- memory: `process.memoryUsage()` in the app right after `global.gc()`, sampled every ' +
      `${SAMPLE_INTERVAL_MS} ms during the load (${data.samples.length} samples)`,
    '- command: `npx vitest run test/paused-redis-load.test.ts`',
    '',
    '| moment | heap used MiB | RSS MiB | pending MiB |',
    '| --- | ---: | ---: | ---: |',
    row('before the pause', { ...data.before, pending: data.before.tracker.pendingBytes }),
    row('peak during the pause', {
      heapUsedBytes: data.peakHeap,
      rssBytes: data.peakRss,
      pending: data.peakPending,
    }),
    row('end of the pause', { ...data.endOfPause, pending: data.endOfPause.tracker.pendingBytes }),
    row('after draining', { ...data.after, pending: data.after.tracker.pendingBytes }),
    '',
    `- heap growth during the pause: ${mib(data.peakHeap - data.before.heapUsedBytes)} MiB ` +
      `(bound: 3 × maxPendingBytes + ${mib(HEAP_SLACK_BYTES)} MiB = ${mib(MAX_HEAP_GROWTH_BYTES)} MiB)`,
    `- records dropped during the pause: ${data.droppedDuringPause} ` +
      `(${REQUESTS} requests make ${2 * REQUESTS} records); written after it: ` +
      `${data.after.tracker.written - data.endOfPause.tracker.written}`,
    `- load: ${(data.loadMs / 1000).toFixed(1)} s, ${requestsPerSecond} requests/s, ` +
      `latency p50 ${percentile(data.latenciesMs, 50).toFixed(2)} ms, ` +
      `p99 ${percentile(data.latenciesMs, 99).toFixed(2)} ms`,
    '- drain after `CLIENT UNPAUSE`: pending bytes back to 0 and processors empty ' +
      `within ${data.drainMs} ms`,
    '',
  ].join('\n')
}

function redisVersion(): string {
  try {
    const output = execFileSync('redis-server', ['--version'], { encoding: 'utf8' })
    return output.split(' ').slice(0, 3).join(' ')
  } catch {
    return 'redis-server version unknown'
  }
}

function writeReport(report: string): void {
  const folder = join(__dirname, '..', 'bench', 'results', 'tmp')
  mkdirSync(folder, { recursive: true })
  writeFileSync(join(folder, `paused-redis-${new Date().toISOString().slice(0, 10)}.md`), report)
}
