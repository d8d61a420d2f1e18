import { describe, expect, it } from 'vitest'
import {
  COLUMNS,
  DEFAULT_COMPLETED_COLUMNS,
  durationColour,
  parseColumnList,
  statusColour,
  type Column,
} from '../src/cli/columns'
import { cutStartToWidth, renderTable, readCell } from '../src/cli/table'
import { selectTasks, sortActiveTasks } from '../src/cli/task-order'
import { textWidth } from '../src/cli/text-width'
import { CLIENT_IP_SOURCE_TAG, getCountry } from '../src/task/derived'
import type { HttpTask } from '../src/task/http-task'
import { parseIsoTime } from '../src/task/time'
import type { TaskSnapshot } from '../src/trackers/tracker'

const NOW = Date.parse('2026-12-04T15:00:10Z')

function column(name: string): Column {
  const found = COLUMNS.find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`no column ${name}`)
  return found
}

function completedTask(fields: Partial<HttpTask> = {}): HttpTask {
  return {
    task_id: 1,
    processor_name: '<Worker 4242>',
    started_at: '2026-12-04T15:00:00.000000+00:00',
    ended_at: '2026-12-04T15:00:01.250000+00:00',
    recorded_successfully: true,
    method: 'GET',
    path: '/api/candles',
    client_ip_address: '10.0.0.1',
    request_headers: [
      ['USER-AGENT', 'python-requests/2.27.1'],
      ['X-FORWARDED-FOR', '203.0.113.7, 10.0.0.1'],
      ['CF-IPCOUNTRY', 'US'],
    ],
    status_code: 200,
    response_headers: [['Content-Length', '429000']],
    ...fields,
  }
}

describe('Python-style timestamps', () => {
  it.each([
    ['microseconds and +00:00', '2022-08-23T15:49:10.905607+00:00', Date.UTC(2022, 7, 23, 15, 49, 10, 905) + 0.607],
    ['milliseconds and Z', '2022-08-23T15:49:10.905Z', Date.UTC(2022, 7, 23, 15, 49, 10, 905)],
    ['no fraction', '2022-08-23T15:49:10+00:00', Date.UTC(2022, 7, 23, 15, 49, 10)],
    ['another offset', '2022-08-23T17:49:10.5+02:00', Date.UTC(2022, 7, 23, 15, 49, 10, 500)],
    ['space separator and compact offset', '2022-08-23 10:49:10-0500', Date.UTC(2022, 7, 23, 15, 49, 10)],
    ['no offset, read as UTC', '2022-08-23T15:49:10', Date.UTC(2022, 7, 23, 15, 49, 10)],
  ])('parses %s', (_name, text, expected) => {
    expect(parseIsoTime(text)).toBeCloseTo(expected, 3)
  })

  it.each(['yesterday', '', '2022-13-45', 12, null])('rejects %j', (value) => {
    expect(parseIsoTime(value)).toSatisfy((result: number | undefined) => result === undefined || Number.isNaN(result))
  })
})

describe('column values', () => {
  const task = completedTask()

  it.each([
    ['Cty', '🇺🇸 US'],
    ['IP', '203.0.113.7'],
    ['Worker', '<Worker 4242>'],
    ['Method', 'GET'],
    ['Path', '/api/candles'],
    ['Duration', '1.25s'],
    ['Ago', '8.75s'],
    ['Resp', '200'],
    ['Length', '419 KiB'],
    ['User agent', 'python-requests/2.27.1'],
  ])('%s shows %s', (name, expected) => {
    expect(readCell(column(name), task, NOW).text).toBe(expected)
  })

  it('shows a dash for missing values', () => {
    const bare: HttpTask = { task_id: 2 }
    for (const each of COLUMNS) expect(readCell(each, bare, NOW).text).toBe('-')
  })

  it('measures an active task up to now', () => {
    const active = completedTask({ ended_at: null, recorded_successfully: null, status_code: null })
    expect(readCell(column('Duration'), active, NOW).text).toBe('10.0s')
    expect(readCell(column('Ago'), active, NOW).text).toBe('-')
  })

  it('leaves an ended task without end time unmeasured', () => {
    // `recorded_successfully` stays null until a writer ends the task.
    const ended = completedTask({ ended_at: null })
    expect(readCell(column('Duration'), ended, NOW).text).toBe('-')
    expect(readCell(column('Ago'), ended, NOW).text).toBe('-')
  })

  it('reads durations across offsets', () => {
    const shifted = completedTask({
      started_at: '2026-12-04T17:00:00+02:00',
      ended_at: '2026-12-04T10:00:04.5-05:00',
    })
    expect(readCell(column('Duration'), shifted, NOW).text).toBe('4.50s')
  })

  it('keeps the socket address when the writer says it came from the socket', () => {
    const socket = completedTask({ tags: { 'web_top.client_ip_source': 'socket' }, client_ip_address: '127.0.0.1' })
    expect(readCell(column('IP'), socket, NOW).text).toBe('127.0.0.1')
  })

  it('sanitises control characters in cells', () => {
    const hostile = completedTask({ path: '/x\x1b[2J\n' })
    expect(readCell(column('Path'), hostile, NOW).text).toBe('/x␛[2J␊')
  })

  it('colours durations by the thresholds', () => {
    expect(durationColour(999)).toBe('green')
    expect(durationColour(1_000)).toBe('yellow')
    expect(durationColour(4_999)).toBe('yellow')
    expect(durationColour(5_000)).toBe('red')
  })

  it('colours status codes by class', () => {
    expect(statusColour(204)).toBe('green')
    expect(statusColour(302)).toBe('cyan')
    expect(statusColour(404)).toBe('yellow')
    expect(statusColour(503)).toBe('red')
    expect(statusColour(null)).toBeUndefined()
  })
})

describe('parseColumnList', () => {
  it('resolves names without case, spaces or hyphens', () => {
    expect(parseColumnList('ip, user-agent,RESP, status_TEXT').map((each) => each.name)).toEqual([
      'IP',
      'User agent',
      'Resp',
      'Status text',
    ])
  })

  it('rejects a column listed twice', () => {
    expect(() => parseColumnList('ip, Path, IP')).toThrow('The column "IP" is listed more than once')
  })

  it('names the unknown column and lists the valid ones', () => {
    expect(() => parseColumnList('IP,Foo')).toThrow(
      'Unknown column "Foo". Valid columns: Cty, IP, Host, Process, Worker, Method, Route, Path, ' +
        'Duration, Ago, Resp, Status text, Length, Tags, User agent',
    )
  })

  it('rejects an empty list', () => {
    expect(() => parseColumnList(' , ')).toThrow('The list names no column.')
  })
})

describe('renderTable', () => {
  const columns = parseColumnList(DEFAULT_COMPLETED_COLUMNS)

  it('renders a header and one row per task', () => {
    const table = renderTable([completedTask()], columns, NOW, { maxWidth: Infinity, colour: false })
    expect(table.header.split(/\s{2,}/)).toEqual([
      'Cty',
      'IP',
      'Method',
      'Path',
      'Duration',
      'Ago',
      'Resp',
      'Length',
      'User agent',
    ])
    expect(table.rows[0]?.split(/\s{2,}/)).toEqual([
      '🇺🇸 US',
      '203.0.113.7',
      'GET',
      '/api/candles',
      '1.25s',
      '8.75s',
      '200',
      '419 KiB',
      'python-requests/2.27.1',
    ])
  })

  it('shows no country read from the socket', () => {
    const direct = completedTask({ tags: { [CLIENT_IP_SOURCE_TAG]: 'socket' } })
    expect(readCell(column('Cty'), direct, NOW).text).toBe('-')
    expect(getCountry(direct)).toBeUndefined()
  })

  it('shows the country behind a trusted proxy', () => {
    const proxied = completedTask({ tags: { [CLIENT_IP_SOURCE_TAG]: 'proxy' } })
    expect(readCell(column('Cty'), proxied, NOW).text).toBe('🇺🇸 US')
    expect(getCountry(proxied)).toBe('US')
  })

  it('hides Cty when no task has a country', () => {
    const table = renderTable([completedTask({ request_headers: [] })], columns, NOW, {
      maxWidth: Infinity,
      colour: false,
    })
    expect(table.header.startsWith('IP ')).toBe(true)
  })

  it('shows a long Ago whole', () => {
    // 1,000 days and 20 hours before NOW, as a record from years ago shows.
    const endedMs = NOW - (1_000 * 24 + 20) * 3_600_000
    const task = completedTask({
      started_at: new Date(endedMs - 1_000).toISOString(),
      ended_at: new Date(endedMs).toISOString(),
    })
    const table = renderTable([task], parseColumnList('Path,Ago'), NOW, { maxWidth: 80, colour: false })
    expect(table.rows[0]?.trim().split(/ {2,}/)).toEqual(['/api/candles', '1000d20h'])
  })

  it('writes no escape codes without colour', () => {
    const table = renderTable([completedTask({ status_code: 500 })], columns, NOW, { maxWidth: 200, colour: false })
    expect(table.rows.join('\n')).not.toContain('\x1b')
  })

  it('colours status and duration with colour on', () => {
    const table = renderTable([completedTask({ status_code: 503 })], columns, NOW, { maxWidth: 200, colour: true })
    expect(table.rows[0]).toMatch(/\x1b\[31m *503\x1b\[0m/)
    expect(table.rows[0]).toMatch(/\x1b\[33m *1\.25s\x1b\[0m/)
  })

  it('fits every line in narrow widths', () => {
    const tasks = [
      completedTask({ path: '/api/中文/路径/🚀/with/a/very/long/tail/that/goes/on' }),
      completedTask({ request_headers: [['USER-AGENT', 'Ｍｏｚｉｌｌａ／５．０ '.repeat(10)]] }),
    ]
    for (const maxWidth of [120, 80, 60, 40, 20, 5]) {
      const table = renderTable(tasks, columns, NOW, { maxWidth, colour: false })
      for (const line of [table.header, ...table.rows]) expect(textWidth(line)).toBeLessThanOrEqual(maxWidth)
    }
  })

  it('shrinks User agent before Path', () => {
    const task = completedTask({ path: '/api/orders/12345', request_headers: [['USER-AGENT', 'x'.repeat(60)]] })
    const table = renderTable([task], columns, NOW, { maxWidth: 100, colour: false })
    expect(table.rows[0]).toContain('/api/orders/12345')
    expect(table.rows[0]).toContain('xxx…')
  })

  it('aligns cells after wide characters', () => {
    const tasks = [completedTask({ path: '/中文' }), completedTask({ path: '/abcd' })]
    const table = renderTable(tasks, parseColumnList('Path,Resp'), NOW, { maxWidth: 80, colour: false })
    expect(table.rows.map((row) => textWidth(row))).toEqual([11, 11])
  })
})

describe('task order', () => {
  const snapshot: TaskSnapshot = {
    active: new Map<string, HttpTask>([
      ['p2', { task_id: 'short', started_at: '2026-12-04T15:00:09Z' }],
      ['p1', { task_id: 'long', started_at: '2026-12-04T15:00:01Z' }],
      ['p3', { task_id: 'unknown start', started_at: 'not a time' }],
    ]),
    completed: [{ task_id: 'newest' }, { task_id: 'older' }],
    skipped: 0,
    skipReasons: [],
    lastClearedAt: null,
  }

  it('puts the longest running active task first', () => {
    expect(sortActiveTasks(snapshot.active).map((task) => task.task_id)).toEqual(['long', 'short', 'unknown start'])
  })

  it('lists active tasks before completed ones', () => {
    expect(selectTasks(snapshot, 'all').map((task) => task.task_id)).toEqual([
      'long',
      'short',
      'unknown start',
      'newest',
      'older',
    ])
  })

  it('applies mode and limit', () => {
    expect(selectTasks(snapshot, 'complete', 1).map((task) => task.task_id)).toEqual(['newest'])
    expect(selectTasks(snapshot, 'active', 2).map((task) => task.task_id)).toEqual(['long', 'short'])
  })
})

describe('renderTable when a column is dropped', () => {
  it('drops low-value columns before cutting Path', () => {
    const columns = parseColumnList(DEFAULT_COMPLETED_COLUMNS)
    const task = completedTask({ path: '/api/pairs/with/a/long/path' })
    const table = renderTable([task], columns, NOW, { maxWidth: 70, colour: false })
    expect(table.header.split(/\s{2,}/)).toEqual(['IP', 'Method', 'Path', 'Duration', 'Resp'])
    expect(table.rows[0]).toContain('/api/pairs/with/a/long/path')
    expect(textWidth(table.rows[0] ?? '')).toBeLessThanOrEqual(70)
  })

  it('keeps Ago and Length while they fit', () => {
    const columns = parseColumnList(DEFAULT_COMPLETED_COLUMNS)
    const table = renderTable([completedTask()], columns, NOW, { maxWidth: 80, colour: false })
    expect(table.header.split(/\s{2,}/)).toEqual(['Cty', 'IP', 'Method', 'Path', 'Duration', 'Ago', 'Resp', 'Length'])
  })

  it('cuts Path once only Method, Path, Duration and Resp are left', () => {
    const columns = parseColumnList(DEFAULT_COMPLETED_COLUMNS)
    const task = completedTask({ path: '/api/pairs/with/a/long/path' })
    const table = renderTable([task], columns, NOW, { maxWidth: 36, colour: false })
    expect(table.header.split(/\s{2,}/)).toEqual(['Method', 'Path', 'Duration', 'Resp'])
    expect(table.rows[0]).toContain('/api/pairs/…')
    expect(textWidth(table.rows[0] ?? '')).toBeLessThanOrEqual(36)
  })

  it('keeps a flag whole and aligned', () => {
    const tasks = [
      completedTask({ request_headers: [['CF-IPCOUNTRY', 'FI']] }),
      completedTask({ request_headers: [['CF-IPCOUNTRY', 'XX']] }),
    ]
    const table = renderTable(tasks, parseColumnList('Cty,Resp'), NOW, { maxWidth: 80, colour: false })
    expect(table.rows).toEqual(['🇫🇮 FI   200', 'XX      200'])
    expect(table.rows.map((row) => textWidth(row))).toEqual([11, 11])
  })
})

describe('new columns', () => {
  const task = completedTask({
    task_name: '/api/:name',
    host_name: 'web-1',
    process_id: 4242,
    thread_id: 0,
    status_message: '200 OK',
    tags: { 'service.name': 'shop', 'node.version': 'v20.0.0' },
  })

  it.each([
    ['Host', 'web-1'],
    ['Process', 'web-1/4242'],
    ['Route', '/api/:name'],
    ['Status text', '200 OK'],
    ['Tags', 'node.version=v20.0.0,service.name=shop'],
  ])('%s shows %s', (name, expected) => {
    expect(readCell(column(name), task, NOW).text).toBe(expected)
  })

  it('shows a worker thread in Process', () => {
    expect(readCell(column('Process'), { ...task, thread_id: 3 }, NOW).text).toBe('web-1/4242/3')
  })
})

describe('cutStartToWidth', () => {
  it.each([
    ['keeps text that fits', 'host-a/10514', 12, 'host-a/10514'],
    ['keeps the end of a process', 'host-a/10514', 10, '…t-a/10514'],
    ['leaves out a wide character that straddles the limit', '日本語abc', 5, '…abc'],
    ['keeps a wide character that fits', '日本語abc', 6, '…語abc'],
    ['drops a combining mark without its character', 'e\u0301e\u0301abc', 4, '…abc'],
    ['keeps a flag whole', 'x🇫🇮🇩🇪', 4, '…🇩🇪'],
    ['returns nothing for no room', 'abc', 0, ''],
  ])('%s', (_name, text, width, expected) => {
    expect(cutStartToWidth(text, width)).toBe(expected)
    expect(textWidth(cutStartToWidth(text, width))).toBeLessThanOrEqual(width)
  })

  it('cuts Process from the start in a table', () => {
    const tasks = [10514, 10515].map((pid) => completedTask({ task_id: pid, host_name: 'host-alpha', process_id: pid }))
    const table = renderTable(tasks, parseColumnList('Host,Process,Method,Resp'), NOW, { maxWidth: 36, colour: false })

    expect(table.header).toMatch(/^Host +Process +Method +Resp$/)
    expect(table.rows[0]).toContain('…t-alpha/10514 ')
    expect(table.rows[1]).toContain('…t-alpha/10515 ')
  })
})

