import { describe, expect, it } from 'vitest'
import { DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, parseColumnList } from '../src/cli/columns'
import { createViewSettings } from '../src/cli/live-input'
import { renderLiveFrame, type LiveData } from '../src/cli/live-render'
import { orderActiveRows, type ActiveItem, type RowMark, type RowOrder } from '../src/cli/live-tables'
import { selectFirst } from '../src/cli/select-first'
import { StatsWindow } from '../src/cli/stats'
import { getTaskKey } from '../src/task/derived'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'

const NOW = Date.parse('2026-12-04T15:01:00Z')
const THRESHOLDS = { slowAfterMs: 5_000, stallAfterMs: 30_000 }
const ACTIVE_COLUMNS = parseColumnList(DEFAULT_ACTIVE_COLUMNS)
const METHODS = ['GET', 'POST', 'PUT', 'DELETE']

/** A deterministic pseudo-random generator (mulberry32), so a failure can be replayed. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Builds active items whose start times come from a few values, so many
 * rows tie, with some unreadable start times, some stalled (over 30 s) and
 * some orphaned.
 */
function buildItems(count: number, random: () => number): ActiveItem[] {
  return Array.from({ length: count }, (_, index) => {
    const ageMs = 1_000 * Math.floor(random() * 50)
    const started = random() < 0.05 ? 'not a time' : formatIsoTime(NOW - ageMs)
    const task: HttpTask = {
      task_id: `task-${index}`,
      host_name: `web-${index % 3}`,
      process_id: 100 + (index % 5),
      thread_id: 0,
      started_at: started,
      method: METHODS[Math.floor(random() * METHODS.length)] as string,
      path: `/path/${index % 7}`,
      client_ip_address: '10.0.0.1',
    }
    return { task, orphaned: random() < 0.05 }
  })
}

/** Reference order: the table's order written out as a stable full sort of plain values. */
function referenceOrder(items: readonly ActiveItem[], order: RowOrder): Array<{ rowKey: string; mark: RowMark }> {
  const rows = items
    .filter((item) => order.filterText === '' || (item.task.path ?? '').includes(order.filterText))
    .map((item) => {
      const startMs = Date.parse(item.task.started_at ?? '')
      const durationMs = Number.isNaN(startMs) ? undefined : NOW - startMs
      let mark: RowMark
      if (item.orphaned) mark = 'ORPHANED'
      else if ((durationMs ?? 0) >= THRESHOLDS.stallAfterMs) mark = 'STALLED'
      else if ((durationMs ?? 0) >= THRESHOLDS.slowAfterMs) mark = 'slow'
      // An unknown duration is undefined, which sorts last in either direction.
      let key: number | string | undefined
      if (order.sortColumn === 'Method') key = item.task.method ?? ''
      else if (order.sortColumn === 'Duration') key = durationMs === undefined ? undefined : -durationMs
      else key = Number.isNaN(startMs) ? Number.POSITIVE_INFINITY : startMs
      return { rowKey: `a:${getTaskKey(item.task)}`, mark, key }
    })
  const direction = order.sortReversed ? -1 : 1
  // Array.prototype.sort is stable, so equal keys keep the order of the items.
  rows.sort((a, b) => {
    const pinned = Number(b.mark === 'STALLED') - Number(a.mark === 'STALLED')
    if (pinned !== 0) return pinned
    if (a.key === undefined || b.key === undefined) return Number(a.key === undefined) - Number(b.key === undefined)
    if (typeof a.key === 'string' && typeof b.key === 'string') return direction * a.key.localeCompare(b.key)
    return a.key === b.key ? 0 : direction * (a.key < b.key ? -1 : 1)
  })
  return rows.map(({ rowKey, mark }) => ({ rowKey, mark }))
}

const ORDERS: RowOrder[] = [
  { sortColumn: undefined, sortReversed: false, filterText: '' },
  { sortColumn: undefined, sortReversed: true, filterText: '' },
  { sortColumn: 'Duration', sortReversed: false, filterText: '' },
  { sortColumn: 'Duration', sortReversed: true, filterText: '' },
  { sortColumn: 'Method', sortReversed: false, filterText: '' },
  { sortColumn: 'Method', sortReversed: true, filterText: '/path/3' },
  { sortColumn: undefined, sortReversed: false, filterText: '/path/1' },
]

describe('selectFirst', () => {
  it('matches a full sort for random keys with ties', () => {
    const random = createRandom(7)
    for (let round = 0; round < 50; round++) {
      const count = Math.floor(random() * 300)
      const keys = Array.from({ length: count }, () => Math.floor(random() * 20))
      const compare = (a: number, b: number) => (keys[a] as number) - (keys[b] as number) || a - b
      const sorted = Array.from({ length: count }, (_, index) => index).sort(compare)
      for (const limit of [0, 1, 2, 31, count - 1, count, count + 5]) {
        expect(selectFirst(count, limit, compare)).toEqual(sorted.slice(0, Math.max(0, limit)))
      }
    }
  })

  it('returns nothing for a negative limit', () => {
    expect(selectFirst(10, -1, (a, b) => a - b)).toEqual([])
  })
})

describe('orderActiveRows', () => {
  it('orders every row as a stable full sort', () => {
    const items = buildItems(2_000, createRandom(1))
    for (const order of ORDERS) {
      const rows = orderActiveRows(items, ACTIVE_COLUMNS, order, THRESHOLDS, NOW)
      const expected = referenceOrder(items, order)
      expect(rows.count).toBe(expected.length)
      expect(rows.all().map(({ rowKey, mark }) => ({ rowKey, mark }))).toEqual(expected)
    }
  })

  it('slices as the full sort does', () => {
    const items = buildItems(2_000, createRandom(2))
    for (const order of ORDERS) {
      const expected = referenceOrder(items, order)
      for (const [start, end] of [[0, 31], [0, 1], [5, 36], [100, 140], [400, 460], [0, 1_000], [1_990, 2_100], [3_000, 3_010]]) {
        // A new order for each slice, so that no full sort made before serves it.
        const rows = orderActiveRows(items, ACTIVE_COLUMNS, order, THRESHOLDS, NOW)
        const slice = rows.slice(start as number, end as number).map(({ rowKey, mark }) => ({ rowKey, mark }))
        expect(slice).toEqual(expected.slice(start, end))
      }
    }
  })

  it('pins stalled rows above the others', () => {
    // Newest first, with about 6 % of the rows over the stall threshold, which would sort them last.
    const items = buildItems(1_000, createRandom(3))
    const thresholds = { slowAfterMs: 5_000, stallAfterMs: 47_000 }
    const rows = orderActiveRows(items, ACTIVE_COLUMNS, ORDERS[1] as RowOrder, thresholds, NOW).slice(0, 200)
    const marks = rows.map((row) => row.mark === 'STALLED')
    const firstOther = marks.indexOf(false)
    expect(firstOther).toBeGreaterThan(0)
    expect(marks.slice(firstOther)).not.toContain(true)
  })

  it('finds the position of a row without a full sort', () => {
    const items = buildItems(1_000, createRandom(4))
    for (const order of ORDERS) {
      const expected = referenceOrder(items, order)
      const rows = orderActiveRows(items, ACTIVE_COLUMNS, order, THRESHOLDS, NOW)
      for (const position of [0, 1, Math.floor(expected.length / 2), expected.length - 1]) {
        const rowKey = (expected[position] as { rowKey: string }).rowKey
        expect(rows.indexOf(rowKey)).toBe(position)
      }
      expect(rows.indexOf('a:id:missing')).toBe(-1)
      expect(rows.indexOf(undefined)).toBe(-1)
    }
  })
})

describe('renderLiveFrame with many active rows', () => {
  function frameData(items: ActiveItem[]): LiveData {
    const stats = new StatsWindow(60_000, NOW - 60_000)
    return {
      nowMs: NOW,
      active: items,
      completed: [],
      figures: stats.figures(NOW),
      routes: stats.routeFigures(NOW),
      hosts: 3,
      processes: 5,
      heartbeats: { live: [], stalePrefixes: [] },
      orphansByPrefix: new Map(),
      lastUpdateMs: NOW,
      skipped: 0,
      skipReasons: [],
      skippedUpdates: 0,
      updateSkipReasons: [],
    }
  }

  it('scrolls to a selected row deep in the order', () => {
    const items = buildItems(3_000, createRandom(5))
    const settings = createViewSettings()
    const expected = referenceOrder(items, settings)
    const selected = expected[1_500] as { rowKey: string }
    settings.selectedKey = selected.rowKey
    const frame = renderLiveFrame({
      data: frameData(items),
      settings,
      source: { kind: 'stream', connected: true },
      trackerUrl: 'redis://127.0.0.1',
      width: 160,
      height: 30,
      activeColumns: ACTIVE_COLUMNS,
      completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
      completedLimit: 500,
      thresholds: THRESHOLDS,
      colour: true,
      interactive: true,
      notices: [],
    })
    // Below the title, which is drawn reversed, only the selected row is.
    const reversed = frame.lines.slice(1).filter((line) => line.includes('\x1b[7m'))
    expect(reversed).toHaveLength(1)
    const selectedTask = items.find((item) => `a:${getTaskKey(item.task)}` === selected.rowKey)?.task
    expect(reversed[0]).toContain(selectedTask?.path)
    expect(frame.listRowKeys()).toEqual(expected.map((row) => row.rowKey))
    expect(frame.findTask(selected.rowKey)).toBe(selectedTask)
  })
})
