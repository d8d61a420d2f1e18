/**
 * Measures what recording every request costs: Express 5 and Fastify 5
 * hello-world servers with web-top (Redis and memory trackers) and with
 * peer add-ons, against the same framework without any add-on.
 *
 * Usage: npm run bench [-- --rounds 5 --seconds 5 --warmup 3 --retry-budget 180
 *        --framework express --paced-share 0.3]
 *
 * Each server runs in its own child on core 0, autocannon and redis-server
 * on core 1. Variants are measured in interleaved rounds, and each ratio is
 * taken against the baseline of the same round. Each round measures every
 * variant at saturation, then at a fixed rate: `--paced-share` times the
 * requests/s its baseline reached in that round. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_DIR, REPO_DIR, ServerChild } from './lib/children'
import { pinSelf, readMachineFacts, waitForQuietCores } from './lib/machine'
import {
  LOAD_CORE,
  loadServer,
  measureRun,
  probeRecordSizes,
  SERVER_CORE,
  type DrainCheck,
  type RecordSizes,
  type RunSample,
} from './lib/measure'
import { PublishedRecordCounter, readRedisVersion, startRedis, type BenchRedis } from './lib/redis'
import { renderReport, summarize, type FrameworkResult } from './lib/report'
import { FRAMEWORKS, isFramework, VARIANTS, type Framework, type Variant } from './lib/variants'

/** Share of the two cores that others may use during a run before it is measured again. */
const MAX_FOREIGN_SHARE = 0.1
const MAX_ATTEMPTS = 3

/** Before a run, the busiest core may be this busy while the benchmark's own processes idle. */
const MAX_IDLE_BUSY_SHARE = 0.1
/** Maximum wait for the cores to become that quiet before a run starts anyway, in milliseconds. */
const QUIET_WAIT_MS = 20_000

interface Settings {
  rounds: number
  seconds: number
  warmupSeconds: number
  /** Seconds that waits for quiet cores and repeated runs may add to the whole benchmark. */
  retryBudgetSeconds: number
  frameworks: Framework[]
  /** Rate of the paced runs as a share of the round's baseline requests/s; 0 for none. */
  pacedShare: number
}

/** Time left for quiet waits and repeated runs, in milliseconds. Set from `--retry-budget`. */
const retryBudget = { remainingMs: 0 }

async function main(): Promise<void> {
  const settings = readSettings()
  // Read before pinning: `nproc` counts only the cores this process may use.
  const machine = readMachineFacts(REPO_DIR)
  retryBudget.remainingMs = settings.retryBudgetSeconds * 1000
  pinSelf(LOAD_CORE)
  const redis = await startRedis(LOAD_CORE)

  try {
    const results: FrameworkResult[] = []
    for (const framework of settings.frameworks) {
      results.push(await benchFramework(framework, redis, settings))
    }

    const date = new Date().toISOString().slice(0, 10)
    const redisVersion = await readRedisVersion(redis.client)
    const report = renderReport(results, { date, machine, redisVersion, ...settings })
    console.log(`\n${report}`)
    console.log(`\nwritten to ${writeReport(date, report, results)}`)
  } finally {
    await redis.close()
  }
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '3' },
      'retry-budget': { type: 'string', default: '180' },
      framework: { type: 'string', multiple: true },
      'batch-window': { type: 'string' },
      'paced-share': { type: 'string', default: '0.3' },
    },
  })
  const batchWindow = values['batch-window']
  if (batchWindow !== undefined) {
    // The servers inherit the environment (bench/server.ts reads it).
    process.env.WEB_TOP_BENCH_BATCH_WINDOW_MS = String(readWholeNumber('--batch-window', batchWindow, 0))
  }
  const frameworks = values.framework ?? [...FRAMEWORKS]
  for (const framework of frameworks) {
    if (!isFramework(framework)) {
      const allowed = FRAMEWORKS.join(' or ')
      throw new Error(`invalid --framework ${JSON.stringify(framework)}: use ${allowed}`)
    }
  }
  return {
    rounds: readWholeNumber('--rounds', values.rounds, 1),
    seconds: readWholeNumber('--seconds', values.seconds, 1),
    warmupSeconds: readWholeNumber('--warmup', values.warmup, 1),
    retryBudgetSeconds: readWholeNumber('--retry-budget', values['retry-budget'], 0),
    frameworks: frameworks as Framework[],
    pacedShare: readShare('--paced-share', values['paced-share']),
  }
}

function readShare(option: string, text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new Error(`invalid ${option} ${JSON.stringify(text)}: use a number from 0 up to, not including, 1`)
  }
  return value
}

function readWholeNumber(option: string, text: string, minimum: number): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isInteger(value) || value < minimum) {
    const expected = `a whole number of at least ${minimum}`
    throw new Error(`invalid ${option} ${JSON.stringify(text)}: use ${expected}`)
  }
  return value
}

/**
 * Starts one server per variant, warms each up, then measures them in
 * rotated order round after round, so that drift of the machine over time
 * spreads evenly over the variants.
 */
async function benchFramework(
  framework: Framework,
  redis: BenchRedis,
  settings: Settings,
): Promise<FrameworkResult> {
  await redis.client.flushall()
  const counter = await PublishedRecordCounter.subscribe(redis.port, 'task_updates')
  const servers = VARIANTS.map(
    (variant) => new ServerChild(framework, variant, redis.url, SERVER_CORE),
  )

  try {
    for (const server of servers) await server.ready()
    for (const server of servers) {
      log(`${framework}: warming up ${server.variant}`)
      await loadServer(server, settings.warmupSeconds)
    }

    const samples = new Map<Variant, RunSample[]>(VARIANTS.map((variant) => [variant, []]))
    const pacedSamples = new Map<Variant, RunSample[]>(VARIANTS.map((variant) => [variant, []]))
    const drainChecks: DrainCheck[] = []
    for (let round = 0; round < settings.rounds; round++) {
      let baselineRps = 0
      for (const server of rotate(servers, round)) {
        const drainCounter = server.variant === 'web-top-redis' ? counter : null
        const sample = await measureQuietRun(server, redis, round, settings, drainCounter)
        samples.get(server.variant)?.push(sample)
        if (sample.drain !== null) drainChecks.push(sample.drain)
        if (server.variant === 'baseline') baselineRps = sample.load.requestsPerSecond
      }
      if (settings.pacedShare === 0) continue
      const rate = Math.round(settings.pacedShare * baselineRps)
      for (const server of rotate(servers, round)) {
        const drainCounter = server.variant === 'web-top-redis' ? counter : null
        const sample = await measureQuietRun(server, redis, round, settings, drainCounter, rate)
        pacedSamples.get(server.variant)?.push(sample)
        if (sample.drain !== null) drainChecks.push(sample.drain)
      }
    }

    const redisServer = servers.find((server) => server.variant === 'web-top-redis')
    const recordSizes = redisServer === undefined ? null : await probeOrReport(redisServer, redis)
    return {
      framework,
      samples: Object.fromEntries(samples),
      summaries: summarize(framework, samples),
      paced:
        settings.pacedShare === 0
          ? null
          : {
              share: settings.pacedShare,
              samples: Object.fromEntries(pacedSamples),
              summaries: summarize(framework, pacedSamples),
            },
      drainChecks,
      recordSizes,
    }
  } finally {
    for (const server of servers) {
      await server.close().catch((err: unknown) => log(`closing a server failed: ${String(err)}`))
    }
    counter.close()
  }
}

/**
 * Waits for the cores to be quiet, then measures a run, again up to
 * `MAX_ATTEMPTS` times in all while other programs used more than
 * `MAX_FOREIGN_SHARE` of the two cores. The machine may be shared, and a
 * compiler or test run on it skews whichever variant it overlaps. Waits
 * and repeated runs draw on one time budget for the whole benchmark, so a
 * busy machine cannot stretch it without bound.
 */
async function measureQuietRun(
  server: ServerChild,
  redis: BenchRedis,
  round: number,
  settings: Settings,
  counter: PublishedRecordCounter | null,
  rate?: number,
): Promise<RunSample> {
  const pace = rate === undefined ? '' : ' (paced)'
  const name = `${server.framework} round ${round + 1}/${settings.rounds}: ${server.variant}${pace}`
  for (let attempt = 1; ; attempt++) {
    const waitStart = Date.now()
    const waitMs = Math.min(QUIET_WAIT_MS, retryBudget.remainingMs)
    const cores = [SERVER_CORE, LOAD_CORE]
    const busiest = await waitForQuietCores(cores, MAX_IDLE_BUSY_SHARE, waitMs)
    if (busiest > MAX_IDLE_BUSY_SHARE) {
      log(`${name}: a core is still ${percent(busiest)} busy before the run`)
    }
    retryBudget.remainingMs -= Date.now() - waitStart

    const runStart = Date.now()
    const sample = await measureRun(server, redis, round, settings.seconds, counter, rate)
    if (attempt > 1) retryBudget.remainingMs -= Date.now() - runStart
    log(`${name} ${describeSample(sample)}`)

    const disturbed = sample.foreignShare > MAX_FOREIGN_SHARE
    if (!disturbed || attempt === MAX_ATTEMPTS || retryBudget.remainingMs <= 0) {
      return { ...sample, attempts: attempt }
    }
    const used = percent(sample.foreignShare)
    log(`${name}: other programs used ${used} of the cores, measuring again`)
  }
}

/** Runs the record size probe. A failure goes into the report instead of ending the benchmark. */
async function probeOrReport(
  server: ServerChild,
  redis: BenchRedis,
): Promise<RecordSizes | { error: string }> {
  try {
    return await probeRecordSizes(server, redis)
  } catch (err) {
    log(String(err))
    return { error: err instanceof Error ? err.message : String(err) }
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}

function describeSample(sample: RunSample): string {
  const { load } = sample
  const drain = sample.drain === null ? '' : `, drain ${sample.drain.ok ? 'ok' : 'FAILED'}`
  const serverCpu = sample.serverCpuMicrosPerRequest.toFixed(1)
  const redisCpu = sample.redisCpuMicrosPerRequest.toFixed(1)
  const cores = `${percent(load.serverCoreBusy)} / ${percent(load.loadCoreBusy)}`
  return (
    `${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.p99Ms.toFixed(2)} ms, ` +
    `server ${serverCpu} µs/req, redis ${redisCpu} µs/req, cores ${cores}, ` +
    `load generator ${percent(load.cpuSeconds / load.wallSeconds)} ` +
    `(${sample.loadCpuMicrosPerRequest.toFixed(1)} µs/req), ` +
    `bench process ${sample.orchestratorCpuMicrosPerRequest.toFixed(1)} µs/req, ` +
    `other ${percent(sample.foreignShare)}${drain}`
  )
}

function percent(share: number): string {
  return `${Math.round(share * 100)} %`
}

/** Writes the report and, beside it, every run's numbers as JSON. Returns the report's path. */
function writeReport(date: string, report: string, results: readonly FrameworkResult[]): string {
  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const base = join(dir, `${date}-recording`)
  writeFileSync(`${base}.md`, `${report}\n`)
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`)
  return `${base}.md`
}

function log(message: string): void {
  console.error(`[bench] ${message}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
