/**
 * Turns the runs of one framework into a summary per variant and renders
 * it as Markdown tables.
 */
import { BROWSER_HEADERS, headerBytes } from './headers'
import type { MachineFacts } from './machine'
import {
  CONNECTIONS,
  LOAD_CORE,
  SERVER_CORE,
  type DrainCheck,
  type RecordSizes,
  type RunSample,
} from './measure'
import { max, median, min } from './stats'
import { variantLabel, type Framework, type Variant } from './variants'

/** Goals for web-top with the Redis tracker: requests/s and p99 latency ratios to the baseline. */
export const GOALS: Readonly<Record<Framework, { minRatio: number; maxP99Ratio: number }>> = {
  express: { minRatio: 0.85, maxP99Ratio: 1.2 },
  fastify: { minRatio: 0.66, maxP99Ratio: 1.2 },
}

export interface VariantSummary {
  variant: Variant
  label: string
  medianRps: number
  minRps: number
  maxRps: number
  /** Median over rounds of requests/s divided by the baseline's in the same round. */
  ratio: number
  p50Ms: number
  p99Ms: number
  /** Median over rounds of p99 divided by the baseline's p99 in the same round. */
  p99Ratio: number
  /**
   * Median over rounds of the baseline's server CPU per request divided by
   * this variant's: the requests/s ratio a server limited by its one core
   * reaches, and less sensitive than requests/s to other programs on the machine.
   */
  cpuRatio: number
  serverCpuMicros: number
  redisCpuMicros: number
  serverCoreBusy: number
  loadCoreBusy: number
  maxSteal: number
  /** Median share of the two cores used by other programs and the kernel during the runs. */
  foreignShare: number
  /** Runs measured again because other programs used the cores. */
  repeatedRuns: number
  /** Socket errors, timeouts and non-2xx responses over all rounds. */
  failures: number
}

export interface FrameworkResult {
  framework: Framework
  /** Every measured run, by variant, kept for the raw-data file. */
  samples: Record<string, RunSample[]>
  summaries: VariantSummary[]
  drainChecks: DrainCheck[]
  /** Sizes of one request's records, the probe's error, or null when no Redis variant ran. */
  recordSizes: RecordSizes | { error: string } | null
}

export function summarize(
  framework: Framework,
  samples: ReadonlyMap<Variant, RunSample[]>,
): VariantSummary[] {
  const baselineRuns = samples.get('baseline') ?? []
  const baselineByRound = new Map(baselineRuns.map((sample) => [sample.round, sample]))
  const summaries: VariantSummary[] = []

  for (const [variant, runs] of samples) {
    const rps = runs.map((run) => run.load.requestsPerSecond)
    const ratios: number[] = []
    const p99Ratios: number[] = []
    const cpuRatios: number[] = []
    for (const run of runs) {
      const baseline = baselineByRound.get(run.round)
      if (baseline === undefined) continue
      ratios.push(run.load.requestsPerSecond / baseline.load.requestsPerSecond)
      p99Ratios.push(run.load.p99Ms / baseline.load.p99Ms)
      cpuRatios.push(baseline.serverCpuMicrosPerRequest / run.serverCpuMicrosPerRequest)
    }

    summaries.push({
      variant,
      label: variantLabel(framework, variant),
      medianRps: median(rps),
      minRps: min(rps),
      maxRps: max(rps),
      ratio: median(ratios),
      p50Ms: median(runs.map((run) => run.load.p50Ms)),
      p99Ms: median(runs.map((run) => run.load.p99Ms)),
      p99Ratio: median(p99Ratios),
      cpuRatio: median(cpuRatios),
      serverCpuMicros: median(runs.map((run) => run.serverCpuMicrosPerRequest)),
      redisCpuMicros: median(runs.map((run) => run.redisCpuMicrosPerRequest)),
      serverCoreBusy: median(runs.map((run) => run.load.serverCoreBusy)),
      loadCoreBusy: median(runs.map((run) => run.load.loadCoreBusy)),
      maxSteal: max(runs.map((run) => run.load.steal)),
      foreignShare: median(runs.map((run) => run.foreignShare)),
      repeatedRuns: runs.reduce((sum, run) => sum + run.attempts - 1, 0),
      failures: runs.reduce((sum, run) => sum + countFailures(run), 0),
    })
  }
  return summaries
}

export function renderResultTable(summaries: readonly VariantSummary[]): string {
  const header = [
    '| variant | req/s median | min–max | ratio | p50 ms | p99 ms | p99 ratio ' +
      '| server CPU µs/req | CPU ratio | Redis CPU µs/req | core 0 / core 1 busy | other CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  const rows = summaries.map((row) =>
    [
      row.label,
      fixed(row.medianRps, 0),
      `${fixed(row.minRps, 0)}–${fixed(row.maxRps, 0)}`,
      fixed(row.ratio, 2),
      fixed(row.p50Ms, 2),
      fixed(row.p99Ms, 2),
      fixed(row.p99Ratio, 2),
      fixed(row.serverCpuMicros, 1),
      fixed(row.cpuRatio, 2),
      fixed(row.redisCpuMicros, 1),
      `${percent(row.serverCoreBusy)} / ${percent(row.loadCoreBusy)}`,
      percent(row.foreignShare),
    ].join(' | '),
  )
  return [...header, ...rows.map((row) => `| ${row} |`)].join('\n')
}

/** Returns one line per goal of the Redis-tracker variant: met or missed, and the value. */
export function renderGoalLines(
  framework: Framework,
  summaries: readonly VariantSummary[],
): string[] {
  const redis = summaries.find((row) => row.variant === 'web-top-redis')
  if (redis === undefined) return []

  const goal = GOALS[framework]
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED')
  const ratioMet = verdict(redis.ratio >= goal.minRatio)
  const cpuRatioMet = verdict(redis.cpuRatio >= goal.minRatio)
  const p99Met = verdict(redis.p99Ratio <= goal.maxP99Ratio)
  return [
    `- ratio ${fixed(redis.ratio, 2)} (goal ≥ ${goal.minRatio}): ${ratioMet}; ` +
      `CPU ratio ${fixed(redis.cpuRatio, 2)}: ${cpuRatioMet}`,
    `- p99 ratio ${fixed(redis.p99Ratio, 2)} (goal ≤ ${goal.maxP99Ratio}): ${p99Met}`,
    `- Redis CPU ${fixed(redis.redisCpuMicros, 1)} µs per request`,
  ]
}

export function renderDrainLines(checks: readonly DrainCheck[]): string[] {
  return checks.map(
    (check, index) =>
      `- after Redis run ${index + 1}: ${check.activeEntries} left in processors, ` +
      `past_tasks ${check.pastTasks}, ${check.endEvents} end events ` +
      `for ${check.handled} handled requests, ${check.dropped} dropped: ` +
      (check.ok ? 'ok' : 'FAILED'),
  )
}

export function renderWarnings(summaries: readonly VariantSummary[]): string[] {
  const lines: string[] = []
  for (const row of summaries) {
    if (row.failures > 0) {
      lines.push(`- ${row.label}: ${row.failures} errors, timeouts or non-2xx responses`)
    }
    if (row.repeatedRuns > 0) {
      const runs = row.repeatedRuns
      lines.push(`- ${row.label}: ${runs} runs measured again, other programs used the cores`)
    }
    if (row.maxSteal > 0.02) {
      const stolen = percent(row.maxSteal)
      lines.push(`- ${row.label}: up to ${stolen} of a core stolen by the hypervisor`)
    }
  }
  return lines
}

function countFailures(run: RunSample): number {
  return run.load.errors + run.load.timeouts + run.load.non2xx
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
}

function percent(share: number): string {
  return Number.isFinite(share) ? `${Math.round(share * 100)} %` : 'n/a'
}

/** Facts about how the results were obtained, printed at the top of the report. */
export interface ReportContext {
  /** `YYYY-MM-DD`. */
  date: string
  machine: MachineFacts
  redisVersion: string
  rounds: number
  seconds: number
  warmupSeconds: number
}

/** Renders the whole report: how it was measured, then per framework the table and the checks. */
export function renderReport(
  results: readonly FrameworkResult[],
  context: ReportContext,
): string {
  const { machine } = context
  const lines = [
    `# web-top recording benchmark, ${context.date}`,
    '',
    `- machine: ${machine.cores} cores (nproc), ${machine.cpuModel}, Linux ${machine.kernel}`,
    `- Node ${machine.nodeVersion}, Redis ${context.redisVersion}, ` +
      `web-top source at ${machine.commit} (imported from src/ through tsx)`,
    `- ${context.rounds} interleaved rounds of ${context.seconds} s per variant ` +
      `after a ${context.warmupSeconds} s warm-up each, ${CONNECTIONS} connections, ` +
      `${headerBytes(BROWSER_HEADERS)} bytes of browser-like request headers`,
    `- server on core ${SERVER_CORE}; autocannon, redis-server and the orchestrator ` +
      `on core ${LOAD_CORE}`,
    '- command: `npm run bench`',
  ]
  for (const result of results) lines.push('', ...renderFrameworkSection(result))
  return lines.join('\n')
}

function renderFrameworkSection(result: FrameworkResult): string[] {
  const lines = [`## ${result.framework === 'express' ? 'Express 5' : 'Fastify 5'}`, '']
  lines.push(renderResultTable(result.summaries), '')
  lines.push('Goals for web-top with the Redis tracker:', '')
  lines.push(...renderGoalLines(result.framework, result.summaries))
  lines.push('', 'Drain check:', '', ...renderDrainLines(result.drainChecks))

  if (result.recordSizes !== null && 'error' in result.recordSizes) {
    lines.push('', `Record sizes: not measured, ${result.recordSizes.error}.`)
  } else if (result.recordSizes !== null) {
    const { startBytes, endBytes, endRecord } = result.recordSizes
    lines.push(
      '',
      `Record sizes as stored: start ${startBytes} bytes (HGET processors), ` +
        `end ${endBytes} bytes (LINDEX past_tasks 0).`,
    )
    lines.push('', 'End record:', '', '```json', endRecord, '```')
  }

  const warnings = renderWarnings(result.summaries)
  if (warnings.length > 0) lines.push('', 'Warnings:', '', ...warnings)
  return lines
}
