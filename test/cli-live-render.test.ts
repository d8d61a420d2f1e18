import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, parseColumnList } from '../src/cli/columns'
import { buildCurlCommand, quoteForShell, renderDetailLines } from '../src/cli/detail'
import { createViewSettings, type ViewSettings } from '../src/cli/live-input'
import { planTables, shareRows } from '../src/cli/live-layout'
import { KEY_HELP, renderLiveFrame, type FrameInput, type LiveData } from '../src/cli/live-render'
import { sanitizeText } from '../src/util/sanitize'
import { StatsWindow } from '../src/cli/stats'
import { buildProcessRows } from '../src/cli/live-header'
import { textWidth } from '../src/cli/text-width'
import { decodeHeartbeat } from '../src/trackers/heartbeat'
import type { HttpTask } from '../src/task/http-task'
import { getCompletedKey, getTaskKey } from '../src/task/derived'
import { formatIsoTime } from '../src/task/time'

const NOW = Date.parse('2026-12-04T15:01:00Z')

const HAS_CURL = spawnSync('curl', ['--version']).status === 0
if (!HAS_CURL) console.warn('cli-live-render: the curl run is skipped because curl is not on PATH')

function task(index: number, fields: Partial<HttpTask> = {}): HttpTask {
  return {
    task_id: index,
    task_name: index % 2 === 0 ? '/path/:n' : '/other',
    host_name: `web-${index % 2}`,
    process_id: 100 + (index % 3),
    thread_id: 0,
    processor_name: `worker-${index}`,
    started_at: formatIsoTime(NOW - 1000 * (index + 1)),
    method: 'GET',
    path: `/path/${index}`,
    client_ip_address: '127.0.0.1',
    request_headers: [['USER-AGENT', 'curl/8.0']],
    ...fields,
  }
}

function completedTask(index: number, status = 200): HttpTask {
  return task(100 + index, { ended_at: formatIsoTime(NOW - index * 1000), status_code: status })
}

function data(activeCount: number, completedCount: number, extra: Partial<LiveData> = {}): LiveData {
  const completed = Array.from({ length: completedCount }, (_, i) => completedTask(i, i % 10 === 0 ? 503 : 200))
  const stats = new StatsWindow(60_000, NOW - 60_000)
  for (const each of completed) stats.add(each, NOW)
  return {
    nowMs: NOW,
    active: Array.from({ length: activeCount }, (_, i) => ({ task: task(i), orphaned: false })),
    completed,
    figures: stats.figures(NOW),
    routes: stats.routeFigures(NOW),
    hosts: 2,
    processes: 3,
    heartbeats: { live: [], stalePrefixes: [] },
    orphansByPrefix: new Map(),
    lastUpdateMs: NOW,
    skipped: 0,
    skipReasons: [],
    skippedUpdates: 0,
    updateSkipReasons: [],
    ...extra,
  }
}

/** Returns the arguments that `sh` passes to a command line, one per element. */
function shellArguments(commandLine: string): string[] {
  const output = execFileSync('sh', ['-c', `printf '%s\\0' ${commandLine}`], { encoding: 'utf8' })
  return output.split('\0').slice(0, -1)
}

function frameInput(liveData: LiveData, fields: Partial<FrameInput> = {}, settings: Partial<ViewSettings> = {}): FrameInput {
  return {
    data: liveData,
    settings: { ...createViewSettings(), ...settings },
    source: { kind: 'stream', connected: true },
    trackerUrl: 'redis://:***@127.0.0.1:6380',
    width: 120,
    height: 40,
    activeColumns: parseColumnList(DEFAULT_ACTIVE_COLUMNS),
    completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
    completedLimit: 500,
    thresholds: { slowAfterMs: 5_000, stallAfterMs: 30_000 },
    colour: false,
    interactive: true,
    notices: [],
    ...fields,
  }
}

describe('renderLiveFrame', () => {
  it('shows the meters above the tables', () => {
    const lines = renderLiveFrame(frameInput(data(2, 20))).lines
    expect(lines[0]).toMatch(/^web-top {2}redis:\/\/:\*\*\*@127\.0\.0\.1:6380 {2}\d\d:\d\d:\d\d$/)
    expect(lines[1]).toBe('Hosts 2  Processes 3  Active 2  Completed 0.33/s (20 in the last 60s)')
    const warmingUp = data(0, 20, { figures: { ...data(0, 20).figures, coveredMs: 20_000 } })
    expect(renderLiveFrame(frameInput(warmingUp)).lines[1]).toContain('(20 in 20s; window 60s)')
    const starting = data(0, 3, { figures: { ...data(0, 3).figures, coveredMs: 400 } })
    expect(renderLiveFrame(frameInput(starting)).lines[1]).toContain('Completed -/s (3 in under 1s; window 60s)')
    expect(lines[2]).toMatch(/^Duration p50 \S+ {2}p95 \S+ {2}p99 \S+ {2}Errors 5xx 10\.0% {2}4xx 0\.0%$/)
    expect(lines[3]).toMatch(/^Status 2xx 18 {2}3xx 0 {2}4xx 0 {2}5xx 2 {2}Updated \d\d:\d\d:\d\d {2}figures from task_updates$/)
    expect(lines[4]).toBe('Active HTTP requests (2)')
    expect(lines.at(-1)).toContain('q quit  p pause  s sort')
  })

  it('names the source of the figures', () => {
    const polling = renderLiveFrame(frameInput(data(0, 1), { source: { kind: 'polling', intervalMs: 2_000 } })).lines
    expect(polling[3]).toContain('figures from past_tasks polling every 2.00s (no update stream)')
    const down = renderLiveFrame(
      frameInput(data(0, 1), { source: { kind: 'stream', connected: false, sinceMs: NOW - 3_000, reason: 'x' } }),
    ).lines
    expect(down[3]).toContain('DISCONNECTED for 3.00s, reconnecting')
  })

  it('moves the source to its own line when narrow', () => {
    const polling = renderLiveFrame(frameInput(data(0, 1), { source: { kind: 'polling', intervalMs: 2_000 }, width: 80 })).lines
    expect(polling[3]).toMatch(/^Status 2xx \d+ {2}3xx 0 {2}4xx 0 {2}5xx \d+ {2}Updated \d\d:\d\d:\d\d$/)
    expect(polling[4]).toBe('figures from past_tasks polling every 2.00s (no update stream)')
    const down = renderLiveFrame(
      frameInput(data(0, 1), { source: { kind: 'stream', connected: false, sinceMs: NOW - 3_000, reason: 'x' }, width: 80 }),
    ).lines
    expect(down[4]).toBe('DISCONNECTED for 3.00s, reconnecting')
    expect(down[5]).toBe('Active HTTP requests (0)')
    const downInColour = renderLiveFrame(
      frameInput(data(0, 1), { source: { kind: 'stream', connected: false, sinceMs: NOW - 3_000, reason: 'x' }, width: 80, colour: true }),
    ).lines
    expect(downInColour[4]).toBe('\x1b[31mDISCONNECTED for 3.00s, reconnecting\x1b[0m')
    const streaming = renderLiveFrame(frameInput(data(0, 1), { width: 72 })).lines
    expect(streaming[3]).toMatch(/Updated \d\d:\d\d:\d\d$/)
    expect(streaming[4]).toBe('Active HTTP requests (0)')
  })

  it('fits the terminal height and width', () => {
    for (const [width, height] of [
      [120, 30],
      [80, 20],
      [40, 10],
      [20, 4],
    ] as const) {
      const lines = renderLiveFrame(frameInput(data(40, 200), { width, height })).lines
      expect(lines.length).toBeLessThanOrEqual(height)
      for (const line of lines) expect(textWidth(line)).toBeLessThanOrEqual(width)
    }
  })

  it('shows active rows on a 40x10 terminal', () => {
    const lines = renderLiveFrame(frameInput(data(4, 20), { width: 40, height: 10 })).lines
    expect(lines).toHaveLength(10)
    expect(lines[0]).toMatch(/^web-top /)
    expect(lines.some((line) => line.startsWith('Hosts '))).toBe(false)
    expect(lines[1]).toBe('Active HTTP requests (4, 3 shown)')
    // The longest-running requests come first.
    for (const path of ['/path/3', '/path/2', '/path/1']) {
      expect(lines.some((line) => line.includes(path))).toBe(true)
    }
    expect(lines.some((line) => line.startsWith('Completed HTTP responses'))).toBe(true)
  })

  it('drops the processes before the meters on a short terminal', () => {
    const heartbeats = { live: [], stalePrefixes: ['web-0/99-0-1.', 'web-1/98-0-1.'] }
    const liveData = data(4, 20, { heartbeats })
    const tall = renderLiveFrame(frameInput(liveData, { height: 40 })).lines
    expect(tall.some((line) => line.startsWith('Recording processes'))).toBe(true)
    const short = renderLiveFrame(frameInput(liveData, { height: 14 })).lines
    expect(short.some((line) => line.startsWith('Recording processes'))).toBe(false)
    expect(short[1]).toMatch(/^Hosts /)
    expect(short.filter((line) => line.includes('/path/')).length).toBeGreaterThanOrEqual(3)
  })

  it('pins stalled requests at the top, marked, and marks slow ones', () => {
    const active = [
      { task: task(1, { started_at: formatIsoTime(NOW - 1_000), path: '/fast' }), orphaned: false },
      { task: task(2, { started_at: formatIsoTime(NOW - 6_000), path: '/slow' }), orphaned: false },
      { task: task(3, { started_at: formatIsoTime(NOW - 45_000), path: '/stuck' }), orphaned: false },
    ]
    // Sorted by Path, /stuck would come last; stalled rows stay on top.
    const lines = renderLiveFrame(frameInput(data(0, 0, { active }), {}, { sortColumn: 'Path' })).lines
    const rows = lines.slice(6, 9)
    expect(lines[4]).toBe('Active HTTP requests (3)  1 STALLED  sorted by Path')
    expect(lines[5]).toMatch(/^State +IP/)
    expect(rows[0]).toMatch(/^STALLED .*\/stuck/)
    expect(rows[1]).toMatch(/^- +127\.0\.0\.1 .*\/fast/)
    expect(rows[2]).toMatch(/^slow +127\.0\.0\.1 .*\/slow/)
  })

  it('shows no duration for a start far ahead of the clock', () => {
    const active = [
      { task: task(1, { started_at: formatIsoTime(NOW - 2_000), path: '/now' }), orphaned: false },
      { task: task(2, { started_at: formatIsoTime(NOW + 3_600_000), path: '/ahead' }), orphaned: false },
    ]
    const lines = renderLiveFrame(frameInput(data(0, 0, { active }))).lines
    const header = lines[5] ?? ''
    const durationColumn = header.indexOf('Duration')
    const rowOf = (path: string) => lines.find((line) => line.includes(path)) ?? ''
    expect(durationColumn).toBeGreaterThan(-1)
    expect(rowOf('/now').slice(durationColumn).trimStart()).toMatch(/^2\.00s/)
    expect(rowOf('/ahead').slice(durationColumn).trimStart()).toMatch(/^- /)
  })

  it('paints slow rows red and the selected row reversed', () => {
    const active = [
      { task: task(1, { started_at: formatIsoTime(NOW - 6_000), path: '/slow' }), orphaned: false },
      { task: task(2, { path: '/picked' }), orphaned: false },
    ]
    const frame = renderLiveFrame(frameInput(data(0, 0, { active }), { colour: true }, { selectedKey: 'a:id:2@web-0/102/0' }))
    expect(frame.lines.find((line) => line.includes('/slow'))).toMatch(/^\x1b\[31m/)
    expect(frame.lines.find((line) => line.includes('/picked'))).toMatch(/^\x1b\[7m/)
  })

  it('shows stopped processes and orphans', () => {
    const active = [{ task: task(1, { path: '/orphan' }), orphaned: true }]
    const heartbeats = {
      live: [
        {
          processor_id_prefix: 'web-1/101-0-1.',
          host_name: 'web-1',
          process_id: 101,
          thread_id: 0,
          processor_name: 'node:101',
          started_at: formatIsoTime(NOW - 90_000),
          updated_at: formatIsoTime(NOW - 1_000),
          ttl_ms: 15_000,
          event_loop_delay_p99_ms: 12.5,
          heap_used_bytes: 30 * 1024 * 1024,
          rss_bytes: 80 * 1024 * 1024,
          requests_in_flight: 3,
          requests_completed: 1200,
          records_dropped: 0,
        },
      ],
      stalePrefixes: ['web-0/99-0-1.'],
    }
    const liveData = data(0, 0, { active, heartbeats, orphansByPrefix: new Map([['web-0/99-0-1.', 1]]) })
    const lines = renderLiveFrame(frameInput(liveData)).lines
    expect(lines[4]).toBe('Recording processes (1 up, 1 gone)')
    expect(lines[5]).toMatch(/^Process +State +Up +Loop p99 +Heap +RSS +In flight +Done +Dropped +Orphaned$/)
    expect(lines[6]).toMatch(/^web-1\/101 +up +1m30s +12\.5ms +30 MiB +80 MiB +3 +1200 +0 +0$/)
    expect(lines[7]).toMatch(/^web-0\/99 +gone( +-){7} +1$/)
    expect(lines.find((line) => line.includes('/orphan'))).toMatch(/^ORPHANED /)
  })

  it('shows gone processes first when the table is cut', () => {
    const live = Array.from({ length: 4 }, (_, i) => ({
      processor_id_prefix: `web-1/${200 + i}-0-1.`,
      host_name: 'web-1',
      process_id: 200 + i,
      thread_id: 0,
      processor_name: `node:${200 + i}`,
      started_at: formatIsoTime(NOW - 90_000),
      updated_at: formatIsoTime(NOW - 1_000),
      ttl_ms: 15_000,
      event_loop_delay_p99_ms: 1,
      heap_used_bytes: 1024 * 1024,
      rss_bytes: 1024 * 1024,
      requests_in_flight: 0,
      requests_completed: 10,
      records_dropped: 0,
    }))
    const heartbeats = { live, stalePrefixes: ['web-0/99-0-1.', 'web-0/98-0-1.', 'web-0/97-0-1.'] }
    const lines = renderLiveFrame(frameInput(data(0, 0, { heartbeats }), { height: 24 })).lines
    expect(lines[4]).toBe('Recording processes (4 up, 3 gone, 4 shown, gone first)')
    expect(lines[6]).toMatch(/^web-0\/99 +gone /)
    expect(lines[7]).toMatch(/^web-0\/98 +gone /)
    expect(lines[8]).toMatch(/^web-0\/97 +gone /)
    expect(lines[9]).toMatch(/^web-1\/200 +up /)

    const tall = renderLiveFrame(frameInput(data(0, 0, { heartbeats }), { height: 60 })).lines
    expect(tall[4]).toBe('Recording processes (4 up, 3 gone)')
    expect(tall[6]).toMatch(/^web-1\/200 +up /)
  })

  it('shows the route board instead of the completed table', () => {
    const lines = renderLiveFrame(frameInput(data(3, 20), {}, { showRoutes: true })).lines
    const title = lines.findIndex((line) => line.startsWith('Routes in the last 60s'))
    expect(title).toBeGreaterThan(0)
    expect(lines[title + 1]).toMatch(/^Route +In flight +Req\/s +p50 +p95 +p99 +5xx +4xx +Count$/)
    expect(lines[title + 2]).toMatch(/^\/path\/:n +2 +0\.17 /)
    expect(lines[title + 3]).toMatch(/^\/other +1 +0\.17 /)
    expect(lines.some((line) => line.startsWith('Completed HTTP responses'))).toBe(false)
  })

  it('puts in-flight requests without a route under the route of their path', () => {
    const routed = { ...completedTask(1), task_name: '/slow', method: 'GET', path: '/slow' }
    const stats = new StatsWindow(60_000, NOW - 60_000)
    stats.add(routed, NOW)
    const running = [
      { task: task(1, { task_name: null, method: 'GET', path: '/slow' }), orphaned: false },
      { task: task(2, { task_name: null, method: 'GET', path: '/new' }), orphaned: false },
    ]
    const liveData = data(0, 0, { active: running, completed: [routed], routes: stats.routeFigures(NOW) })
    const lines = renderLiveFrame(frameInput(liveData, {}, { showRoutes: true })).lines

    expect(lines.find((line) => line.startsWith('/slow'))).toMatch(/^\/slow +1 /)
    expect(lines.find((line) => line.startsWith('(route not known yet)'))).toMatch(/^\(route not known yet\) +1 /)
    expect(lines.some((line) => line.startsWith('(no route)'))).toBe(false)
  })

  it('finds the route of a path that left the completed list', () => {
    // The view keeps the newest 500 completed requests, while the window contains the last 60 s.
    const routed = { ...completedTask(1), task_name: '/slow', method: 'GET', path: '/slow' }
    const stats = new StatsWindow(60_000, NOW - 60_000)
    stats.add(routed, NOW)
    const running = [1, 2, 3].map((id) => ({ task: task(id, { task_name: null, method: 'GET', path: '/slow' }), orphaned: false }))
    const liveData = data(0, 0, {
      active: running,
      completed: [],
      routes: stats.routeFigures(NOW),
      routeOfPath: (methodPath: string) => stats.routeOfPath(methodPath),
    })
    const lines = renderLiveFrame(frameInput(liveData, {}, { showRoutes: true })).lines

    expect(lines.find((line) => line.startsWith('/slow'))).toMatch(/^\/slow +3 /)
    expect(lines.some((line) => line.startsWith('(route not known yet)'))).toBe(false)
  })

  it('follows a selected request to its completed row', () => {
    const running = task(7)
    const ended = { ...running, ended_at: formatIsoTime(NOW), status_code: 200 }
    const input = frameInput(data(0, 0, { completed: [ended] }), {}, { selectedKey: `a:${getTaskKey(running)}` })
    const lines = renderLiveFrame(input).lines

    expect(input.settings.selectedKey).toBe(`c:${getCompletedKey(ended)}`)
    expect(lines.find((line) => line.includes(ended.path as string))).toMatch(/\x1b\[7m/)
  })

  it('groups active requests by host', () => {
    const lines = renderLiveFrame(frameInput(data(4, 0), {}, { grouping: 'host' })).lines
    expect(lines[4]).toBe('Active HTTP requests (4)  grouped by host')
    expect(lines.slice(6, 12).map((line) => line.replace(/ .*/, (rest) => (rest.includes('(') ? rest : '')))).toEqual([
      'Host web-0 (2)',
      '127.0.0.1',
      '127.0.0.1',
      'Host web-1 (2)',
      '127.0.0.1',
      '127.0.0.1',
    ])
  })

  it('applies the text filter and shows it', () => {
    const lines = renderLiveFrame(frameInput(data(5, 5), {}, { filterText: '/path/3' })).lines
    expect(lines[4]).toBe('Active HTTP requests (1 of 5)')
    const completed = renderLiveFrame(frameInput(data(5, 5), {}, { filterText: '/path/102' })).lines
    expect(completed).toContain('Active HTTP requests (0 of 5)')
    expect(completed).toContain('Completed HTTP responses (1 of 5)')
    expect(lines.some((line) => line.startsWith('Filter: /path/3'))).toBe(true)
  })

  it('keeps columns aligned with wide characters and emoji', () => {
    const active = [
      { task: task(1, { path: '/中文/🚀' }), orphaned: false },
      { task: task(2, { path: '/plain/ab' }), orphaned: false },
    ]
    const lines = renderLiveFrame(frameInput(data(0, 0, { active }))).lines
    const rows = lines.filter((line) => line.includes('/中文') || line.includes('/plain'))
    const durationColumn = (line: string) => textWidth(line.slice(0, line.search(/\d+\.\d\ds/)))
    expect(durationColumn(rows[0] as string)).toBe(durationColumn(rows[1] as string))
  })

  it('neutralises a hostile user agent', () => {
    const hostile = task(0, { request_headers: [['USER-AGENT', '\x1b]0;pwned\x07\x1b[2J']] })
    const frame = renderLiveFrame(frameInput(data(0, 0, { active: [{ task: hostile, orphaned: false }] }))).lines
    expect(frame.join('\n')).toContain('␛]0;pwned␇␛[2J')
    expect(frame.join('\n')).not.toContain('\x1b')
  })

  it('prints everything when the output is not a terminal', () => {
    const lines = renderLiveFrame(
      frameInput(data(30, 300), { width: Infinity, height: Infinity, interactive: false }),
    ).lines
    expect(lines).toHaveLength(4 + 2 + 30 + 2 + 300)
  })

  it('shows the detail pane and the help', () => {
    const detail = renderLiveFrame(frameInput(data(1, 0), {}, { detail: task(0, { method: 'POST' }) })).lines
    expect(detail[4]).toMatch(/^POST \/path\/0 {2}\(active for 1\.00s\)$/)
    expect(detail.at(-1)).toBe('Esc close  ↑↓ PgUp PgDn Home End scroll  q quit')
    const help = renderLiveFrame(frameInput(data(1, 0), {}, { showHelp: true })).lines
    expect(help[4]).toBe('Keys')
    expect(help.some((line) => line.includes('pause: freeze the screen'))).toBe(true)
  })

  it('keeps the help key in an 80-column footer', () => {
    const narrow = renderLiveFrame(frameInput(data(1, 0), { width: 80, height: 24 })).lines
    expect(narrow.at(-1)).toBe('q quit  p pause  s sort  r rev  / filter  h group  t routes  ↑↓ Enter  ? help')
    const wide = renderLiveFrame(frameInput(data(1, 0), { width: 120, height: 24 })).lines
    expect(wide.at(-1)).toContain('↑↓ select  Enter detail  ? help')
  })

  it('cuts the notices to one row', () => {
    const error =
      'Read failed, showing the last data: Failed to read tasks: Redis at redis://127.0.0.1:6379 is not connected ' +
      '(the connection is reconnecting). Check that Redis is running and reachable at this URL.'
    const notices = [{ text: error, colour: 'red' as const }, { text: 'Update stream lost: closed; reconnecting', colour: 'red' as const }]
    for (const width of [220, 100, 10]) {
      const lines = renderLiveFrame(frameInput(data(1, 0), { width, height: 24, notices })).lines
      expect(lines).toHaveLength(24)
      const status = lines.at(-2) ?? ''
      expect(status, `width ${width}`).toMatch(/^Read f.*…$/)
      expect(textWidth(status), `width ${width}`).toBe(width)
      expect(lines.at(-3), `width ${width}`).not.toContain('reconnecting')
    }
    // The first notice fits in 220 columns, and the second one is cut.
    const wide = renderLiveFrame(frameInput(data(1, 0), { width: 220, height: 24, notices })).lines
    expect(wide.at(-2)).toMatch(/this URL\. {2}Update stream lost: c[^…]*…$/)

    // Output that is not a terminal gets every notice whole, on one line.
    const plain = renderLiveFrame(
      frameInput(data(1, 0), { width: Infinity, height: Infinity, interactive: false, notices }),
    ).lines
    expect(plain.at(-1)).toBe(`${error}  Update stream lost: closed; reconnecting`)
  })

  it('wraps the help to the screen width', () => {
    for (const width of [80, 40]) {
      // Tall enough for the whole help, which then needs no scrolling.
      const help = renderLiveFrame(frameInput(data(1, 0), { width, height: 60 }, { showHelp: true })).lines
      for (const line of help) expect(textWidth(line)).toBeLessThanOrEqual(width)
      const words = help.join(' ').split(/\s+/).join(' ')
      for (const [keys, meaning] of KEY_HELP) {
        expect(words).toContain(keys)
        expect(words).toContain(meaning)
      }
    }
  })
})

describe('sort columns', () => {
  it('leaves out columns without values', () => {
    const frame = renderLiveFrame(frameInput(data(3, 5)))

    expect(frame.listSortColumns()[0]).toBe('Duration')
    expect(frame.listSortColumns()).toContain('Path')
    expect(frame.listSortColumns()).not.toContain('Cty')
  })

  it('offers Cty once a request has a country', () => {
    const fromProxy = completedTask(1)
    fromProxy.request_headers = [['CF-IPCOUNTRY', 'JP']]
    fromProxy.tags = { 'web_top.client_ip_source': 'proxy' }
    const frame = renderLiveFrame(frameInput(data(3, 5, { completed: [fromProxy] })))

    expect(frame.listSortColumns()).toContain('Cty')
  })

  it('says when the sort column is hidden', () => {
    const lines = renderLiveFrame(frameInput(data(3, 5), { width: 60 }, { sortColumn: 'User agent' })).lines
    const completedTitle = lines.find((line) => line.startsWith('Completed HTTP responses')) ?? ''
    const completedHeader = lines[lines.indexOf(completedTitle) + 1] ?? ''

    expect(completedHeader).not.toContain('User agent')
    expect(completedTitle).toContain('sorted by User agent (hidden)')
  })

  it('sorts addresses and paths by their numbers', () => {
    const addresses = ['10.0.0.100', '10.0.0.9', '1.2.3.4', '10.0.0.10']
    const paths = ['/users/100', '/users/9', '/users/7', '/users/10']
    const active = addresses.map((address, index) => ({
      task: task(index, { started_at: formatIsoTime(NOW - 1_000), client_ip_address: address, path: paths[index] }),
      orphaned: false,
    }))
    const byIp = renderLiveFrame(frameInput(data(0, 0, { active }), {}, { sortColumn: 'IP' })).lines.slice(6, 10)
    expect(byIp.map((line) => line.split(/\s+/)[0])).toEqual(['1.2.3.4', '10.0.0.9', '10.0.0.10', '10.0.0.100'])
    const byPath = renderLiveFrame(frameInput(data(0, 0, { active }), {}, { sortColumn: 'Path' })).lines.slice(6, 10)
    expect(byPath.map((line) => /\/users\/\d+/.exec(line)?.[0])).toEqual(['/users/7', '/users/9', '/users/10', '/users/100'])
  })

  it('names a status filter it cannot read', () => {
    for (const [filterText, reason] of [
      ['599-500', 'Invalid status range "599-500": its first code is greater than its last'],
      ['200-', 'Invalid status "200-": expected a code (404), a class (5xx) or a range (400-499)'],
    ]) {
      const lines = renderLiveFrame(frameInput(data(3, 5), { width: 200 }, { filterText })).lines
      expect(lines.at(-2)).toBe(`Filter: ${filterText} (${reason}; matched as text)`)
    }
    for (const filterText of ['500-599', 'x', '-', '2024-01-05', '555-1234']) {
      const lines = renderLiveFrame(frameInput(data(3, 5), { width: 200 }, { filterText })).lines
      expect(lines.at(-2)).toBe(`Filter: ${filterText}`)
    }
  })

  it('names the sort only on a table that has its column', () => {
    const lines = renderLiveFrame(frameInput(data(3, 5), {}, { sortColumn: 'Resp' })).lines

    expect(lines.find((line) => line.startsWith('Active HTTP requests'))).not.toContain('sorted by')
    expect(lines.find((line) => line.startsWith('Completed HTTP responses'))).toContain('sorted by Resp')
  })
})

describe('detail pane', () => {
  const record: HttpTask = {
    task_id: 'r-1',
    protocol: 'https',
    host: 'shop.example',
    method: 'POST',
    path: '/api/orders',
    uri: "/api/orders?token=[REDACTED]&q=it's",
    params: { token: '[REDACTED]', q: "it's" },
    request_headers: [
      ['HOST', 'shop.example'],
      ['AUTHORIZATION', '[REDACTED]'],
      ['USER-AGENT', "O'Brien \x1b[2J"],
      ['CONTENT-LENGTH', '12'],
      ['ACCEPT-ENCODING', 'gzip'],
    ],
    response_headers: [['Content-Type', 'application/json']],
    tags: { 'service.name': 'shop' },
    started_at: '2026-12-04T15:00:59Z',
    ended_at: '2026-12-04T15:01:00Z',
    status_code: 201,
  }

  it('builds a curl command that repeats the request, quoted for a POSIX shell', () => {
    expect(buildCurlCommand(record)).toBe(
      "curl -X POST -H 'Authorization: [REDACTED]' -H 'User-Agent: O'\\''Brien \x1b[2J' --compressed --globoff " +
        "'https://shop.example/api/orders?token=[REDACTED]&q=it'\\''s'",
    )
  })

  it('keeps the letter case of the method', () => {
    expect(buildCurlCommand({ ...record, method: 'patch', request_headers: [] })).toMatch(/^curl -X patch /)
    expect(buildCurlCommand({ ...record, method: 'head', request_headers: [] })).toMatch(/^curl -X head /)
  })

  it('builds the curl URL of a Python record', () => {
    const pythonRecord: HttpTask = {
      task_id: 140538974609616,
      method: 'GET',
      path: '/api/candles',
      host: null,
      uri: null,
      protocol: null,
      params: { pair: 'ETH-USDC', limit: '100', tag: ['a b', 'c&d'] },
      request_headers: [
        ['HOST', 'example.com'],
        ['USER-AGENT', 'python-requests/2.27.1'],
      ],
    }

    expect(buildCurlCommand(pythonRecord)).toBe(
      "curl -H 'User-Agent: python-requests/2.27.1' " +
        "'http://example.com/api/candles?pair=ETH-USDC&limit=100&tag=a+b&tag=c%26d'",
    )
  })

  it.each([
    ['https://example.com/api/candles?pair=ETH-USDC', 'https://example.com/api/candles?pair=ETH-USDC'],
    ['HTTP://other.example:8080/users/7', 'HTTP://other.example:8080/users/7'],
    ['ftp://files.example/x', 'https://example.com/ftp://files.example/x'],
    ['/api/candles', 'https://example.com/api/candles'],
  ])('builds the curl URL of uri %s', (uri, url) => {
    const task: HttpTask = { method: 'GET', host: 'example.com', uri, protocol: 'https', request_headers: [] }
    expect(buildCurlCommand(task)).toBe(`curl ${quoteForShell(url)}`)
  })

  it.skipIf(!HAS_CURL)('runs the curl command of a masked URL', async () => {
    const targets: string[] = []
    const server = createServer((req, res) => {
      targets.push(req.url ?? '')
      res.end('ok')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const uri = '/api/orders?token=[REDACTED]&q=1'
      const masked: HttpTask = { method: 'GET', host: `127.0.0.1:${port}`, uri, protocol: 'http', request_headers: [] }
      // Only PATH is passed on, so that no proxy variable sends curl elsewhere.
      const { stdout } = await promisify(execFile)('sh', ['-c', buildCurlCommand(masked)], {
        env: { PATH: process.env.PATH },
        timeout: 5_000,
      })
      expect(stdout).toBe('ok')
      expect(targets).toEqual([uri])
    } finally {
      server.close()
    }
  })

  it.each([
    ['user info', '127.0.0.1@evil.test'],
    ['a path', 'evil.test/x?'],
    ['a space', 'shop.test evil.test'],
  ])('keeps a Host with %s out of the curl URL', (_case, host) => {
    const hostile: HttpTask = { method: 'GET', host, uri: '/admin', protocol: 'http', request_headers: [] }
    expect(buildCurlCommand(hostile)).toBe(`curl -H ${quoteForShell(`Host: ${host}`)} http://localhost/admin`)
  })

  it.each(['shop.example', 'shop.example:8443', '127.0.0.1:3000', '[::1]:3000', 'my_host'])(
    'puts the Host %s in the curl URL',
    (host) => {
      const plain: HttpTask = { method: 'GET', host, uri: '/', protocol: 'http', request_headers: [] }
      expect(buildCurlCommand(plain)).toBe(`curl ${quoteForShell(`http://${host}/`)}`)
    },
  )

  it.each([40, 30, 24])('wraps the curl command to %d columns, ready to paste', (width) => {
    const lines = renderDetailLines(record, NOW, width)
    const start = lines.indexOf('Repeat with curl (the request body is not recorded)') + 1
    const curlLines = lines.slice(start)
    expect(curlLines.length).toBeGreaterThan(1)
    for (const line of curlLines) expect(textWidth(line)).toBeLessThanOrEqual(width)
    expect(curlLines[0]?.startsWith('  curl ')).toBe(true)
    expect(curlLines[0]?.endsWith(' \\')).toBe(true)
    // A POSIX shell reads the wrapped lines as the same arguments as the one-line command.
    const wrapped = curlLines.join('\n')
    const oneLine = sanitizeText(buildCurlCommand(record))
    expect(shellArguments(wrapped)).toEqual(shellArguments(oneLine))
    expect(shellArguments(oneLine)).toContain('User-Agent: O\'Brien ␛[2J')
  })

  it('shows the whole curl command in a narrow live view', () => {
    const shortRecord = { ...record, uri: '/api/orders', params: undefined }
    const lines = renderLiveFrame(frameInput(data(0, 0), { width: 40, height: 60 }, { detail: shortRecord })).lines
    const start = lines.findIndex((line) => line.startsWith('Repeat with curl')) + 1
    const curlLines = lines.slice(start).filter((line) => line.startsWith('  '))
    const pasted = curlLines.join('\n').replace(/ \\\n {4}/g, ' ').trim()
    expect(pasted).toBe(sanitizeText(buildCurlCommand(shortRecord)))
    expect(pasted.endsWith(' https://shop.example/api/orders')).toBe(true)
  })

  it('quotes only words that need it', () => {
    expect(quoteForShell('/a/b')).toBe('/a/b')
    expect(quoteForShell('a b')).toBe("'a b'")
    expect(quoteForShell("it's")).toBe("'it'\\''s'")
    expect(quoteForShell('$(rm -rf ~)')).toBe("'$(rm -rf ~)'")
  })

  it('lists every field, sanitised', () => {
    const lines = renderDetailLines(record, NOW)
    const text = lines.join('\n')
    for (const expected of [
      'task_id: r-1',
      'status_code: 201',
      'Request headers',
      '  AUTHORIZATION: [REDACTED]',
      'Response headers',
      '  Content-Type: application/json',
      'Query parameters',
      '  q: it\'s',
      'Tags',
      '  service.name: shop',
      'started_at: 2026-12-04T15:00:59Z',
    ]) {
      expect(text).toContain(expected)
    }
    expect(text).not.toContain('\x1b')
    expect(lines.at(-1)).toContain("'User-Agent: O'\\''Brien ␛[2J'")
  })
})

describe('shareRows', () => {
  it.each([
    [20, 3, 50, [3, 17]],
    [20, 50, 3, [17, 3]],
    [20, 50, 50, [10, 10]],
    [21, 50, 50, [11, 10]],
    [0, 5, 5, [0, 0]],
    [-3, 5, 5, [0, 0]],
    [4, 4, 50, [3, 1]],
    [4, 1, 50, [1, 3]],
    [2, 4, 50, [2, 0]],
  ] as const)('shares %d rows between %d and %d', (room, upper, lower, expected) => {
    expect(shareRows(room, upper, lower)).toEqual(expected)
  })
})

describe('planTables', () => {
  it('shows both tables when each gets a row', () => {
    expect(planTables(6, 1, 5, false)).toEqual({ active: true, lower: true, headers: true, activeRows: 1, lowerRows: 1 })
    expect(planTables(8, 5, 5, false)).toEqual({ active: true, lower: true, headers: true, activeRows: 3, lowerRows: 1 })
  })

  it('shows one table when the other would get no row', () => {
    expect(planTables(7, 5, 5, false)).toEqual({ active: true, lower: false, headers: true, activeRows: 5, lowerRows: 0 })
  })

  it('shows both empty tables on 4 rows', () => {
    expect(planTables(4, 0, 0, false)).toEqual({ active: true, lower: true, headers: true, activeRows: 0, lowerRows: 0 })
  })

  it('shows only the active table on 4 rows', () => {
    expect(planTables(4, 5, 5, false)).toEqual({ active: true, lower: false, headers: true, activeRows: 2, lowerRows: 0 })
  })

  it('shows the lower table when it has the selection', () => {
    expect(planTables(4, 5, 5, true)).toEqual({ active: false, lower: true, headers: true, activeRows: 0, lowerRows: 2 })
  })

  it('shows the lower table when no request is active', () => {
    expect(planTables(4, 0, 5, false)).toEqual({ active: false, lower: true, headers: true, activeRows: 0, lowerRows: 2 })
  })

  it('drops the column header on 2 rows', () => {
    expect(planTables(2, 5, 5, false)).toEqual({ active: true, lower: false, headers: false, activeRows: 1, lowerRows: 0 })
  })
})

describe('process table', () => {
  it('shows invalid heartbeat fields as -', () => {
    const heartbeat = decodeHeartbeat(
      JSON.stringify({
        processor_id_prefix: 'web-2/77-0-1.',
        host_name: 'web-2',
        process_id: -5,
        started_at: formatIsoTime(NOW - 1_000),
        requests_in_flight: 1e20,
        records_dropped: { a: 1 },
        rss_bytes: 'x',
      }),
    )
    expect(heartbeat).not.toBeNull()
    const [row] = buildProcessRows({ live: heartbeat === null ? [] : [heartbeat], stalePrefixes: [] }, new Map(), NOW)
    const cells = (row ?? []).map((cell) => cell.text)
    expect(cells[0]).toBe('web-2/77')
    expect(cells[5]).toBe('-')
    expect(cells[6]).toBe('-')
    expect(cells[8]).toBe('-')
  })
})
