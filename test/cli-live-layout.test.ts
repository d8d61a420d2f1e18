/**
 * The layout of `web-top-cli live` in a real pseudo-terminal (tmux on a
 * private socket) against a private redis-server: the columns that fit
 * beside long paths, the rows of a tiny screen, and a help longer than
 * the screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { activeRecord, completedRecord, recorderStartText } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-layout: the tests are skipped because tmux is not on PATH')

let redis: TestRedis

/** Returns a path of 100 characters, longer than Path's widest (80). */
function longPath(name: string): string {
  return `/${name}/`.padEnd(100, 'x')
}

/** Fields that fill the IP, Worker and User agent columns. */
const CLIENT_FIELDS = {
  client_ip_address: '203.0.113.7',
  processor_name: 'web-worker-1',
  request_headers: [['User-Agent', 'curl/8.5.0']] as Array<[string, string]>,
}

beforeAll(async () => {
  redis = await startRedis()
  for (let index = 1; index <= 3; index++) {
    const task = { ...activeRecord(`active-${index}`, longPath(`active-${index}`)), ...CLIENT_FIELDS }
    await redis.client.hset('processors', `web-1/4242-0-active-${index}`, recorderStartText(task))
  }
  for (let index = 1; index <= 3; index++) {
    const task = { ...completedRecord(longPath(`done-${index}`), 200, 5), ...CLIENT_FIELDS }
    await redis.client.lpush('past_tasks', JSON.stringify(task))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live layout (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Completed HTTP responses (3)'))
  })

  afterAll(() => {
    session?.kill()
  })

  it('narrows long paths to keep the other columns', () => {
    const lines = session.capture().split('\n')
    const activeHeader = lines.find((line) => line.startsWith('State')) ?? ''
    const completedHeader = lines.find((line) => line.startsWith('IP')) ?? ''

    for (const name of ['IP', 'Worker', 'Method', 'Path', 'Duration', 'User agent']) {
      expect(activeHeader, `active table header: ${activeHeader}`).toContain(name)
    }
    for (const name of ['IP', 'Method', 'Path', 'Duration', 'Ago', 'Resp', 'Length', 'User agent']) {
      expect(completedHeader, `completed table header: ${completedHeader}`).toContain(name)
    }
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(120)
  })

  it('scrolls the help on a 40x10 screen', async () => {
    session.resize(40, 10)
    try {
      session.sendKeys('?')
      const first = await session.waitForScreen((text) => text.includes('Keys (lines 1-'), 15_000, 'the help')
      expect(first).toContain('q, Ctrl-C')
      expect(first).not.toContain('show or close this help')

      session.sendKeys('End')
      const last = await session.waitForScreen((text) => text.includes('show or close this help'), 15_000, 'the end of the help')
      expect(last).not.toContain('q, Ctrl-C')

      session.sendKeys('Home')
      await session.waitForScreen((text) => text.includes('q, Ctrl-C'), 15_000, 'the top of the help')
      // The help shows 6 of its lines: 10 rows less the title, its own title and last line, and the footer.
      session.sendKeys('PageDown')
      await session.waitForScreen((text) => text.includes('Keys (lines 7-12 of'), 15_000, 'the next page of the help')
      session.sendKeys('Up')
      await session.waitForScreen((text) => text.includes('Keys (lines 6-11 of'), 15_000, 'one line up')

      // Each page down shows later keys, until Home and End, which the help names.
      // Each page is read once the help's title names its lines, however long a loaded machine takes to draw it.
      let screen = session.capture()
      for (let page = 0; page < 10 && !screen.includes('Home, End'); page++) {
        const title = helpTitleOf(screen)
        session.sendKeys('PageDown')
        screen = await session.waitForScreen((text) => helpTitleOf(text) !== title, 15_000, 'the next page of the help')
      }
      // At 40 columns each meaning goes below its keys.
      expect(screen).toMatch(/^ +Home, End\n +select the first or the last/m)

      session.sendKeys('x')
      await session.waitForScreen((text) => text.includes('Active HTTP'), 15_000, 'the tables after the help')
    } finally {
      // Closes the help, if a failed check left it open.
      session.sendKeys('Escape')
      session.resize(120, 30)
    }
  })

  it('shows request rows on a 20x6 screen', async () => {
    session.resize(20, 6)
    try {
      // Until the view redraws, tmux shows the earlier frame cut to 20x6, STALLED rows and all, so the
      // wait is for the table title on the second row, where only a frame drawn for 20x6 has it.
      const screen = await session.waitForScreen(
        (text) => /^Active HTTP request/.test(text.split('\n')[1] ?? '') && /^STALLED/m.test(text),
        15_000,
        'the active table drawn for 20x6',
      )
      const lines = screen.split('\n')
      expect(lines[1], screen).toMatch(/^Active HTTP request/)
      expect(lines.filter((line) => line.startsWith('STALLED'))).toHaveLength(2)
      expect(screen).not.toContain('Completed HTTP')
    } finally {
      session.resize(120, 30)
    }
  })
})

describe('live --help', () => {
  it('lists Home and End', async () => {
    const result = await runCli(['live', '--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^ +Home, End +select the first or the last request$/m)
  })
})

/** Returns the help's title with the lines it shows, such as `Keys (lines 7-12 of 40)`, or ''. */
function helpTitleOf(screen: string): string {
  return /Keys \(lines [^)]*\)/.exec(screen)?.[0] ?? ''
}
