/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * against a private Redis, and with a pipe as its output.
 */
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { CLI_PATH, CLI_VARIABLES, runCli } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PASSWORD = 'live-s3cret'
const HOSTILE_USER_AGENT = '\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07'
const NEUTRALISED_USER_AGENT = '␛]0;pwned␇␛[2J␛]52;c;ZXZpbA==␇'
const FIXTURE_PATH = resolve(__dirname, '../../shared/fixtures/python-tracker-records.json')

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live: the terminal tests are skipped because tmux is not on PATH')

let redis: TestRedis
let client: Redis
let writer: RedisTracker
let trackerUrl: string

beforeAll(async () => {
  redis = await startRedis(['--requirepass', PASSWORD])
  trackerUrl = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`
  client = new Redis({ host: '127.0.0.1', port: redis.port, password: PASSWORD })
  writer = new RedisTracker({ url: trackerUrl })

  const fixture = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as {
    processors: Record<string, unknown>
    past_tasks: unknown[]
  }
  for (const [processorId, task] of Object.entries(fixture.processors)) {
    await client.hset('processors', processorId, JSON.stringify(task))
  }
  for (const task of fixture.past_tasks) await client.rpush('past_tasks', JSON.stringify(task))

  writer.recordStart('hostile-1', JSON.stringify(activeRecord('/hostile', HOSTILE_USER_AGENT)))
  for (const [path, status] of [
    ['/ok', 200],
    ['/moved', 302],
    ['/missing', 404],
    ['/broken', 503],
  ] as const) {
    writer.recordEnd(`done-${path}`, JSON.stringify(completedRecord(path, status)))
  }
  await writer.flush()
})

afterAll(async () => {
  await writer?.close()
  client?.disconnect()
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live in a terminal (needs tmux)', () => {
  let session: TmuxSession

  beforeAll(() => {
    session = TmuxSession.start({ width: 120, height: 30, env: { TOP_TRACKER_URL: trackerUrl }, unset: CLI_VARIABLES })
    // With `on`, an OSC 52 that reached tmux would create a paste buffer.
    session.tmux('set-option', '-g', 'set-clipboard', 'on')
  })

  afterAll(() => {
    session?.kill()
  })

  it('shows the header and both tables', async () => {
    await waitForPrompt(session)
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 30`, true)
    const screen = await session.waitForScreen(
      (text) => text.includes('Completed HTTP responses') && text.includes('q: quit'),
      10_000,
      'the live view',
    )
    const lines = screen.split('\n')

    expect(lines[0]).toMatch(
      new RegExp(`^web-top  redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}  2 active  6 completed  \\d\\d:\\d\\d:\\d\\d`),
    )
    expect(screen).not.toContain(PASSWORD)
    expect(lines[1]).toBe('Active HTTP requests (2)')
    expect(lines[2]).toMatch(/^IP +Worker +Method +Path +Duration +User agent$/)
    expect(lines[3]).toMatch(/^2001:db8::1 +7508:MainThread +POST +\/api\/slow +\S+ +Mozilla\/5\.0 \(X11; Linux x86_64\)$/)
    expect(lines[4]).toContain('/hostile')
    expect(lines[5]).toBe('Completed HTTP responses (6)')
    expect(lines[6]).toMatch(/^Cty +IP +Method +Path +Duration +Ago +Resp +Length +User agent$/)
    expect(lines.slice(7, 13).map((line) => /\/[\w/-]+/.exec(line)?.[0])).toEqual([
      '/broken',
      '/missing',
      '/moved',
      '/ok',
      '/no-status',
      '/api/candles',
    ])
    expect(lines[12]).toMatch(/^US +203\.0\.113\.7 +GET +\/api\/candles .* 200 +419 KiB +python-requests\/2\.27\.1$/)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('1 0')
  })

  it('colours status codes', () => {
    const screen = session.captureWithColours()
    expect(lineWith(screen, '/ok')).toMatch(/\x1b\[32m +200/)
    expect(lineWith(screen, '/moved')).toMatch(/\x1b\[36m +302/)
    expect(lineWith(screen, '/missing')).toMatch(/\x1b\[33m +404/)
    expect(lineWith(screen, '/broken')).toMatch(/\x1b\[31m +503/)
  })

  it('neutralises a hostile user agent', () => {
    const screen = session.capture()
    expect(lineWith(screen, '/hostile')).toContain(NEUTRALISED_USER_AGENT)
    expect(screen.split('\n')[0]).toMatch(/^web-top /)
    expect(session.display('#{pane_title}')).not.toContain('pwned')
    expect(session.tmux('list-buffers')).toBe('')
  })

  it('shows a new task within a second through pub/sub', async () => {
    const started = Date.now()
    writer.recordStart('pushed-1', JSON.stringify(activeRecord('/pushed-by-pubsub', 'curl/8.5.0')))
    await writer.flush()
    const screen = await session.waitForScreen(
      (text) => text.includes('/pushed-by-pubsub'),
      1_500,
      'the task written after the view opened',
    )
    expect(Date.now() - started).toBeLessThan(1_500)
    expect(screen).toContain('Active HTTP requests (3)')
    expect(lineWith(screen, '/pushed-by-pubsub')).toContain('curl/8.5.0')
  })

  it('fits the window after a resize', async () => {
    for (let i = 1; i <= 14; i++) {
      writer.recordEnd(`more-${i}`, JSON.stringify(completedRecord(`/more/${i}`, 200)))
    }
    await writer.flush()
    await session.waitForScreen((text) => text.includes('Completed HTTP responses (20)'), 2_000, '20 completed')

    session.resize(80, 20)
    const screen = await session.waitForScreen(
      (text) => text.includes('Completed HTTP responses (20, 11 shown)'),
      2_000,
      'the frame redrawn for 80x20',
    )
    const lines = screen.split('\n').filter((line) => line.trim() !== '')

    expect(session.display('#{pane_width}x#{pane_height}')).toBe('80x20')
    expect(lines).toHaveLength(20)
    expect(lines[0]).toMatch(/^web-top  redis:\/\//)
    expect(lines[1]).toBe('Active HTTP requests (3)')
    expect(lines.at(-1)).toBe('q: quit')
    // A wrapped row would leave its tail on a line of its own.
    for (const line of lines) {
      expect(line).toMatch(/^(web-top |Active HTTP|Completed HTTP|q: quit|Cty |IP |- |2001:db8::1 |127\.0\.0\.1 )/)
    }
  })

  it('quits on q and restores the terminal', async () => {
    session.sendKeys('q')
    const screen = await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    // The command line itself may wrap in a narrow pane, so only the prompt is checked.
    expect(screen.trimEnd().split('\n').at(-1)).toMatch(/\$\s*$/)
    expect(screen).not.toContain('Active HTTP requests')
    session.type('echo "exit=$?"', true)
    await session.waitForScreen((text) => text.includes('exit=0'), 2_000, 'the exit code')
  })

  it('quits on Ctrl-C and restores the terminal', async () => {
    session.type('clear', true)
    await waitForPrompt(session)
    session.type(`node ${quoteForShell(CLI_PATH)} live`, true)
    await session.waitForScreen((text) => text.includes('q: quit'), 10_000, 'the live view')
    session.sendKeys('C-c')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    session.type('echo "exit=$?"', true)
    await session.waitForScreen((text) => text.includes('exit=0'), 2_000, 'the exit code')
  })

  it('restores the terminal on SIGTERM', async () => {
    session.type('clear', true)
    await waitForPrompt(session)
    session.type(`node ${quoteForShell(CLI_PATH)} live`, true)
    await session.waitForScreen((text) => text.includes('q: quit'), 10_000, 'the live view')

    const cliPid = Number(execFileSync('pgrep', ['-P', String(session.shellPid())], { encoding: 'utf8' }).trim())
    process.kill(cliPid, 'SIGTERM')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    session.type('echo "exit=$?"', true)
    await session.waitForScreen((text) => text.includes('exit=143'), 2_000, 'the exit code')
  })
})

describe('live without a terminal', () => {
  it('prints plain frames separated by a blank line', async () => {
    const result = await runCli(['live', '--tracker-url', trackerUrl, '--refresh-rate', '0.2'], {
      interruptAfterMs: 1_500,
    })
    expect(result.code).toBe(130)
    expect(result.stderr).toBe('')
    expect(result.stdout).not.toContain('\x1b')

    const frames = result.stdout.trimEnd().split('\n\n')
    expect(frames.length).toBeGreaterThanOrEqual(2)
    for (const frame of frames) {
      expect(frame).toMatch(/^web-top  redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ {2}\d+ active/)
      expect(frame).toContain('Completed HTTP responses')
      expect(frame).toContain(NEUTRALISED_USER_AGENT)
    }
    expect(new Set(frames).size).toBe(frames.length)
  })
})

async function waitForPrompt(session: TmuxSession): Promise<string> {
  return session.waitForScreen(
    (text) => text.trimEnd().split('\n').at(-1) === SHELL_PROMPT.trimEnd(),
    5_000,
    'the shell prompt',
  )
}

function lineWith(screen: string, text: string): string {
  return screen.split('\n').find((line) => line.includes(text)) ?? ''
}

function activeRecord(path: string, userAgent: string): HttpTask {
  return {
    task_id: `live-${path}`,
    processor_name: 'node-test',
    started_at: formatIsoTime(Date.now()),
    ended_at: null,
    method: 'GET',
    path,
    client_ip_address: '127.0.0.1',
    request_headers: [['USER-AGENT', userAgent]],
  }
}

function completedRecord(path: string, status: number): HttpTask {
  return {
    ...activeRecord(path, 'curl/8.5.0'),
    ended_at: formatIsoTime(Date.now()),
    recorded_successfully: true,
    status_code: status,
  }
}
