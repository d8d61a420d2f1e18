/**
 * Profiles web-top servers under the benchmark's load with
 * `node --cpu-prof` and prints where their CPU time goes.
 *
 * Usage: npx tsx bench/profile.ts [--framework express] [--variant web-top-redis]
 *        [--seconds 10] [--warmup 3]
 *
 * The profile covers the whole process, but the summary keeps only the
 * samples taken during the measured load. Profiles are written to
 * bench/results/tmp/profiles/<framework>-<variant>/ (ignored by git).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_DIR, REPO_DIR, ServerChild } from './lib/children'
import { summarizeProfile, type FunctionTime, type ProfileSummary } from './lib/cpuprofile'
import { pinSelf } from './lib/machine'
import { LOAD_CORE, loadServer, SERVER_CORE } from './lib/measure'
import { startRedis } from './lib/redis'
import {
  FRAMEWORKS,
  isFramework,
  isVariant,
  VARIANTS,
  type Framework,
  type Variant,
} from './lib/variants'

/**
 * Sampling interval of the profiler, in microseconds: Node's default. At
 * 100 µs the profiler itself raised the server's CPU per request by about
 * half, in one measurement.
 */
const SAMPLING_INTERVAL_MICROS = 1000
const TOP_FUNCTIONS = 25

interface ProfileSettings {
  seconds: number
  warmupSeconds: number
  profileDir: string
}

type ServerProfile = ProfileSummary & {
  requestsPerSecond: number
  cpuMicrosPerRequest: number
  systemCpuMicrosPerRequest: number
  file: string
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      framework: { type: 'string', multiple: true },
      variant: { type: 'string', multiple: true },
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
    },
  })
  const frameworkNames = values.framework ?? [...FRAMEWORKS]
  const frameworks = frameworkNames.map((name) =>
    checkName('--framework', name, isFramework, FRAMEWORKS),
  )
  const variantNames = values.variant ?? ['web-top-redis']
  const variants = variantNames.map((name) => checkName('--variant', name, isVariant, VARIANTS))
  const settings: ProfileSettings = {
    seconds: readSeconds('--seconds', values.seconds),
    warmupSeconds: readSeconds('--warmup', values.warmup),
    profileDir: join(BENCH_DIR, 'results', 'tmp', 'profiles'),
  }

  pinSelf(LOAD_CORE)
  const redis = await startRedis(LOAD_CORE)
  mkdirSync(settings.profileDir, { recursive: true })

  try {
    for (const framework of frameworks) {
      for (const variant of variants) {
        await redis.client.flushall()
        const profile = await profileServer(framework, variant, redis.url, settings)
        console.log(renderProfile(`${framework} ${variant}`, profile))
      }
    }
  } finally {
    await redis.close()
  }
}

async function profileServer(
  framework: Framework,
  variant: Variant,
  redisUrl: string,
  settings: ProfileSettings,
): Promise<ServerProfile> {
  // Node writes one profile per thread, and tsx adds a module-hooks thread,
  // so each server gets its own folder and the main thread's file (thread id 0) is read.
  const dir = join(settings.profileDir, `${framework}-${variant}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const interval = String(SAMPLING_INTERVAL_MICROS)
  const flags = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', interval]
  const server = new ServerChild(framework, variant, redisUrl, SERVER_CORE, flags)

  try {
    await server.ready()
    await loadServer(server, settings.warmupSeconds)
    const before = await server.stats()
    const load = await loadServer(server, settings.seconds)
    const after = await server.stats()
    await server.close()

    const handled = after.handled - before.handled
    const cpuMicrosPerRequest = (after.cpuMicros - before.cpuMicros) / handled
    const systemCpuMicrosPerRequest = (after.systemCpuMicros - before.systemCpuMicros) / handled
    const file = findMainThreadProfile(dir, server.process.pid)
    const window = {
      fromMicros: before.monotonicMicros,
      toMicros: after.monotonicMicros,
      cpuMicrosPerRequest,
    }
    const summary = summarizeProfile(file, window, join(REPO_DIR, 'src') + '/')
    return {
      ...summary,
      requestsPerSecond: load.requestsPerSecond,
      cpuMicrosPerRequest,
      systemCpuMicrosPerRequest,
      file,
    }
  } finally {
    await server.close()
  }
}

/** Finds `CPU.<date>.<time>.<pid>.0.<sequence>.cpuprofile`, the profile of the main thread. */
function findMainThreadProfile(dir: string, pid: number | undefined): string {
  const isMainThread = (file: string) => file.endsWith('.cpuprofile') && file.includes(`.${pid}.0.`)
  const name = readdirSync(dir).find(isMainThread)
  if (name === undefined) {
    throw new Error(`profile not found: no main-thread profile of process ${pid} in ${dir}`)
  }
  return join(dir, name)
}

function renderProfile(title: string, profile: ServerProfile): string {
  const rate = profile.requestsPerSecond.toFixed(0)
  const cpu = profile.cpuMicrosPerRequest.toFixed(1)
  const system = profile.systemCpuMicrosPerRequest.toFixed(1)
  const idle = (profile.idleShare * 100).toFixed(0)
  const lines = [
    `## ${title}`,
    '',
    `${rate} req/s under the profiler, ${cpu} µs of server CPU per request ` +
      `(${system} µs of it in the kernel), ` +
      `${profile.busySamples} busy samples, idle ${idle} %. Profile: ${profile.file}`,
    '',
    `Under web-top functions (callees included): ${formatTime(profile.underWebTop)}`,
    '',
    '| origin (self time) | share | µs/req |',
    '| --- | ---: | ---: |',
    ...profile.origins.map((row) => `| ${row.origin} | ${formatTimeCells(row)} |`),
    '',
    'Time under web-top, by innermost web-top function (callees included):',
    '',
    ...renderFunctions(profile.webTopFunctions.slice(0, TOP_FUNCTIONS)),
    '',
    `Top ${TOP_FUNCTIONS} functions by self time:`,
    '',
    ...renderFunctions(profile.selfTime.slice(0, TOP_FUNCTIONS)),
    '',
  ]
  return lines.join('\n')
}

function renderFunctions(rows: readonly FunctionTime[]): string[] {
  return [
    '| function | location | origin | share | µs/req |',
    '| --- | --- | --- | ---: | ---: |',
    ...rows.map(
      (row) => `| ${row.name} | ${row.location} | ${row.origin} | ${formatTimeCells(row)} |`,
    ),
  ]
}

function formatTime(time: { share: number; microsPerRequest: number }): string {
  const micros = time.microsPerRequest.toFixed(1)
  return `${formatShare(time.share)} of busy samples, ${micros} µs per request`
}

function formatTimeCells(time: { share: number; microsPerRequest: number }): string {
  return `${formatShare(time.share)} | ${time.microsPerRequest.toFixed(2)}`
}

function formatShare(share: number): string {
  return `${(share * 100).toFixed(1)} %`
}

function checkName<T extends string>(
  option: string,
  name: string,
  isValid: (value: unknown) => value is T,
  allowed: readonly T[],
): T {
  if (!isValid(name)) {
    throw new Error(`invalid ${option} ${JSON.stringify(name)}: use one of ${allowed.join(', ')}`)
  }
  return name
}

function readSeconds(option: string, text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isInteger(value) || value < 1) {
    const expected = 'a whole number of seconds, at least 1'
    throw new Error(`invalid ${option} ${JSON.stringify(text)}: use ${expected}`)
  }
  return value
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
