/**
 * The reader benchmark: what `web-top-cli recent` and one frame of `live`
 * cost with 10,000 active and 1,000 completed records in Redis: the first
 * frame, and the frames after later full and light reads with a share of
 * the records changed, with Redis's own CPU time per read.
 *
 *   npx tsup && npx tsx bench/reader.ts [--runs 7] [--frames 20] [--width 120] [--height 40] [--skip-recent] [--only TEXT]
 *
 * `recent` runs as a child process of the built CLI (dist/), pinned to core 0.
 * The live frame runs in this process, pinned to core 0, against the
 * modules of src/cli. Redis runs on core 1. `--skip-recent` leaves out
 * `recent`, which needs no build then, and writes no results file.
 * `--only TEXT` measures only the live frames of the scenarios whose
 * label contains TEXT (for example `--only "light read, 10 %"`), without
 * `recent`, the read steps or a results file, for A/B runs and profiles.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Redis from 'ioredis'
import { parseColumnList, DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, type Column } from '../src/cli/columns'
import { createViewSettings } from '../src/cli/live-input'
import { renderLiveFrame } from '../src/cli/live-render'
import { LiveState } from '../src/cli/live-state'
import { captureLiveData, LIVE_COMPLETED_LIMIT, LIVE_DEFAULTS, resyncReadOptions, VERIFY_SLICES } from '../src/cli/live'
import type { HttpTask } from '../src/task/http-task'
import { decodeTask } from '../src/task/wire'
import { DecodeCache } from '../src/trackers/decode-cache'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { pinSelf, readMachineFacts, type MachineFacts } from './lib/machine'
import { readRedisCpuSeconds, readRedisVersion, startRedis } from './lib/redis'
import { median } from './lib/stats'

const REPO_DIR = join(__dirname, '..')
const ACTIVE_COUNT = 10_000
const COMPLETED_COUNT = 1_000
/** Core of the measured process; Redis gets the other one. */
const MEASURED_CORE = 0
const REDIS_CORE = 1
/** A live frame's goal: CPU time from the read to the rendered lines. */
const FRAME_GOAL_MS = 30
const WARMUP_FRAMES = 5

interface Settings {
  runs: number
  frames: number
  width: number
  height: number
  /** Leave out `recent` and the results file, to measure the live frame alone. */
  skipRecent: boolean
  /** Text that a scenario's label must contain to be measured; undefined measures every scenario. */
  only: string | undefined
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '7' },
      frames: { type: 'string', default: '20' },
      width: { type: 'string', default: '120' },
      height: { type: 'string', default: '40' },
      'skip-recent': { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  })
  const toCount = (name: string, text: string) => {
    const value = Number(text)
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${name} ${text} is invalid: pass a whole number of at least 1`)
    }
    return value
  }
  return {
    runs: toCount('runs', values.runs),
    frames: toCount('frames', values.frames),
    width: toCount('width', values.width),
    height: toCount('height', values.height),
    skipRecent: values['skip-recent'] || values.only !== undefined,
    only: values.only,
  }
}

// ---------------------------------------------------------------------------
// Records

const HOSTS = ['web-1', 'web-2', 'web-3', 'web-4']
const PROCESSES_PER_HOST = 25
const PATHS = ['/', '/products', '/products/4711', '/cart', '/api/v1/orders', '/search', '/login']
const METHODS = ['GET', 'GET', 'GET', 'POST', 'GET', 'PUT', 'GET']

/** Formats epoch ms as the recorder does: microseconds and a `+00:00` offset. */
function formatIso(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000+00:00')
}

/**
 * Builds a record with the fields and header set of the end record in
 * bench/results/2026-12-04-recording.md (about 1.4 KB as JSON).
 */
function buildRecord(index: number, startedMs: number, endedMs: number | null): HttpTask {
  const host = HOSTS[index % HOSTS.length] as string
  const pid = 20_000 + (index % PROCESSES_PER_HOST)
  const path = PATHS[index % PATHS.length] as string
  const ended = endedMs === null ? null : formatIso(endedMs)
  // One completed request in 50 failed with a 500.
  const status = index % 50 === 0 ? 500 : 200
  const statusMessage = status === 500 ? '500 Internal Server Error' : '200 OK'
  return {
    task_id: `${pid}-mx97nqms-${index}`,
    process_internal_id: `${index}.0`,
    started_at: formatIso(startedMs),
    host_name: host,
    process_id: pid,
    thread_id: 0,
    command_line: ['/usr/bin/node', '/srv/app/server.js', '--port', '3000'],
    processor_name: `node:${pid}`,
    protocol: 'http',
    host: `${host}.example.com:3000`,
    method: METHODS[index % METHODS.length] as string,
    path,
    params: null,
    uri: `${path}?page=${index % 9}`,
    client_ip_address: `10.0.${index % 256}.${(index >> 8) % 256}`,
    request_headers: [
      ['USER-AGENT', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'],
      ['ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'],
      ['ACCEPT-LANGUAGE', 'en-US,en;q=0.9,de;q=0.8'],
      ['ACCEPT-ENCODING', 'gzip, deflate, br, zstd'],
      ['REFERER', `https://${host}.example.com/products?page=2`],
      ['COOKIE', '[REDACTED]'],
      ['SEC-CH-UA', '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"'],
      ['SEC-CH-UA-MOBILE', '?0'],
      ['SEC-CH-UA-PLATFORM', '"Linux"'],
      ['SEC-FETCH-DEST', 'document'],
      ['SEC-FETCH-MODE', 'navigate'],
      ['SEC-FETCH-SITE', 'same-origin'],
      ['HOST', `${host}.example.com:3000`],
      ['CONNECTION', 'keep-alive'],
    ],
    task_name: path,
    updated_at: ended ?? formatIso(startedMs),
    ended_at: ended,
    recorded_successfully: ended === null ? null : true,
    status_code: ended === null ? null : status,
    status_message: ended === null ? null : statusMessage,
    response_headers:
      ended === null
        ? null
        : [
            ['X-Powered-By', 'Express'],
            ['Content-Type', 'application/json; charset=utf-8'],
            ['Content-Length', '17'],
            ['ETag', 'W/"11-IkjuL6CqqtmReFMfkkvwC0sKj04"'],
            ['Date', new Date(endedMs as number).toUTCString()],
            ['Connection', 'keep-alive'],
          ],
    tags: {
      'node.version': 'v20.20.2',
      'service.name': 'web-top',
      'service.version': '0.1.0',
      'web_top.client_ip_source': 'socket',
    },
  }
}

interface Seeded {
  activeBytes: number
  completedBytes: number
  /** Record index of each active record, by processor id. */
  activeIds: Map<string, number>
}

/**
 * Fills `processors` with active records (started over the last 60 s,
 * a few over 30 s ago so that the view marks them STALLED) and `past_tasks`
 * with completed ones, the most recent first, as the recorder's LPUSH leaves it.
 */
async function seedRedis(client: Redis, nowMs: number): Promise<Seeded> {
  await client.del('processors', 'past_tasks', 'last_cleared_at')
  let activeBytes = 0
  const activeIds = new Map<string, number>()
  for (let from = 0; from < ACTIVE_COUNT; from += 1_000) {
    const fields: string[] = []
    for (let index = from; index < Math.min(ACTIVE_COUNT, from + 1_000); index++) {
      const task = buildRecord(index, nowMs - ((index * 7919) % 60_000), null)
      const json = JSON.stringify(task)
      activeBytes += Buffer.byteLength(json)
      activeIds.set(processorIdOf(task), index)
      fields.push(processorIdOf(task), json)
    }
    await client.hset('processors', ...fields)
  }
  const completed: string[] = []
  let completedBytes = 0
  for (let index = 0; index < COMPLETED_COUNT; index++) {
    const endedMs = nowMs - index * 40
    const json = JSON.stringify(buildRecord(ACTIVE_COUNT + index, endedMs - 5 - (index % 300), endedMs))
    completedBytes += Buffer.byteLength(json)
    completed.push(json)
  }
  await client.rpush('past_tasks', ...completed)
  return {
    activeBytes: activeBytes / ACTIVE_COUNT,
    completedBytes: completedBytes / COMPLETED_COUNT,
    activeIds,
  }
}

// ---------------------------------------------------------------------------
// `recent` as a child process

interface ChildRun {
  wallMs: number
  cpuMs: number
  outputBytes: number
}

/**
 * Runs the built CLI once under `/usr/bin/time`, pinned to the measured
 * core, with stdout to a pipe that is only counted (the table is not a
 * terminal, so every row is printed at full width).
 */
function runRecentOnce(url: string, extraArgs: readonly string[]): ChildRun {
  const args = ['-c', String(MEASURED_CORE), '/usr/bin/time', '-f', 'TIME %e %U %S']
  args.push('node', join(REPO_DIR, 'bin/web-top-cli.js'), 'recent', '--tracker-url', url, ...extraArgs)
  const started = process.hrtime.bigint()
  const result = spawnSync('taskset', args, { maxBuffer: 256 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } })
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6
  const stderr = result.stderr.toString()
  if (result.status !== 0) throw new Error(`web-top-cli recent failed (exit ${result.status}): ${stderr}`)
  const match = /^TIME ([0-9.]+) ([0-9.]+) ([0-9.]+)$/m.exec(stderr)
  if (match === null) throw new Error(`/usr/bin/time printed no TIME line: ${stderr}`)
  const cpuMs = (Number(match[2]) + Number(match[3])) * 1000
  return { wallMs, cpuMs, outputBytes: result.stdout.length }
}

interface RecentResult {
  label: string
  wallMs: number
  cpuMs: number
  lines: number
}

function measureRecent(url: string, label: string, extraArgs: readonly string[], runs: number): RecentResult {
  runRecentOnce(url, extraArgs) // warm the file cache
  const results = Array.from({ length: runs }, () => runRecentOnce(url, extraArgs))
  const lines = countRecentLines(url, extraArgs)
  return {
    label,
    wallMs: median(results.map((run) => run.wallMs)),
    cpuMs: median(results.map((run) => run.cpuMs)),
    lines,
  }
}

function countRecentLines(url: string, extraArgs: readonly string[]): number {
  const cli = join(REPO_DIR, 'bin/web-top-cli.js')
  const result = spawnSync('node', [cli, 'recent', '--tracker-url', url, ...extraArgs], {
    maxBuffer: 256 * 1024 * 1024,
  })
  return result.stdout.toString().split('\n').filter((line) => line !== '').length
}

// ---------------------------------------------------------------------------
// Changes between reads

/** Processor id under which the recorder stores a record. */
function processorIdOf(task: HttpTask): string {
  return `${task.host_name}/${task.process_id}-0-${task.process_internal_id}`
}

/** Share of the active records that change between two reads of a scenario. */
interface Churn {
  label: string
  /** Share of the active records rewritten with new content; a quarter as many are also replaced by new ones. */
  share: number
}

/**
 * The records in Redis and the changes made to them between reads: some
 * active records rewritten (a new `updated_at`), some removed and as many
 * added, and new completed records pushed, so the counts stay the same.
 */
class RecordChurn {
  /** Record index of each active processor id in `processors`. */
  readonly #active: Map<string, number>
  readonly #client: Redis
  #nextIndex = ACTIVE_COUNT + COMPLETED_COUNT
  #rewriteCount = 0

  constructor(client: Redis, activeIds: Map<string, number>) {
    this.#client = client
    this.#active = activeIds
  }

  /**
   * Changes `share` of the active records and pushes a tenth as many
   * completed ones. Returns the records a writer would publish on
   * `task_updates` for these writes, in order.
   */
  async apply(share: number, nowMs: number): Promise<string[]> {
    const changed = Math.round(ACTIVE_COUNT * share)
    if (changed === 0) return []
    const published: string[] = []
    const replaced = Math.ceil(changed / 4)
    const pipeline = this.#client.pipeline()
    const ids = [...this.#active.keys()]

    // The offset moves on each round, so every round rewrites other records.
    const fields: string[] = []
    for (let offset = 0; offset < changed; offset++) {
      const id = ids[(this.#rewriteCount + offset) % ids.length] as string
      const task = buildRecord(this.#active.get(id) as number, nowMs - 1_000, null)
      task.updated_at = formatIso(nowMs + offset)
      const json = JSON.stringify(task)
      fields.push(id, json)
      published.push(json)
    }
    this.#rewriteCount += changed
    pipeline.hset('processors', ...fields)

    const removed = ids.slice(0, replaced)
    for (const id of removed) this.#active.delete(id)
    pipeline.hdel('processors', ...removed)
    const added: string[] = []
    for (let count = 0; count < replaced; count++) {
      const index = this.#nextIndex++
      const task = buildRecord(index, nowMs - count, null)
      this.#active.set(processorIdOf(task), index)
      const json = JSON.stringify(task)
      added.push(processorIdOf(task), json)
      published.push(json)
    }
    pipeline.hset('processors', ...added)

    const completed: string[] = []
    for (let count = 0; count < Math.ceil(changed / 10); count++) {
      completed.push(JSON.stringify(buildRecord(this.#nextIndex++, nowMs - 20, nowMs - count)))
    }
    published.push(...completed)
    pipeline.lpush('past_tasks', ...completed)
    pipeline.ltrim('past_tasks', 0, COMPLETED_COUNT - 1)
    const results = await pipeline.exec()
    const failed = results?.find(([error]) => error !== null)
    if (failed) throw new Error(`changing the records between reads failed: ${String(failed[0])}`)
    return published
  }
}

// ---------------------------------------------------------------------------
// The read's steps apart

interface FetchTimes {
  fetchMs: number
  fetchBuffersMs: number
  fetchFlatMs: number
  decodeMs: number
}

/**
 * Measures what a read's parts cost without the view: the fetch with the
 * read's commands as strings, as Buffers and as `tracker.read` sends them,
 * and decoding every record.
 * Runs apart from the frames, so that its garbage is not collected during them.
 */
async function measureFetch(raw: Redis): Promise<FetchTimes> {
  let start = process.cpuUsage()
  const replies = await raw
    .multi()
    .hgetall('processors')
    .lrange('past_tasks', 0, LIVE_COMPLETED_LIMIT - 1)
    .get('last_cleared_at')
    .exec()
  const fetchMs = cpuMsSince(start)

  start = process.cpuUsage()
  const processors = replies?.[0]?.[1] as Record<string, string>
  const pastTasks = replies?.[1]?.[1] as string[]
  let decoded = 0
  for (const json of Object.values(processors)) if (decodeTask(json).ok) decoded++
  for (const json of pastTasks) if (decodeTask(json).ok) decoded++
  const decodeMs = cpuMsSince(start)
  const expected = ACTIVE_COUNT + LIVE_COMPLETED_LIMIT
  if (decoded !== expected) throw new Error(`decoding failed: ${decoded} of ${expected} records decoded`)

  start = process.cpuUsage()
  await raw
    .multi()
    .hgetallBuffer('processors')
    .lrangeBuffer('past_tasks', 0, LIVE_COMPLETED_LIMIT - 1)
    .get('last_cleared_at')
    .exec()
  const fetchBuffersMs = cpuMsSince(start)

  // As `tracker.read` sends it: ioredis applies no reply transformer to the upper-case name.
  start = process.cpuUsage()
  await raw
    .multi()
    .callBuffer('HGETALL', 'processors')
    .lrangeBuffer('past_tasks', 0, LIVE_COMPLETED_LIMIT - 1)
    .get('last_cleared_at')
    .exec()
  const fetchFlatMs = cpuMsSince(start)
  return { fetchMs, fetchBuffersMs, fetchFlatMs, decodeMs }
}

// ---------------------------------------------------------------------------
// One live frame in this process

interface FrameTimes {
  /** Redis's own CPU time during the read (`INFO cpu` before and after). */
  redisMs: number
  /** Active records the read fetched; the others came from the decode cache. */
  fetched: number
  readMs: number
  applyMs: number
  renderMs: number
  tickMs: number
  rowsFormatted: number
  tableRows: number
  lines: number
}

/** Wraps each column's `value` to record which tasks it formatted. */
function countFormattedRows(columns: readonly Column[], formatted: Set<HttpTask>): Column[] {
  return columns.map((column) => ({
    ...column,
    value: (task: HttpTask, nowMs: number) => {
      formatted.add(task)
      return column.value(task, nowMs)
    },
  }))
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

/** The state the live view keeps from one read to the next. */
interface ViewMemory {
  state: LiveState
  decodeCache: DecodeCache
}

function createViewMemory(): ViewMemory {
  const decodeCache = new DecodeCache()
  const state = new LiveState({
    windowMs: LIVE_DEFAULTS.windowSeconds * 1000,
    completedLimit: LIVE_COMPLETED_LIMIT,
    nowMs: Date.now(),
    decodeCache,
  })
  return { state, decodeCache }
}

/**
 * Runs what the view runs on a resync: the tracker's read (a light one
 * of `kind`), `finishResync`, one frame, then one more frame.
 * `redisInfo` is a second client on the same Redis, for `INFO cpu`.
 */
async function measureFrame(
  tracker: RedisTracker,
  view: ViewMemory,
  settings: Settings,
  kind: ReadKind,
  redisInfo: Redis,
): Promise<FrameTimes> {
  const { state, decodeCache } = view
  const formatted = new Set<HttpTask>()
  const activeColumns = countFormattedRows(parseColumnList(DEFAULT_ACTIVE_COLUMNS), formatted)
  const completedColumns = countFormattedRows(parseColumnList(DEFAULT_COMPLETED_COLUMNS), formatted)

  const redisBefore = await readRedisCpuSeconds(redisInfo)
  let start = process.cpuUsage()
  const snapshot = await tracker.read(resyncReadOptions(kind.changedOnly, decodeCache, kind.lightReads))
  const readMs = cpuMsSince(start)
  const redisMs = ((await readRedisCpuSeconds(redisInfo)) - redisBefore) * 1000
  if (kind.changedOnly && snapshot.reused === undefined) throw new Error('the light read fell back to a full read: check that the benchmark Redis runs EVALSHA and that no field name contains a NUL byte')
  const fetched = snapshot.active.size - (snapshot.reused?.size ?? 0)

  start = process.cpuUsage()
  state.beginResync()
  state.finishResync(snapshot, Date.now())
  const applyMs = cpuMsSince(start)

  const render = () =>
    renderLiveFrame({
      data: captureLiveData(state, Date.now()),
      settings: createViewSettings(),
      source: { kind: 'stream', connected: true },
      trackerUrl: 'redis://127.0.0.1',
      width: settings.width,
      height: settings.height,
      activeColumns,
      completedColumns,
      completedLimit: LIVE_COMPLETED_LIMIT,
      thresholds: {
        slowAfterMs: LIVE_DEFAULTS.slowAfterSeconds * 1000,
        stallAfterMs: LIVE_DEFAULTS.stallAfterSeconds * 1000,
      },
      colour: true,
      interactive: true,
      notices: [],
    })
  start = process.cpuUsage()
  const frame = render()
  const renderMs = cpuMsSince(start)

  // The next frame on the same state, as the view draws each second and on updates between reads.
  start = process.cpuUsage()
  const nextFrame = render()
  const tickMs = cpuMsSince(start)

  if (snapshot.active.size !== ACTIVE_COUNT) {
    throw new Error(`the read returned ${snapshot.active.size} active tasks, expected ${ACTIVE_COUNT}`)
  }
  return {
    redisMs,
    fetched,
    readMs,
    applyMs,
    renderMs,
    tickMs,
    rowsFormatted: formatted.size,
    tableRows: Math.min(countTableRows(frame.lines), countTableRows(nextFrame.lines)),
    lines: frame.lines.length,
  }
}

/**
 * Counts the request rows on screen: lines between a column header
 * (starting with a known column name) and the next section title or the footer.
 */
function countTableRows(lines: readonly string[]): number {
  const plain = lines.map((line) => line.replace(/\x1b\[[0-9;]*m/g, ''))
  let rows = 0
  let inTable = false
  for (const line of plain) {
    if (/^(Active|Completed) HTTP/.test(line) || line.startsWith('q quit') || line === '') {
      inTable = false
    } else if (/^(State\s+)?(Cty|IP|Ago|Resp)\b/.test(line.trimStart())) {
      inTable = true
    } else if (inTable) {
      rows++
    }
  }
  return rows
}

interface Scenario {
  label: string
  frames: FrameTimes[]
}

/** A kind of resync read: `resyncReadOptions` with these arguments. */
interface ReadKind {
  label: string
  changedOnly: boolean
  /** Light reads since the last full read, which decides whether the read includes the completed list. */
  lightReads: number
}

const FULL_READ: ReadKind = { label: 'full read', changedOnly: false, lightReads: 0 }

/** The read kinds measured after the first frame, each on a view of its own. */
const READ_KINDS: readonly ReadKind[] = [
  FULL_READ,
  { label: 'light read', changedOnly: true, lightReads: 0 },
  { label: 'light read with the completed list', changedOnly: true, lightReads: VERIFY_SLICES - 1 },
]

/** The scenarios after the first frame, in the order they run, each with full and with light reads. */
const CHURNS: readonly Churn[] = [
  { label: 'unchanged records', share: 0 },
  { label: '1 % of active records changed', share: 0.01 },
  { label: '10 % of active records changed', share: 0.1 },
]

/**
 * Measures frames after reads of one kind with each churn in turn, on one
 * view that a full read filled first. Before each read, the records that
 * the churn's writer would publish are applied to the view's state, as
 * the update stream would, without being measured.
 */
async function measureChurns(
  tracker: RedisTracker,
  churn: RecordChurn,
  settings: Settings,
  kind: ReadKind,
  redisInfo: Redis,
): Promise<Scenario[]> {
  const churns = CHURNS.filter(({ label }) => isSelected(settings, `${kind.label}, ${label}`))
  if (churns.length === 0) return []
  const view = createViewMemory()
  await measureFrame(tracker, view, settings, FULL_READ, redisInfo)
  const scenarios: Scenario[] = []
  for (const { label, share } of churns) {
    const frames: FrameTimes[] = []
    for (let run = 0; run < WARMUP_FRAMES + settings.frames; run++) {
      const published = await churn.apply(share, Date.now())
      for (const json of published) view.state.applyUpdate(json, Date.now())
      const times = await measureFrame(tracker, view, settings, kind, redisInfo)
      if (run >= WARMUP_FRAMES) frames.push(times)
    }
    scenarios.push({ label: `${kind.label}, ${label}`, frames })
  }
  return scenarios
}

function isSelected(settings: Settings, label: string): boolean {
  return settings.only === undefined || label.includes(settings.only)
}

async function measureScenarios(
  url: string,
  churn: RecordChurn,
  settings: Settings,
): Promise<{ fetches: FetchTimes[]; scenarios: Scenario[] }> {
  const tracker = new RedisTracker({ url })
  const raw = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    const fetches: FetchTimes[] = []
    for (let run = 0; settings.only === undefined && run < WARMUP_FRAMES + settings.frames; run++) {
      const times = await measureFetch(raw)
      if (run >= WARMUP_FRAMES) fetches.push(times)
    }

    const scenarios: Scenario[] = []
    const coldLabel = 'first frame (empty cache, full read)'
    if (isSelected(settings, coldLabel)) {
      // A new view for every frame, whose cache is empty, so every record is decoded.
      const cold: FrameTimes[] = []
      for (let run = 0; run < WARMUP_FRAMES + settings.frames; run++) {
        const times = await measureFrame(tracker, createViewMemory(), settings, FULL_READ, raw)
        if (run >= WARMUP_FRAMES) cold.push(times)
      }
      scenarios.push({ label: coldLabel, frames: cold })
    }
    for (const kind of READ_KINDS) scenarios.push(...(await measureChurns(tracker, churn, settings, kind, raw)))
    return { fetches, scenarios }
  } finally {
    raw.disconnect()
    await tracker.close()
  }
}

// ---------------------------------------------------------------------------
// Report

function formatMs(ms: number): string {
  return ms.toFixed(1)
}

function buildReport(input: {
  settings: Settings
  facts: MachineFacts
  redisVersion: string
  seeded: Seeded
  recent: RecentResult[]
  fetches: FetchTimes[]
  scenarios: Scenario[]
}): { table: string; markdown: string } {
  const { settings, facts, fetches, scenarios } = input
  const frameCount = settings.frames
  const pickFetch = (key: keyof FetchTimes) => median(fetches.map((times) => times[key]))
  const pick = (frames: FrameTimes[], key: keyof FrameTimes) => median(frames.map((frame) => frame[key]))
  const frameAfterRead = (frames: FrameTimes[]) =>
    median(frames.map((frame) => frame.readMs + frame.applyMs + frame.renderMs))
  const allFrames = scenarios.flatMap((scenario) => scenario.frames)
  const formattedMax = Math.max(...allFrames.map((frame) => frame.rowsFormatted))
  const tableRowsMax = Math.max(...allFrames.map((frame) => frame.tableRows))
  const fits = allFrames.every((frame) => frame.rowsFormatted <= frame.tableRows)

  const recentRows = input.recent.map(
    (run) => `| \`recent${run.label}\` | ${formatMs(run.wallMs)} | ${formatMs(run.cpuMs)} | ${run.lines} |`,
  )
  const scenarioRows = scenarios.map(({ label, frames }) => {
    const cells = [
      pick(frames, 'fetched'),
      pick(frames, 'redisMs'),
      pick(frames, 'readMs'),
      pick(frames, 'applyMs'),
      pick(frames, 'renderMs'),
      frameAfterRead(frames),
      pick(frames, 'tickMs'),
    ]
    const [fetched, ...times] = cells
    return `| ${label} | ${Math.round(fetched as number)} | ${times.map(formatMs).join(' | ')} |`
  })
  const recentTable =
    recentRows.length === 0
      ? []
      : ['| command | wall ms (median) | CPU ms user+sys (median) | lines printed |', '| --- | ---: | ---: | ---: |', ...recentRows, '']
  const fetchTable =
    fetches.length === 0
      ? []
      : [
          `| read step, without the view | CPU ms (median of ${fetches.length}) |`,
          '| --- | ---: |',
          `| fetch as strings: MULTI HGETALL + LRANGE 0 ${LIVE_COMPLETED_LIMIT - 1} + GET (ioredis) | ${formatMs(pickFetch('fetchMs'))} |`,
          `| fetch as Buffers: the same with \`hgetallBuffer\` + \`lrangeBuffer\` | ${formatMs(pickFetch('fetchBuffersMs'))} |`,
          `| fetch as \`tracker.read\` does: \`callBuffer('HGETALL')\` (a flat array) + \`lrangeBuffer\` | ${formatMs(pickFetch('fetchFlatMs'))} |`,
          `| decode: \`decodeTask\` of ${ACTIVE_COUNT + LIVE_COMPLETED_LIMIT} records | ${formatMs(pickFetch('decodeMs'))} |`,
          '',
        ]
  const table = [
    ...recentTable,
    ...fetchTable,
    `| live frame (${settings.width}x${settings.height}), median of ${frameCount} | active records fetched | Redis CPU ms of the read | read | apply | render | frame after a read | frame between reads |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...scenarioRows,
  ].join('\n')

  const verdicts = scenarios.map(({ label, frames }) => {
    const frameMs = frameAfterRead(frames)
    const outcome = frameMs < FRAME_GOAL_MS ? 'met' : 'MISSED'
    return `- frame after a read, ${label}: ${formatMs(frameMs)} ms CPU (goal < ${FRAME_GOAL_MS} ms): ${outcome}`
  })
  const tickMs = median(allFrames.map((frame) => frame.tickMs))
  verdicts.push(
    `- frame between reads: ${formatMs(tickMs)} ms CPU (goal < ${FRAME_GOAL_MS} ms): ${tickMs < FRAME_GOAL_MS ? 'met' : 'MISSED'}`,
    `- rows formatted: at most ${formattedMax} per frame for ${tableRowsMax} request rows on screen, out of ${ACTIVE_COUNT} active and ${LIVE_COMPLETED_LIMIT} completed: ${fits ? 'only visible rows' : 'MORE THAN FIT'}`,
  )
  const verdict = verdicts.join('\n')

  const markdown = `# Reader benchmark, ${new Date().toISOString().slice(0, 10)}

\`npx tsup && npx tsx bench/reader.ts --runs ${settings.runs} --frames ${settings.frames} --width ${settings.width} --height ${settings.height}\`

- Machine: ${facts.cores} cores, ${facts.cpuModel}, Linux ${facts.kernel}
- Node ${facts.nodeVersion}, Redis ${input.redisVersion}, commit ${facts.commit}
- Data: ${ACTIVE_COUNT} active records in \`processors\` (${Math.round(input.seeded.activeBytes)} bytes each on average) and ${COMPLETED_COUNT} completed records in \`past_tasks\` (${Math.round(input.seeded.completedBytes)} bytes), with the fields and headers of the recorder's records.
- \`recent\`: \`taskset -c ${MEASURED_CORE} /usr/bin/time node bin/web-top-cli.js recent --tracker-url …\` with stdout to a pipe (not a terminal, so every row is printed), median of ${settings.runs} runs after one warm-up. Wall time includes Node's start-up; CPU time is user + system of the child from \`/usr/bin/time\` (10 ms resolution).
- Read steps: the read's commands sent with a plain ioredis client, as strings, as Buffers, and as Buffers without ioredis's \`hgetall\` reply transformer (which turns the reply into an object of 10,000 keys), and \`decodeTask\` of every record, median of ${fetches.length} after ${WARMUP_FRAMES} warm-up runs, measured before the frames so that their garbage is collected apart.
- Live frame: in this process, pinned to core ${MEASURED_CORE}, \`process.cpuUsage()\` around each step of a resync: \`tracker.read\` with the view's \`DecodeCache\`, \`LiveState.finishResync\`, \`renderLiveFrame\` right after, and \`renderLiveFrame\` once more on the same state (the frame drawn each second and on updates). The live view reads ${LIVE_COMPLETED_LIMIT} completed records (\`LIVE_COMPLETED_LIMIT\`). Each scenario: median of ${frameCount} frames after ${WARMUP_FRAMES} warm-up frames.
  - first frame: a new \`LiveState\` and an empty cache for every frame, so every record is decoded and every task's facts are computed;
  - full read: what the view does at its first read and after the update stream came back: MULTI HGETALL + LRANGE + GET;
  - light read (\`changedOnly: true\`), what the view does at the other resyncs while the stream is connected: a script returns the field names and value lengths of \`processors\`, HMGET fetches the fields that are new to the cache or changed length and one of ${VERIFY_SLICES} slices of the others (\`VERIFY_SLICES\`, the next slice at each read), then GET of \`last_cleared_at\` (no LRANGE: the completed records came as end events on the connected update stream);
  - light read with the completed list: every ${VERIFY_SLICES}th light read, the same plus LRANGE 0 ${LIVE_COMPLETED_LIMIT - 1};
  - each read kind keeps one view, filled by one full read first. Before each read, the benchmark rewrites that share of the active records with a new \`updated_at\` (same length), replaces a quarter as many by new records (HDEL + HSET), and pushes a tenth as many completed records (LPUSH + LTRIM to ${COMPLETED_COUNT}), then applies the rewritten, new and completed records to the view's state as the update stream would. These writes and updates are not measured.
- Active records fetched: records the read brought from Redis; the light read takes the others from the cache.
- Redis CPU: \`used_cpu_user\` + \`used_cpu_sys\` of \`INFO cpu\` on the benchmark's own \`redis-server\` (core ${REDIS_CORE}) before and after the read, including the second \`INFO\`. It is not in the other columns.
- Rows formatted are the distinct tasks passed to a column's \`value\`; request rows on screen are counted in the rendered lines.

${table}

${verdict}
`
  return { table: `${table}\n\n${verdict}`, markdown }
}

async function main(): Promise<void> {
  const settings = readSettings()
  if (!settings.skipRecent) readFileSync(join(REPO_DIR, 'dist/cli.js')) // the child runs the build: fail early without one
  // Read before pinning, which leaves this process one core.
  const facts = readMachineFacts(REPO_DIR)
  pinSelf(MEASURED_CORE)
  const redis = await startRedis(REDIS_CORE)
  try {
    const seeded = await seedRedis(redis.client, Date.now())
    const redisVersion = await readRedisVersion(redis.client)
    const recent = settings.skipRecent
      ? []
      : [
          measureRecent(redis.url, '', [], settings.runs),
          measureRecent(redis.url, ' --limit 50', ['--limit', '50'], settings.runs),
        ]
    const churn = new RecordChurn(redis.client, seeded.activeIds)
    const { fetches, scenarios } = await measureScenarios(redis.url, churn, settings)
    const report = buildReport({ settings, facts, redisVersion, seeded, recent, fetches, scenarios })
    console.log(report.table)
    if (settings.skipRecent) return
    const dir = join(REPO_DIR, 'bench/results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `reader-${new Date().toISOString().slice(0, 10)}.md`)
    writeFileSync(file, report.markdown)
    console.log(`\nwrote ${file}`)
  } finally {
    await redis.close()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
