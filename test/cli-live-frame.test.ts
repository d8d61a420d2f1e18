import { describe, expect, it } from 'vitest'
import { DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, parseColumnList } from '../src/cli/columns'
import { renderLiveFrame, shareRows, type LiveFrameInput } from '../src/cli/live-frame'
import { composeScreenFrame } from '../src/cli/screen'
import { textWidth } from '../src/cli/text-width'
import type { HttpTask } from '../src/task/http-task'
import type { TaskSnapshot } from '../src/trackers/tracker'

const NOW = Date.parse('2026-12-04T15:01:00Z')

function task(index: number, fields: Partial<HttpTask> = {}): HttpTask {
  return {
    task_id: index,
    processor_name: `worker-${index}`,
    started_at: new Date(NOW - 1000 * (index + 1)).toISOString(),
    method: 'GET',
    path: `/path/${index}`,
    client_ip_address: '127.0.0.1',
    request_headers: [['USER-AGENT', 'curl/8.0']],
    ...fields,
  }
}

function snapshotOf(activeCount: number, completedCount: number, extra: Partial<TaskSnapshot> = {}): TaskSnapshot {
  const active = new Map<string, HttpTask>()
  for (let i = 0; i < activeCount; i++) active.set(`p${i}`, task(i))
  const completed = Array.from({ length: completedCount }, (_, i) =>
    task(100 + i, { ended_at: new Date(NOW - i * 1000).toISOString(), status_code: 200 }),
  )
  return { active, completed, skipped: 0, skipReasons: [], lastClearedAt: null, ...extra }
}

function frameInput(snapshot: TaskSnapshot, fields: Partial<LiveFrameInput> = {}): LiveFrameInput {
  return {
    snapshot,
    readError: undefined,
    trackerUrl: 'redis://:***@127.0.0.1:6380',
    nowMs: NOW,
    width: 120,
    height: 30,
    activeColumns: parseColumnList(DEFAULT_ACTIVE_COLUMNS),
    completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
    completedLimit: 500,
    colour: false,
    showKeys: true,
    ...fields,
  }
}

describe('renderLiveFrame', () => {
  it('shows the header, both tables and the keys', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(2, 3)))
    expect(lines[0]).toMatch(/^web-top {2}redis:\/\/:\*\*\*@127\.0\.0\.1:6380 {2}2 active {2}3 completed {2}\d\d:\d\d:\d\d$/)
    expect(lines[1]).toBe('Active HTTP requests (2)')
    expect(lines[2]).toMatch(/^IP +Worker +Method +Path +Duration +User agent$/)
    expect(lines[3]).toContain('/path/1')
    expect(lines[4]).toContain('/path/0')
    expect(lines[5]).toBe('Completed HTTP responses (3)')
    expect(lines.at(-1)).toBe('q: quit')
  })

  it('puts the longest running active request first', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(3, 0)))
    expect(lines.slice(3, 6).map((line) => /\/path\/\d/.exec(line)?.[0])).toEqual(['/path/2', '/path/1', '/path/0'])
  })

  it('fits the terminal height and width', () => {
    for (const [width, height] of [
      [120, 30],
      [80, 20],
      [40, 10],
      [20, 4],
    ] as const) {
      const lines = renderLiveFrame(frameInput(snapshotOf(40, 200), { width, height }))
      expect(lines.length).toBeLessThanOrEqual(height)
      for (const line of lines) expect(textWidth(line)).toBeLessThanOrEqual(width)
    }
  })

  it('says how many rows are shown when not all fit', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(40, 200), { height: 20 }))
    expect(lines).toContain('Active HTTP requests (40, 7 shown)')
    expect(lines).toContain('Completed HTTP responses (200, 7 shown)')
  })

  it('marks a completed count that reached the read limit', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(0, 5), { completedLimit: 5 }))
    expect(lines).toContain('Completed HTTP responses (5+)')
  })

  it('shows skipped records and read errors in the footer', () => {
    const snapshot = snapshotOf(1, 1, { skipped: 2, skipReasons: ['completed task at index 0: invalid JSON'] })
    const lines = renderLiveFrame(frameInput(snapshot, { readError: 'connect ECONNREFUSED', width: 200 }))
    expect(lines.at(-1)).toBe(
      'q: quit  Read failed, showing the last data: connect ECONNREFUSED  ' +
        '2 records skipped (completed task at index 0: invalid JSON)',
    )
  })

  it('neutralises a hostile user agent', () => {
    const hostile = task(0, { request_headers: [['USER-AGENT', '\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07']] })
    const snapshot = snapshotOf(0, 0)
    snapshot.active.set('p0', hostile)
    const frame = renderLiveFrame(frameInput(snapshot)).join('\n')
    expect(frame).toContain('␛]0;pwned␇␛[2J␛]52;c;ZXZpbA==␇')
    expect(frame).not.toContain('\x1b')
  })

  it('prints everything when the output is not a terminal', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(30, 300), { width: Infinity, height: Infinity, showKeys: false }))
    expect(lines).toHaveLength(1 + 2 + 30 + 2 + 300)
  })

  it('pads the reversed header to the full width with colour on', () => {
    const lines = renderLiveFrame(frameInput(snapshotOf(1, 1), { colour: true, width: 100 }))
    expect(lines[0]?.startsWith('\x1b[7mweb-top')).toBe(true)
    expect(textWidth(lines[0]?.replace(/\x1b\[\d+m/g, '') ?? '')).toBe(100)
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
  ] as const)('shares %d rows between %d active and %d completed', (room, active, completed, expected) => {
    expect(shareRows(room, active, completed)).toEqual(expected)
  })
})

describe('composeScreenFrame', () => {
  it('positions and erases each line and clears below the last', () => {
    expect(composeScreenFrame(['a', 'b'], 5, false)).toBe(
      '\x1b[?2026h\x1b[1;1H\x1b[2Ka\x1b[0m\x1b[2;1H\x1b[2Kb\x1b[0m\x1b[3;1H\x1b[J\x1b[?2026l',
    )
  })

  it('does not clear below a frame that fills the screen', () => {
    expect(composeScreenFrame(['a', 'b'], 2, false)).not.toContain('\x1b[J')
  })
})
