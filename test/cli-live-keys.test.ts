/**
 * Keys of `web-top-cli live` in a real pseudo-terminal (tmux on a private
 * socket) against a private Redis: grouping with a hostile host name, the
 * selection order of grouped rows, and Esc on an applied filter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { startLiveSession } from './helpers/cli'
import { findSelectedRow, hasTmux, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Sets the window title (OSC 0) and clears the screen, if the terminal gets it raw. */
const HOSTILE_HOST = 'evil\x1b]0;PWNED\x07\x1b[2Jhost'
const NEUTRALISED_HOST = 'evil␛]0;PWNED␇␛[2Jhost'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-keys: the terminal tests are skipped because tmux is not on PATH')

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  // Longest running first in the ungrouped order: /zeta-long, /evil, /alpha-short.
  // Grouped by host, the groups are sorted by name: alpha, evil…, zeta.
  const records: Array<[string, HttpTask]> = [
    ['zeta/1-0-1.0', activeRecord('/zeta-long', 'zeta', 1, 3_000)],
    ['evil/2-0-1.0', activeRecord('/evil', HOSTILE_HOST, 2, 2_000)],
    ['alpha/3-0-1.0', activeRecord('/alpha-short', 'alpha', 3, 1_000)],
  ]
  for (const [processorId, task] of records) {
    await redis.client.hset('processors', processorId, JSON.stringify(task))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live keys in a terminal (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Active HTTP requests (3)') && text.includes('q quit'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('neutralises a hostile group title', async () => {
    session.sendKeys('h')
    const screen = await session.waitForScreen((text) => text.includes('grouped by host'), 15_000, 'grouping')
    expect(screen).toContain(`Host ${NEUTRALISED_HOST} (1)`)
    expect(session.display('#{pane_title}')).not.toContain('PWNED')
    // A raw ESC[2J would have cleared the rows above the group titles.
    expect(screen).toMatch(/^web-top /)
  })

  it('selects grouped rows in shown order', async () => {
    session.sendKeys('Down')
    await session.waitForScreen(() => findSelectedRow(session).includes('/'), 15_000, 'a selected row')
    expect(findSelectedRow(session)).toContain('/alpha-short')

    session.sendKeys('Down')
    // A capture taken while a frame is being drawn may show no selected row at all, so the wait is for the row itself.
    await session.waitForScreen(() => findSelectedRow(session).includes('/evil'), 15_000, 'the row of /evil selected')
    expect(findSelectedRow(session)).toContain('/evil')
  })

  it('Esc clears selection, then filter', async () => {
    session.sendKeys('h', 'h')
    await session.waitForScreen((text) => !text.includes('grouped by'), 15_000, 'no grouping')
    session.sendKeys('/')
    session.type('alpha')
    session.sendKeys('Enter')
    await session.waitForScreen((text) => text.includes('Active HTTP requests (1 of 3)'), 15_000, 'the filter applied')

    session.sendKeys('Escape')
    await session.waitForScreen(() => findSelectedRow(session) === '', 15_000, 'no selection')
    expect(session.capture()).toContain('Active HTTP requests (1 of 3)')

    session.sendKeys('Escape')
    const screen = await session.waitForScreen(
      (text) => text.includes('Active HTTP requests (3)'),
      15_000,
      'every row again',
    )
    expect(screen).not.toContain('Filter: alpha')
  })

  it('exits with 0 on q', async () => {
    session.sendKeys('q')
    await session.waitForScreen((text) => text.trimEnd().endsWith(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    session.type('echo "exit=$?"', true)
    await session.waitForScreen((text) => text.includes('exit=0'), 15_000, 'exit code 0')
  })
})

function activeRecord(path: string, hostName: string, processId: number, runningMs: number): HttpTask {
  return {
    task_id: `keys-${path}`,
    host_name: hostName,
    process_id: processId,
    started_at: formatIsoTime(Date.now() - runningMs),
    ended_at: null,
    method: 'GET',
    path,
    client_ip_address: '127.0.0.1',
  }
}
