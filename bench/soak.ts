/**
 * Soak test: one million requests through an Express 5 app that records
 * every request to Redis, watching the server's memory for growth.
 *
 * Usage: npx tsx bench/soak.ts [--requests 1000000] [--max-minutes 15] [--sample-seconds 5]
 *
 * The server runs in a child on core 0 with `--expose-gc`; autocannon
 * (50 connections, the benchmark's browser headers) and a private
 * redis-server share core 1. Every few seconds the server runs a full GC
 * and reports `heapUsed` and RSS. Samples taken while the first 10 % of
 * the requests ran are warm-up and left out of the verdict.
 *
 * Verdict rule: memory does not grow when the median of the last quarter
 * of the samples after warm-up exceeds the median of their second quarter
 * by at most 10 % or 2 MiB, whichever is larger, for post-GC heapUsed and
 * for Redis's `used_memory`. For RSS the bound is 15 % or 16 MiB. The run
 * also checks that the tracker dropped nothing and left no active entry
 * behind.
 *
 * Writes bench/results/soak-<date>.md.
 */
import autocannon from 'autocannon'
import express from 'express'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_DIR, nextMessage, spawnPinnedNode } from './lib/children'
import { BROWSER_HEADERS } from './lib/headers'
import { pinSelf, readMachineFacts, type MachineFacts } from './lib/machine'
import { CONNECTIONS, LOAD_CORE, SERVER_CORE } from './lib/measure'
import { startRedis, type BenchRedis } from './lib/redis'
import { median } from './lib/stats'
import { topMiddleware } from '../src/index'

const MIB = 1024 * 1024
const WARM_UP_SHARE = 0.1
const HEAP_GROWTH = { share: 0.1, bytes: 2 * MIB }
const RSS_GROWTH = { share: 0.15, bytes: 16 * MIB }

/** Memory and counters that the server child reports after a forced GC. */
interface MemorySample {
  seconds: number
  handled: number
  heapUsed: number
  rss: number
  redisUsedMemory: number
}

interface ServerReport {
  type: 'memory'
  handled: number
  heapUsed: number
  rss: number
  tracker: { written: number; dropped: number; pendingBytes: number }
}

type ServerCommand = { type: 'memory' } | { type: 'close' }

/** The parts of autocannon's result that the report uses. */
interface LoadResult {
  errors: number
  non2xx: number
  requests: { average: number }
}

interface Settings {
  requests: number
  maxMinutes: number
  sampleSeconds: number
}

/** Least-squares slope of post-GC heapUsed against requests handled, in bytes per 1000 requests. */
function heapSlope(samples: MemorySample[]): number {
  if (samples.length < 2) return Number.NaN
  const meanX = samples.reduce((sum, sample) => sum + sample.handled, 0) / samples.length
  const meanY = samples.reduce((sum, sample) => sum + sample.heapUsed, 0) / samples.length
  let covariance = 0
  let variance = 0
  for (const sample of samples) {
    covariance += (sample.handled - meanX) * (sample.heapUsed - meanY)
    variance += (sample.handled - meanX) ** 2
  }
  return variance === 0 ? Number.NaN : (covariance / variance) * 1000
}

interface GrowthCheck {
  name: string
  secondQuarter: number
  lastQuarter: number
  limit: number
  ok: boolean
}

if (process.argv.includes('--serve')) {
  void serve()
} else {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}

async function main(): Promise<void> {
  const settings = readSettings()
  const machine = readMachineFacts(join(BENCH_DIR, '..'))
  pinSelf(LOAD_CORE)
  const redis = await startRedis(LOAD_CORE)

  try {
    const result = await soak(redis, settings)
    const report = renderReport(result, settings, machine)
    const file = join(BENCH_DIR, 'results', `soak-${new Date().toISOString().slice(0, 10)}.md`)
    writeFileSync(file, report)
    console.log(`\n${report}\nwritten to ${file}`)
  } finally {
    await redis.close()
  }
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '1000000' },
      'max-minutes': { type: 'string', default: '15' },
      'sample-seconds': { type: 'string', default: '5' },
    },
  })
  return {
    requests: readPositive('--requests', values.requests),
    maxMinutes: readPositive('--max-minutes', values['max-minutes']),
    sampleSeconds: readPositive('--sample-seconds', values['sample-seconds']),
  }
}

function readPositive(name: string, text: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`invalid ${name} ${JSON.stringify(text)}: use a whole number of at least 1`)
  }
  return value
}

interface SoakResult {
  samples: MemorySample[]
  warmUpSamples: number
  seconds: number
  requestsPerSecond: number
  errors: number
  non2xx: number
  final: ServerReport
  activeEntries: number
  pastTasks: number
  checks: GrowthCheck[]
}

async function soak(redis: BenchRedis, settings: Settings): Promise<SoakResult> {
  const child = spawnPinnedNode(SERVER_CORE, __filename, ['--serve', redis.url], ['--expose-gc'])
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const ready = await nextMessage(child, isMessage<{ type: 'ready'; port: number }>('ready'), 30_000, 'soak server start')
  const readMemory = async (): Promise<ServerReport> => {
    const answer = nextMessage(child, isMessage<ServerReport>('memory'), 30_000, 'soak server memory')
    child.send({ type: 'memory' } satisfies ServerCommand)
    return answer
  }

  const samples: MemorySample[] = []
  const startedAt = Date.now()
  const takeSample = async () => {
    const report = await readMemory()
    const info = await redis.client.info('memory')
    samples.push({
      seconds: (Date.now() - startedAt) / 1000,
      handled: report.handled,
      heapUsed: report.heapUsed,
      rss: report.rss,
      redisUsedMemory: Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN),
    })
  }

  try {
    const load = runLoad(ready.port, settings)
    const sampler = setInterval(() => void takeSample(), settings.sampleSeconds * 1000)
    const loadResult = await load
    clearInterval(sampler)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await takeSample()

    const final = await readMemory()
    const warmUpSamples = samples.filter((sample) => sample.handled < settings.requests * WARM_UP_SHARE).length
    return {
      samples,
      warmUpSamples,
      seconds: (Date.now() - startedAt) / 1000,
      requestsPerSecond: loadResult.requests.average,
      errors: loadResult.errors,
      non2xx: loadResult.non2xx,
      final,
      activeEntries: await redis.client.hlen('processors'),
      pastTasks: await redis.client.llen('past_tasks'),
      checks: checkGrowth(samples.slice(warmUpSamples)),
    }
  } finally {
    child.send({ type: 'close' } satisfies ServerCommand)
    await exited
  }
}

/** Sends `settings.requests` requests, or as many as fit in `settings.maxMinutes`. */
function runLoad(port: number, settings: Settings): Promise<LoadResult> {
  // `amount` (a total of requests) is an autocannon 9 option that bench/autocannon.d.ts leaves out.
  const options = {
    url: `http://127.0.0.1:${port}/`,
    connections: CONNECTIONS,
    amount: settings.requests,
    duration: settings.maxMinutes * 60,
    headers: { ...BROWSER_HEADERS },
  }
  return new Promise((resolve, reject) => {
    // With `amount` set, autocannon ignores `duration`, so a timer bounds the run.
    const timer = setTimeout(() => instance.stop(), settings.maxMinutes * 60_000)
    const instance = autocannon(options, (err, result) => {
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(result)
    }) as ReturnType<typeof autocannon> & { stop(): void }
  })
}

/** Applies the verdict rule of the file header to the samples after warm-up. */
function checkGrowth(samples: MemorySample[]): GrowthCheck[] {
  const quarter = Math.floor(samples.length / 4)
  const compare = (name: string, read: (sample: MemorySample) => number, bound: typeof HEAP_GROWTH) => {
    const secondQuarter = median(samples.slice(quarter, 2 * quarter).map(read))
    const lastQuarter = median(samples.slice(samples.length - quarter).map(read))
    const limit = secondQuarter + Math.max(bound.bytes, secondQuarter * bound.share)
    return { name, secondQuarter, lastQuarter, limit, ok: quarter > 0 && lastQuarter <= limit }
  }
  return [
    compare('server heapUsed after GC', (sample) => sample.heapUsed, HEAP_GROWTH),
    compare('server RSS', (sample) => sample.rss, RSS_GROWTH),
    compare('Redis used_memory', (sample) => sample.redisUsedMemory, HEAP_GROWTH),
  ]
}

function renderReport(result: SoakResult, settings: Settings, machine: MachineFacts): string {
  const { final } = result
  const trackerOk = final.tracker.dropped === 0 && result.activeEntries === 0
  const memoryOk = result.checks.every((check) => check.ok)
  const requestsOk = final.handled >= settings.requests && result.errors === 0 && result.non2xx === 0
  const verdict = memoryOk && trackerOk && requestsOk ? 'PASS' : 'FAIL'

  const lines = [
    `# web-top soak test, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `- machine: ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.nodeVersion}, web-top at ${machine.commit}`,
    `- Express 5, \`topMiddleware({ trackerUrl })\` to a private redis-server; server on core ${SERVER_CORE} with \`--expose-gc\`, autocannon (${CONNECTIONS} connections) and Redis on core ${LOAD_CORE}`,
    `- command: \`npx tsx bench/soak.ts --requests ${settings.requests}\``,
    `- ${final.handled} requests in ${result.seconds.toFixed(0)} s (${result.requestsPerSecond.toFixed(0)} req/s on average), ${result.errors} errors, ${result.non2xx} non-2xx`,
    `- tracker: ${final.tracker.written} records written, ${final.tracker.dropped} dropped; afterwards ${result.activeEntries} entries in processors, ${result.pastTasks} in past_tasks`,
    '',
    `Verdict: **${verdict}**. Rule: after warm-up (the first ${WARM_UP_SHARE * 100} % of the requests, ${result.warmUpSamples} samples), ` +
      `the median of the last quarter of the samples may exceed the median of their second quarter by at most ` +
      `${HEAP_GROWTH.share * 100} % or ${HEAP_GROWTH.bytes / MIB} MiB for heapUsed after a forced GC and for Redis used_memory, ` +
      `and by at most ${RSS_GROWTH.share * 100} % or ${RSS_GROWTH.bytes / MIB} MiB for RSS. The tracker must drop nothing and leave no active entry.`,
    '',
    `For information, not part of the verdict: the least-squares slope of heapUsed after GC over the samples after warm-up is ` +
      `${heapSlope(result.samples.slice(result.warmUpSamples)).toFixed(1)} bytes per 1000 requests.`,
    '',
    '| measure | second quarter (MiB) | last quarter (MiB) | limit (MiB) | ok |',
    '| --- | ---: | ---: | ---: | --- |',
    ...result.checks.map(
      (check) =>
        `| ${check.name} | ${toMib(check.secondQuarter)} | ${toMib(check.lastQuarter)} | ${toMib(check.limit)} | ${check.ok ? 'yes' : 'no'} |`,
    ),
    '',
    `Samples every ${settings.sampleSeconds} s:`,
    '',
    '| s | requests | heapUsed after GC (MiB) | RSS (MiB) | Redis used_memory (MiB) |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...result.samples.map(
      (sample, index) =>
        `| ${sample.seconds.toFixed(0)}${index < result.warmUpSamples ? ' (warm-up)' : ''} | ${sample.handled} | ` +
        `${toMib(sample.heapUsed)} | ${toMib(sample.rss)} | ${toMib(sample.redisUsedMemory)} |`,
    ),
    '',
  ]
  return lines.join('\n')
}

function toMib(bytes: number): string {
  return (bytes / MIB).toFixed(1)
}

function isMessage<T extends { type: string }>(type: T['type']) {
  return (message: unknown): message is T =>
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
}

/** Runs the server child: an Express 5 app that records every request to the Redis at argv's URL. */
async function serve(): Promise<void> {
  const redisUrl = process.argv[process.argv.indexOf('--serve') + 1]
  const gc = (globalThis as { gc?: () => void }).gc
  if (redisUrl === undefined || gc === undefined || process.send === undefined) {
    throw new Error('soak server: start it through bench/soak.ts, which passes the Redis URL, --expose-gc and IPC')
  }

  let handled = 0
  const middleware = topMiddleware({ trackerUrl: redisUrl, handleSignals: false })
  const app = express()
  app.use(middleware)
  app.get('/', (_req, res) => {
    handled++
    res.json({ hello: 'world' })
  })
  const server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

  process.on('message', (command: ServerCommand) => {
    if (command.type === 'memory') {
      gc()
      const { heapUsed, rss } = process.memoryUsage()
      const tracker = middleware.recorder.tracker.stats()
      process.send?.({ type: 'memory', handled, heapUsed, rss, tracker } satisfies ServerReport)
      return
    }
    server.closeAllConnections()
    server.close(() => void middleware.close().then(() => process.exit(0)))
  })
  process.on('disconnect', () => process.exit(1))
  const address = server.address()
  process.send({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 })
}
