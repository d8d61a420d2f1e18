/**
 * The meters above the tables of the live view, like htop's: where the
 * figures come from and whether the stream is up, what is seen, rate,
 * duration percentiles, error shares and the status mix over the window.
 */
import type { Heartbeat, HeartbeatReport } from '../trackers/heartbeat'
import { parseIsoTime } from '../task/time'
import { formatBytes, formatDuration, formatRequestDuration } from './format'
import type { GridCell, GridColumn } from './grid'
import { textWidth } from './text-width'
import { MIN_RATE_SPAN_MS, type WindowFigures } from './stats'

/** Source of the figures, and the state of the update stream. */
export type SourceStatus =
  | { kind: 'stream'; connected: true }
  | { kind: 'stream'; connected: false; sinceMs: number; reason: string }
  | { kind: 'polling'; intervalMs: number }

export interface MeterInput {
  figures: WindowFigures
  hosts: number
  processes: number
  active: number
  source: SourceStatus
  lastUpdateMs: number | undefined
  nowMs: number
  /** Terminal width in columns, or `Infinity` when the output is not a terminal. */
  width: number
}

/** A line of text and the style of the whole line. */
export interface StyledLine {
  text: string
  colour?: 'red' | 'green' | 'yellow' | undefined
}

/**
 * Returns the meter lines shown below the title line. The source of the
 * figures ends the status line. When that line would be wider than the
 * terminal, a connected stream is left out and any other source gets a
 * line of its own, so that a narrow terminal still shows that the stream
 * is down.
 */
export function renderMeters(input: MeterInput): StyledLine[] {
  const { figures } = input
  const statusMix =
    `Status 2xx ${figures.statusMix['2xx']}  3xx ${figures.statusMix['3xx']}  ` +
    `4xx ${figures.statusMix['4xx']}  5xx ${figures.statusMix['5xx']}` +
    `${figures.statusMix.other > 0 ? `  none ${figures.statusMix.other}` : ''}  ` +
    `Updated ${formatClock(input.lastUpdateMs)}`
  const source = describeSource(input.source, input.nowMs)
  let statusLines: StyledLine[] = [{ text: `${statusMix}  ${source}` }]
  if (textWidth(statusMix) + 2 + textWidth(source) > input.width) {
    const streaming = input.source.kind === 'stream' && input.source.connected
    statusLines = streaming ? [{ text: statusMix }] : [{ text: statusMix }, { text: source, colour: colourSource(input.source) }]
  }
  return [
    {
      text:
        `Hosts ${input.hosts}  Processes ${input.processes}  Active ${input.active}  ` +
        `Completed ${describeRate(figures)}`,
    },
    {
      text:
        `Duration p50 ${formatLatency(figures.p50Ms)}  p95 ${formatLatency(figures.p95Ms)}  ` +
        `p99 ${formatLatency(figures.p99Ms)}  Errors 5xx ${formatShare(figures.serverErrorRate)}  ` +
        `4xx ${formatShare(figures.clientErrorRate)}`,
      colour: (figures.serverErrorRate ?? 0) > 0.05 ? 'red' : undefined,
    },
    ...statusLines,
  ]
}

/** Returns the colour of the source line: yellow while polling, red while the stream is down. */
function colourSource(source: SourceStatus): StyledLine['colour'] {
  return source.kind === 'polling' ? 'yellow' : 'red'
}

/**
 * Returns the completed rate and the count and span it divides, such as
 * `28.0/s (1680 in the last 60s)`. Below `MIN_RATE_SPAN_MS` of coverage,
 * as in the first frame, the rate is `-`.
 */
function describeRate(figures: WindowFigures): string {
  const seconds = Math.round(figures.windowMs / 1000)
  const count = figures.coveredCount
  if (figures.coveredMs < MIN_RATE_SPAN_MS) return `-/s (${count} in under 1s; window ${seconds}s)`

  const covered = Math.round(figures.coveredMs / 1000)
  // Until the view has seen a whole window, the figures cover less of it, so the span is shown.
  const span = covered < seconds ? `in ${covered}s; window ${seconds}s` : `in the last ${seconds}s`
  const rate = figures.ratePerSecond.toFixed(figures.ratePerSecond < 10 ? 2 : 1)
  return `${rate}/s (${count} ${span})`
}

/** Returns the text that names the source of the figures and whether the stream is up. */
export function describeSource(source: SourceStatus, nowMs: number): string {
  if (source.kind === 'polling') {
    return `figures from past_tasks polling every ${formatDuration(source.intervalMs)} (no update stream)`
  }
  if (source.connected) return 'figures from task_updates'
  const lost = formatDuration(Math.max(0, nowMs - source.sinceMs))
  return `DISCONNECTED for ${lost}, reconnecting`
}

/** Formats a duration for the meters as `formatRequestDuration` does, `-` for no value. */
export function formatLatency(ms: number | undefined): string {
  return formatRequestDuration(ms) ?? '-'
}

/** Formats a share from 0 to 1 as a percentage with one decimal. */
export function formatShare(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(1)}%`
}

/** Formats a time as the local `HH:MM:SS`, or `-`. */
export function formatClock(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toTimeString().slice(0, 8)
}

export const PROCESS_COLUMNS: readonly GridColumn[] = [
  { name: 'Process', align: 'left', maxWidth: 40 },
  { name: 'State', align: 'left', maxWidth: 5 },
  { name: 'Up', align: 'right', maxWidth: 7 },
  { name: 'Loop p99', align: 'right', maxWidth: 9 },
  { name: 'Heap', align: 'right', maxWidth: 9 },
  { name: 'RSS', align: 'right', maxWidth: 9 },
  { name: 'In flight', align: 'right', maxWidth: 9 },
  { name: 'Done', align: 'right', maxWidth: 10 },
  { name: 'Dropped', align: 'right', maxWidth: 8 },
  { name: 'Orphaned', align: 'right', maxWidth: 8 },
]

/**
 * Returns one row per recording process: live ones from their heartbeat,
 * then those whose heartbeat stopped, shown as gone with the number of
 * their requests still listed as active (orphaned).
 */
export function buildProcessRows(
  report: HeartbeatReport,
  orphansByPrefix: ReadonlyMap<string, number>,
  nowMs: number,
): GridCell[][] {
  const live = report.live.map((heartbeat) => buildLiveRow(heartbeat, nowMs))
  const gone = report.stalePrefixes.map((prefix): GridCell[] => [
    { text: describePrefix(prefix) },
    { text: 'gone', colour: 'red' },
    { text: '-' },
    { text: '-' },
    { text: '-' },
    { text: '-' },
    { text: '-' },
    { text: '-' },
    { text: '-' },
    { text: String(orphansByPrefix.get(prefix) ?? 0), colour: 'red' },
  ])
  return [...live, ...gone]
}

function buildLiveRow(heartbeat: Heartbeat, nowMs: number): GridCell[] {
  const startedMs = parseIsoTime(heartbeat.started_at)
  const loop = heartbeat.event_loop_delay_p99_ms
  return [
    { text: describeHeartbeatProcess(heartbeat) },
    { text: 'up', colour: 'green' },
    { text: formatDuration(startedMs === undefined ? undefined : nowMs - startedMs) ?? '-' },
    { text: loop == null ? '-' : formatLatency(loop), colour: (loop ?? 0) > 100 ? 'red' : undefined },
    { text: formatBytes(heartbeat.heap_used_bytes ?? undefined) ?? '-' },
    { text: formatBytes(heartbeat.rss_bytes ?? undefined) ?? '-' },
    { text: String(heartbeat.requests_in_flight ?? '-') },
    { text: String(heartbeat.requests_completed ?? '-') },
    {
      text: String(heartbeat.records_dropped ?? '-'),
      colour: (heartbeat.records_dropped ?? 0) > 0 ? 'yellow' : undefined,
    },
    { text: '0' },
  ]
}

/**
 * Returns `<host>/<pid>` of a live process, from its processor id prefix
 * when the heartbeat's own host name or pid is missing or invalid.
 */
export function describeHeartbeatProcess(heartbeat: Heartbeat): string {
  const { host_name: host, process_id: pid } = heartbeat
  return host == null || pid == null ? describePrefix(heartbeat.processor_id_prefix) : `${host}/${pid}`
}

/** Turns a processor id prefix, `host/4242-0-1.`, into `host/4242`. */
export function describePrefix(prefix: string): string {
  const slash = prefix.lastIndexOf('/')
  if (slash === -1) return prefix
  const pid = prefix.slice(slash + 1).split('-')[0] ?? ''
  return `${prefix.slice(0, slash)}/${pid}`
}
