/**
 * The STALLED count and pinning of `web-top-cli live` in a real
 * pseudo-terminal (tmux on a private socket) against a private Redis: the
 * count covers rows below the screen, follows the filter, and survives
 * grouping by host and by process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { activeTableLines } from './helpers/screen-tables'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-stalled: the terminal tests are skipped because tmux is not on PATH')

/** Far past the default --stall-after of 30 s. */
const STALLED_MS = 60_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  for (let index = 1; index <= 40; index++) {
    const task = activeRecord(`st-${index}`, `/st/${index}`, undefined, STALLED_MS)
    await redis.client.hset('st:processors', `p${index}`, JSON.stringify(task))
  }

  // Grouped by host in a 120x30 pane, the active table has room for 21
  // entries: zz's title and row, aa's title and 17 rows, then bb's title,
  // which would have no row under it.
  await redis.client.hset('g:processors', 'zz-1', JSON.stringify(activeRecord('zz-1', '/zz/stuck', 'zz', STALLED_MS)))
  for (let index = 1; index <= 17; index++) {
    await redis.client.hset('g:processors', `aa-${index}`, JSON.stringify(activeRecord(`aa-${index}`, `/aa/${index}`, 'aa', 0)))
  }
  for (let index = 1; index <= 3; index++) {
    await redis.client.hset('g:processors', `bb-${index}`, JSON.stringify(activeRecord(`bb-${index}`, `/bb/${index}`, 'bb', 0)))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live STALLED count (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterAll(() => {
    session?.kill()
  })

  it('counts stalled rows below the screen', async () => {
    session = await startLive('st:', 100, 24)
    const screen = await session.waitForScreen((text) => text.includes('Active HTTP requests (40,'), 10_000, 'the active table')
    expect(titleOf(screen)).toMatch(/^Active HTTP requests \(40, \d+ shown\)  40 STALLED$/)
  })

  it('counts stalled rows that match the filter', async () => {
    session?.sendKeys('/')
    session?.type('/st/1')
    session?.sendKeys('Enter')
    // /st/1 and /st/10 to /st/19 match.
    const screen = await session?.waitForScreen((text) => text.includes('(11 of 40'), 15_000, 'the filter applied')
    expect(titleOf(screen ?? '')).toMatch(/^Active HTTP requests \(11 of 40(, \d+ shown)?\)  11 STALLED$/)
    session?.kill()
    session = undefined
  })

  it('pins the stalled group first by host', async () => {
    session = await startLive('g:', 120, 30)
    await session.waitForScreen((text) => text.includes('Active HTTP requests (21'), 10_000, 'the active table')
    session.sendKeys('h')
    const screen = await session.waitForScreen((text) => text.includes('grouped by host'), 15_000, 'grouping by host')
    const lines = activeTableLines(screen)

    expect(titleOf(screen)).toMatch(/^Active HTTP requests \(21, \d+ shown\)  1 STALLED  grouped by host$/)
    expect(lines[0]).toBe('Host zz (1)')
    expect(lines[1]).toMatch(/^STALLED .*\/zz\/stuck/)
    expect(lines.at(-1)).not.toMatch(/^Host /)
  })

  it('pins the stalled group first by process', async () => {
    session?.sendKeys('h')
    const screen = await session?.waitForScreen((text) => text.includes('grouped by process'), 15_000, 'grouping by process')
    const lines = activeTableLines(screen ?? '')

    expect(titleOf(screen ?? '')).toMatch(/^Active HTTP requests \(21, \d+ shown\)  1 STALLED  grouped by process$/)
    expect(lines[0]).toBe('Process zz/3 (1)')
    expect(lines[1]).toMatch(/^STALLED .*\/zz\/stuck/)
    expect(lines.at(-1)).not.toMatch(/^Process /)
  })
})

/** Starts `live --refresh-rate 1` with `TOP_TRACKER_PREFIX=prefix` in a new pane of the given size. */
async function startLive(prefix: string, width: number, height: number): Promise<TmuxSession> {
  const session = TmuxSession.start({
    width,
    height,
    env: { TOP_TRACKER_URL: redis.url, TOP_TRACKER_PREFIX: prefix },
    unset: CLI_VARIABLES,
  })
  try {
    await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    return session
  } catch (error) {
    session.kill()
    throw error
  }
}

function titleOf(screen: string): string {
  return screen.split('\n').find((line) => line.startsWith('Active HTTP requests')) ?? ''
}

function activeRecord(taskId: string, path: string, hostName: string | undefined, runningMs: number): HttpTask {
  const host = hostName === undefined ? {} : { host_name: hostName, process_id: 3 }
  return {
    task_id: taskId,
    ...host,
    started_at: formatIsoTime(Date.now() - runningMs),
    ended_at: null,
    method: 'GET',
    path,
  }
}
