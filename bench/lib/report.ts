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
  loadCpuMicros: number
  orchestratorCpuMicros: number
  serverCoreBusy: number
  loadCoreBusy: number
  maxSteal: number
  /** Median share of the two cores used by other programs and the kernel during the runs. */
  foreignShare: number
  /** Runs measured again because other programs used the cores. */
  repeatedRuns: number
  /** Socket errors, timeouts and non-2xx responses over all rounds. */
  failures: number
  /** Requests of paced runs that waited for a free connection, over all rounds. */
  queued: number
}

/** The runs at a fixed rate, a share of the baseline's requests/s in the same round. */
export interface PacedResult {
  share: number
  samples: Record<string, RunSample[]>
  summaries: VariantSummary[]
}

export interface FrameworkResult {
  framework: Framework
  /** Every measured run, by variant, kept for the raw-data file. */
  samples: Record<string, RunSample[]>
  summaries: VariantSummary[]
  /** The paced runs, or null when `--paced-share 0` left them out. */
  paced: PacedResult | null
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
      loadCpuMicros: median(runs.map((run) => run.loadCpuMicrosPerRequest)),
      orchestratorCpuMicros: median(runs.map((run) => run.orchestratorCpuMicrosPerRequest)),
      serverCoreBusy: median(runs.map((run) => run.load.serverCoreBusy)),
      loadCoreBusy: median(runs.map((run) => run.load.loadCoreBusy)),
      maxSteal: max(runs.map((run) => run.load.steal)),
      foreignShare: median(runs.map((run) => run.foreignShare)),
      repeatedRuns: runs.reduce((sum, run) => sum + run.attempts - 1, 0),
      failures: runs.reduce((sum, run) => sum + countFailures(run), 0),
      queued: runs.reduce((sum, run) => sum + run.load.queued, 0),
    })
  }
  return summaries
}

/** A column of a results table: its title and the cell of each summary. */
type Column = readonly [title: string, cell: (row: VariantSummary) => string]

const LABEL: Column = ['variant', (row) => row.label]
const MEDIAN_RPS: Column = ['req/s median', (row) => fixed(row.medianRps, 0)]
const P50: Column = ['p50 ms', (row) => fixed(row.p50Ms, 2)]
const P99: Column = ['p99 ms', (row) => fixed(row.p99Ms, 2)]
const P99_RATIO: Column = ['p99 ratio', (row) => fixed(row.p99Ratio, 2)]
const SERVER_CPU: Column = ['server CPU µs/req', (row) => fixed(row.serverCpuMicros, 1)]
const CPU_RATIO: Column = ['CPU ratio', (row) => fixed(row.cpuRatio, 2)]
const REDIS_CPU: Column = ['Redis CPU µs/req', (row) => fixed(row.redisCpuMicros, 1)]

/** Renders summaries as a Markdown table, the label column left-aligned and the others right-aligned. */
function renderTable(columns: readonly Column[], summaries: readonly VariantSummary[]): string {
  const lines = [
    `| ${columns.map(([title]) => title).join(' | ')} |`,
    `| --- |${' ---: |'.repeat(columns.length - 1)}`,
  ]
  for (const row of summaries) lines.push(`| ${columns.map(([, cell]) => cell(row)).join(' | ')} |`)
  return lines.join('\n')
}

export function renderResultTable(summaries: readonly VariantSummary[]): string {
  return renderTable(
    [
      LABEL,
      MEDIAN_RPS,
      ['min–max', (row) => `${fixed(row.minRps, 0)}–${fixed(row.maxRps, 0)}`],
      ['ratio', (row) => fixed(row.ratio, 2)],
      P50,
      P99,
      P99_RATIO,
      SERVER_CPU,
      CPU_RATIO,
      REDIS_CPU,
      ['load generator CPU µs/req', (row) => fixed(row.loadCpuMicros, 1)],
      ['bench process CPU µs/req', (row) => fixed(row.orchestratorCpuMicros, 1)],
      ['core 0 / core 1 busy', (row) => `${percent(row.serverCoreBusy)} / ${percent(row.loadCoreBusy)}`],
      ['other CPU', (row) => percent(row.foreignShare)],
    ],
    summaries,
  )
}

/**
 * Renders the paced runs: latency and CPU per request at the same request
 * rate for every variant, a rate the slowest variant also sustains.
 */
export function renderPacedTable(summaries: readonly VariantSummary[]): string {
  return renderTable(
    [
      LABEL,
      MEDIAN_RPS,
      P50,
      P99,
      P99_RATIO,
      SERVER_CPU,
      CPU_RATIO,
      REDIS_CPU,
      ['core 0 busy', (row) => percent(row.serverCoreBusy)],
      ['requests queued', (row) => String(row.queued)],
    ],
    summaries,
  )
}

/** Returns one line per goal of the Redis-tracker variant: met or missed, and the value. */
export function renderGoalLines(
  framework: Framework,
  summaries: readonly VariantSummary[],
  paced: PacedResult | null = null,
): string[] {
  const redis = summaries.find((row) => row.variant === 'web-top-redis')
  if (redis === undefined) return []

  const goal = GOALS[framework]
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED')
  const ratioMet = verdict(redis.ratio >= goal.minRatio)
  const cpuRatioMet = verdict(redis.cpuRatio >= goal.minRatio)
  const p99Met = verdict(redis.p99Ratio <= goal.maxP99Ratio)
  const lines = [
    `- ratio ${fixed(redis.ratio, 2)} (goal ≥ ${goal.minRatio}): ${ratioMet}; ` +
      `CPU ratio ${fixed(redis.cpuRatio, 2)}: ${cpuRatioMet}`,
    `- p99 ratio at saturation ${fixed(redis.p99Ratio, 2)} (goal ≤ ${goal.maxP99Ratio}): ${p99Met}`,
  ]
  const pacedRedis = paced?.summaries.find((row) => row.variant === 'web-top-redis')
  if (paced != null && pacedRedis !== undefined) {
    const pacedMet = verdict(pacedRedis.p99Ratio <= goal.maxP99Ratio)
    lines.push(
      `- p99 ratio at ${percent(paced.share)} of the baseline's requests/s ` +
        `${fixed(pacedRedis.p99Ratio, 2)} (goal ≤ ${goal.maxP99Ratio}): ${pacedMet}`,
    )
  }
  lines.push(`- Redis CPU ${fixed(redis.redisCpuMicros, 1)} µs per request`)
  return lines
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
  lines.push('At saturation (autocannon, every connection busy):', '')
  lines.push(renderResultTable(result.summaries), '')
  if (result.paced !== null) {
    const share = percent(result.paced.share)
    lines.push(
      `At a fixed rate: ${share} of the baseline's requests/s in the same round, ` +
        'each request sent when due (bench/lib/paced-load.ts):',
      '',
      renderPacedTable(result.paced.summaries),
      '',
    )
  }
  lines.push('Goals for web-top with the Redis tracker:', '')
  lines.push(...renderGoalLines(result.framework, result.summaries, result.paced))
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

  const pacedRows = (result.paced?.summaries ?? []).map((row) => ({ ...row, label: `${row.label} at a fixed rate` }))
  const warnings = renderWarnings([...result.summaries, ...pacedRows])
  if (warnings.length > 0) lines.push('', 'Warnings:', '', ...warnings)
  return lines
}
