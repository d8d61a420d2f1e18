/**
 * The sort key `s` of `web-top-cli live` in a real pseudo-terminal (tmux on
 * a private socket) against a private Redis. The cycle reaches every
 * column in order, also after a column hides itself, and also on a
 * terminal too narrow to show every column.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-sort: the terminal tests are skipped because tmux is not on PATH')

/** The default columns of the active table, then the completed table's others, Duration first. */
const SORT_CYCLE = ['Duration', 'Cty', 'IP', 'Worker', 'Method', 'Path', 'User agent', 'Ago', 'Resp', 'Length']

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  // Only two requests came with a country, and one of them is the slowest.
  // Sorted by Cty, the empty cells come first and fill the table, so the
  // column is hidden.
  const records = [
    completedRecord(1, 900, 'JP'),
    completedRecord(2, 800, 'DE'),
    ...Array.from({ length: 30 }, (_, index) => completedRecord(index + 3, 10 + index, undefined)),
  ]
  for (const task of records) await redis.client.rpush('past_tasks', JSON.stringify(task))
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live sort key (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (32'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('cycles through every column', async () => {
    await expectSortCycle(session)
  })

  it('returns to the default order', async () => {
    session.sendKeys('s')
    const screen = await session.waitForScreen((text) => sortColumnsOf(text).length === 0, 15_000, 'the default order')
    expect(screen).toContain('Completed HTTP responses (32')
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live sort key, narrow (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (32'))
    // At 80 columns, the long paths leave no room for User agent in the completed table.
    session.resize(80, 30)
    await session.waitForScreen((text) => !completedHeaderOf(text).includes('User agent'), 15_000, 'the narrow table')
  })

  afterAll(() => {
    session?.kill()
  })

  it('cycles through hidden columns', async () => {
    await expectSortCycle(session)
  })
})

/** Presses `s` once per column of `SORT_CYCLE` and checks that the tables are sorted by it. */
async function expectSortCycle(session: TmuxSession): Promise<void> {
  for (const column of SORT_CYCLE) {
    session.sendKeys('s')
    const screen = await session.waitForScreen(
      (text) => sortColumnsOf(text).includes(column),
      15_000,
      `the tables sorted by ${column}`,
    )
    expect(sortColumnsOf(screen)).toContain(column)
  }
}

/** Returns the column header of the completed table on a screen. */
function completedHeaderOf(screen: string): string {
  const lines = screen.split('\n')
  return lines[lines.findIndex((line) => line.startsWith('Completed HTTP responses')) + 1] ?? ''
}

/** Returns the sort columns that the table titles on a screen name. */
function sortColumnsOf(screen: string): string[] {
  const names: string[] = []
  for (const line of screen.split('\n')) {
    const match = /  sorted by (.+?)(?: \((?:reversed|hidden)\))*$/.exec(line)
    if (match?.[1] !== undefined) names.push(match[1])
  }
  return names
}

function completedRecord(index: number, durationMs: number, country: string | undefined): HttpTask {
  const endedMs = Date.now() - index * 1_000
  // The Cty column shows the header only for a request that came through a trusted proxy.
  const proxied: Partial<HttpTask> =
    country === undefined
      ? {}
      : { request_headers: [['CF-IPCOUNTRY', country]], tags: { 'web_top.client_ip_source': 'proxy' } }
  return {
    task_id: `sort-${index}`,
    host_name: 'web-1',
    process_id: 4242,
    method: index % 2 === 0 ? 'GET' : 'POST',
    path: `/sort/${index}/${'long-path-segment/'.repeat(2)}`,
    client_ip_address: `10.0.0.${index}`,
    ...proxied,
    started_at: formatIsoTime(endedMs - durationMs),
    ended_at: formatIsoTime(endedMs),
    recorded_successfully: true,
    status_code: 200,
  }
}
