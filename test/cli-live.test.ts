/**
 * `web-top-cli live` as a person uses it: in a real pseudo-terminal (tmux on
 * a private socket) against a private Redis, key by key, through a resize,
 * a Redis restart and every way out; and with a pipe as its output.
 */
import { readFileSync } from 'node:fs'
import { execFileSync, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { CLI_PATH, CLI_VARIABLES, cliEnvironment, runCli, startCli } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PASSWORD = 'live-s3cret'
const HOSTILE_USER_AGENT = '\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07'
const NEUTRALISED_USER_AGENT = '␛]0;pwned␇␛[2J␛]52;c;ZXZpbA==␇'
const FIXTURE_PATH = resolve(__dirname, 'fixtures/python-tracker-records.json')
const LIVE_COMMAND = `node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`

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
  client.on('error', () => {})
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
    session = TmuxSession.start({ width: 130, height: 36, env: { TOP_TRACKER_URL: trackerUrl }, unset: CLI_VARIABLES })
    // With `on`, an OSC 52 that reached tmux would create a paste buffer.
    session.tmux('set-option', '-g', 'set-clipboard', 'on')
  })

  afterAll(() => {
    session?.kill()
  })

  it('shows the meters and both tables after start', async () => {
    await startLive(session)
    const lines = session.capture().split('\n')

    expect(lines[0]).toMatch(new RegExp(`^web-top  redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}  \\d\\d:\\d\\d:\\d\\d`))
    expect(session.capture()).not.toContain(PASSWORD)
    expect(lines[1]).toMatch(/^Hosts \d+ {2}Processes \d+ {2}Active 2 {2}Completed \d+\.\d+\/s \(4 in the last 60s\)$/)
    expect(lines[2]).toMatch(/^Duration p50 \S+ {2}p95 \S+ {2}p99 \S+ {2}Errors 5xx 25\.0% {2}4xx 25\.0%/)
    expect(lines[3]).toMatch(/^Status 2xx 1 {2}3xx 1 {2}4xx 1 {2}5xx 1 {2}Updated \d\d:\d\d:\d\d {2}figures from task_updates/)
    expect(lines[4]).toBe('Active HTTP requests (2)  1 STALLED')
    expect(lines[5]).toMatch(/^State +IP +Worker +Method +Path +Duration +User agent$/)
    // The Python fixture's request started long before the test: stalled, at the top.
    expect(lines[6]).toMatch(/^STALLED +2001:db8::1 +7508:MainThread +POST +\/api\/slow +\S+ +Mozilla\/5\.0/)
    expect(lines[7]).toContain('/hostile')
    expect(lines[8]).toBe('Completed HTTP responses (6)')
    expect(lines[9]).toMatch(/^Cty +IP +Method +Path +Duration +Ago +Resp +Length +User agent$/)
    expect(lines.slice(10, 16).map((line) => /\/[\w/-]+/.exec(line)?.[0])).toEqual([
      '/broken',
      '/missing',
      '/moved',
      '/ok',
      '/no-status',
      '/api/candles',
    ])
    expect(lines[15]).toMatch(/^🇺🇸 US +203\.0\.113\.7 +GET +\/api\/candles .* 200 +419 KiB +python-requests\/2\.27\.1$/)
    expect(lines.at(-2)).toMatch(/^q quit {2}p pause {2}s sort {2}r reverse {2}\/ filter {2}h group {2}t routes/)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('1 0')
  })

  it('colours status codes and the stalled row', () => {
    const screen = session.captureWithColours()
    expect(lineWith(screen, '/ok')).toMatch(/\x1b\[32m +200/)
    expect(lineWith(screen, '/moved')).toMatch(/\x1b\[36m +302/)
    expect(lineWith(screen, '/missing')).toMatch(/\x1b\[33m +404/)
    expect(lineWith(screen, '/broken')).toMatch(/\x1b\[31m +503/)
    expect(lineWith(screen, '/api/slow')).toMatch(/^(\x1b\[[\d;]*m)*\x1b\[31m(\x1b\[[\d;]*m)*STALLED/)
  })

  it('neutralises a hostile user agent', () => {
    const screen = session.capture()
    expect(lineWith(screen, '/hostile')).toContain(NEUTRALISED_USER_AGENT)
    expect(screen.split('\n')[0]).toMatch(/^web-top /)
    expect(session.display('#{pane_title}')).not.toContain('pwned')
    expect(session.tmux('list-buffers')).toBe('')
  })

  it('shows a new request at once and counts it in the meters', async () => {
    const started = Date.now()
    writer.recordEnd('pushed-1', JSON.stringify(completedRecord('/pushed-by-pubsub', 201)))
    await writer.flush()
    const screen = await session.waitForScreen(
      (text) => text.includes('/pushed-by-pubsub'),
      1_500,
      'the request written after the view opened',
    )
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(screen).toContain('Completed HTTP responses (7)')
    expect(screen).toMatch(/Status 2xx 2 {2}3xx 1 {2}4xx 1 {2}5xx 1/)
  })

  it('pins a request that stalls at the top within one refresh', async () => {
    const stuck = { ...activeRecord('/stuck', 'curl/8.5.0'), started_at: formatIsoTime(Date.now() - 29_000) }
    writer.recordStart('stuck-1', JSON.stringify(stuck))
    await writer.flush()
    // It crosses --stall-after (30 s) about a second from now, and the next frame follows within the
    // 1 s refresh. With two CPU burners on a 2-core machine the mark showed 1.8 to 1.9 s after the write.
    const screen = await session.waitForScreen(
      (text) => text.includes('2 STALLED') && /^STALLED .*\/stuck/m.test(text),
      4_000,
      '/stuck marked STALLED',
    )
    const lines = screen.split('\n')
    expect(lines[6]).toMatch(/^STALLED .*\/api\/slow/)
    expect(lines[7]).toMatch(/^STALLED .*\/stuck/)
  })

  it('sorts with s and reverses with r', async () => {
    for (let i = 0; i < 12 && !session.capture().includes('sorted by Path'); i++) {
      const titles = tableTitles(session.capture())
      session.sendKeys('s')
      await session.waitForScreen((text) => tableTitles(text) !== titles, 15_000, 'the next sort column')
    }
    let screen = await session.waitForScreen((text) => text.includes('sorted by Path'), 15_000, 'sorted by Path')
    const completed = completedPaths(screen)
    expect(completed).toEqual([...completed].sort())
    session.sendKeys('r')
    screen = await session.waitForScreen((text) => text.includes('sorted by Path (reversed)'), 15_000, 'reversed')
    expect(completedPaths(screen)).toEqual([...completed].sort().reverse())
    // Stalled requests stay on top whatever the order.
    expect(screen.split('\n')[6]).toMatch(/^STALLED/)
    // Back to the default order.
    session.sendKeys('r')
    for (let i = 0; i < 20 && session.capture().includes('sorted by'); i++) {
      const titles = tableTitles(session.capture())
      session.sendKeys('s')
      await session.waitForScreen((text) => tableTitles(text) !== titles, 15_000, 'the next sort column')
    }
    expect(session.capture()).not.toContain('sorted by')
  })

  it('filters with / and clears the filter with Esc', async () => {
    session.sendKeys('/')
    session.type('broken')
    await session.waitForScreen((text) => text.includes('Filter: broken_'), 15_000, 'the filter being typed')
    session.sendKeys('Enter')
    const screen = await session.waitForScreen(
      (text) => text.includes('Completed HTTP responses (1 of 7)'),
      15_000,
      'the filtered table',
    )
    // Both titles count the matching requests of all.
    expect(screen).toContain('Active HTTP requests (0 of 3)')
    expect(completedPaths(screen)).toEqual(['/broken'])
    session.sendKeys('/', 'Escape')
    await session.waitForScreen((text) => text.includes('Completed HTTP responses (7)'), 15_000, 'all rows again')
  })

  it('groups active requests by host with h', async () => {
    session.sendKeys('h')
    let screen = await session.waitForScreen((text) => text.includes('grouped by host'), 15_000, 'grouping')
    expect(screen).toMatch(/^Host \(no host\) \(2\)$/m)
    expect(screen).toMatch(/^Host vm \(1\)$/m)
    session.sendKeys('h')
    screen = await session.waitForScreen((text) => text.includes('grouped by process'), 15_000, 'by process')
    expect(screen).toMatch(/^Process vm\/7508 \(1\)$/m)
    session.sendKeys('h')
    await session.waitForScreen((text) => !text.includes('grouped by'), 15_000, 'no grouping')
  })

  it('shows the route board with t', async () => {
    session.sendKeys('t')
    const screen = await session.waitForScreen((text) => text.includes('Routes in the last 60s'), 15_000, 'routes')
    expect(screen).toMatch(/^Route +In flight +Req\/s +p50 +p95 +p99 +5xx +4xx +Count$/m)
    // The active requests have no route yet and no completed request shares their path.
    expect(screen).toMatch(/^\(route not known yet\) +3 +- +\S+ +\S+ +\S+ +\S+ +\S+ +0$/m)
    expect(screen).toMatch(/^\(no route\) +0 +\d+\.\d\d +\S+ +\S+ +\S+ +20\.0% +20\.0% +5$/m)
    session.sendKeys('t')
    await session.waitForScreen((text) => text.includes('Completed HTTP responses'), 15_000, 'the completed table')
  })

  it('opens the detail pane with the arrow keys and Enter, and closes it with Esc', async () => {
    // The selected row is the one in reverse video (SGR 7).
    const selectedRow = () =>
      session
        .captureWithColours()
        .split('\n')
        .slice(1)
        // tmux writes reverse video as `ESC[7m` or combined, such as `ESC[0;7m`.
        .find((line) => /\x1b\[(?:[\d;]*;)?7m/.test(line)) ?? ''
    for (let i = 0; i < 12 && !selectedRow().includes('/broken'); i++) {
      const before = selectedRow()
      session.sendKeys('Down')
      await session.waitForScreen(() => selectedRow() !== before, 15_000, 'the next row selected')
    }
    expect(selectedRow()).toContain('/broken')
    session.sendKeys('Enter')
    const screen = await session.waitForScreen((text) => text.includes('Repeat with curl'), 15_000, 'the detail pane')
    expect(screen).toMatch(/^GET \/broken {2}\(took \S+, ended \S+ ago\)$/m)
    expect(screen).toContain('  status_code: 503')
    expect(screen).toContain('  USER-AGENT: curl/8.5.0')
    expect(screen).toContain("  curl -H 'User-Agent: curl/8.5.0' http://localhost/broken")
    expect(screen.trimEnd().split('\n').at(-1)).toBe('Esc close  ↑↓ PgUp PgDn Home End scroll  q quit')
    session.sendKeys('Escape')
    await session.waitForScreen((text) => text.includes('Completed HTTP responses'), 15_000, 'the tables')
    // A second Esc clears the selection, so later tests start with none.
    session.sendKeys('Escape')
  })

  it('shows the help with ? and pauses with p', async () => {
    session.sendKeys('?')
    const help = await session.waitForScreen((text) => text.includes('Press any other key to close the help; q quits.'), 15_000, 'help')
    expect(help).toMatch(/^ {2}p +pause: freeze the screen, keep counting$/m)
    session.sendKeys('x')
    await session.waitForScreen((text) => text.includes('Completed HTTP responses'), 15_000, 'the tables')

    session.sendKeys('p')
    await session.waitForScreen((text) => /^web-top .*PAUSED$/m.test(text), 15_000, 'PAUSED')
    writer.recordEnd('paused-1', JSON.stringify(completedRecord('/while-paused', 200)))
    await writer.flush()
    await sleep(500)
    expect(session.capture()).not.toContain('/while-paused')
    await session.waitForScreen((text) => text.includes('PAUSED: 1 update since the pause; p resumes'), 15_000, 'the count')
    session.sendKeys('p')
    await session.waitForScreen((text) => text.includes('/while-paused'), 15_000, 'the update after pause')
  })

  it('fits the window after a resize', async () => {
    for (let i = 1; i <= 14; i++) {
      writer.recordEnd(`more-${i}`, JSON.stringify(completedRecord(`/more/${i}`, 200)))
    }
    await writer.flush()
    await session.waitForScreen((text) => text.includes('Completed HTTP responses (22)'), 15_000, '22 completed')

    session.resize(72, 20)
    onTestFinished(() => session.resize(130, 36))
    const screen = await session.waitForScreen(
      (text) => /Completed HTTP responses \(22, \d+ shown\)/.test(text),
      15_000,
      'the frame redrawn for 72x20',
    )
    const lines = screen.split('\n').filter((line) => line.trim() !== '')

    expect(session.display('#{pane_width}x#{pane_height}')).toBe('72x20')
    expect(screen.split('\n').slice(0, 20).at(-1)).toMatch(/^q quit/)
    // Low-value columns go before Path is cut: no path ends in an ellipsis.
    expect(screen).not.toMatch(/ \/[\w/-]*…/)
    expect(screen).not.toMatch(/^Cty .*User agent$/m)
    // A wrapped row would leave its tail on a line of its own.
    for (const line of lines) {
      expect(line).toMatch(
        /^(web-top |Hosts |Duration |Status |Active HTTP|Completed HTTP|q quit|State |IP |STALLED |slow |- |127\.0\.0\.1 )/,
      )
    }
    session.resize(130, 36)
  })

  it('shows a Redis restart, reconnects and reads back the gap', async () => {
    await redis.stop()
    await session.waitForScreen((text) => text.includes('DISCONNECTED for'), 15_000, 'DISCONNECTED')
    await sleep(1_000)
    await redis.start()
    // A fresh server: write again what the view should show.
    writer.recordEnd('after-restart', JSON.stringify(completedRecord('/after-restart', 200)))
    await writer.flush()
    const screen = await session.waitForScreen(
      (text) => text.includes('Reconnected after a gap of') && text.includes('figures from task_updates'),
      20_000,
      'the reconnection',
    )
    const gap = /Reconnected after a gap of (\d+\.\d+)s; \d+ completed requests? read back from past_tasks/.exec(screen)
    // Redis was down for a second at least.
    expect(Number(gap?.[1])).toBeGreaterThanOrEqual(1)
    writer.recordEnd('after-reconnect', JSON.stringify(completedRecord('/after-reconnect', 200)))
    await writer.flush()
    await session.waitForScreen((text) => text.includes('/after-reconnect'), 15_000, 'an update after the reconnection')
  })

  it('quits on q and restores the terminal', async () => {
    session.sendKeys('q')
    const screen = await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    expect(screen).not.toContain('Active HTTP requests')
    await expectExitCode(session, 0)
  })

  it('quits on Ctrl-C and gives back a cooked terminal', async () => {
    await startLive(session)
    session.sendKeys('C-c')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    await expectExitCode(session, 0)
    session.type('stty -a | tr " " "\\n" | grep -E "^-?(icanon|echo)$" | tr "\\n" " "; echo', true)
    await session.waitForScreen((text) => /^icanon echo\s*$/m.test(text), 15_000, 'icanon and echo back on')
  })

  it('restores the terminal on SIGTERM', async () => {
    await startLive(session)
    const cliPid = Number(execFileSync('pgrep', ['-P', String(session.shellPid())], { encoding: 'utf8' }).trim())
    process.kill(cliPid, 'SIGTERM')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    await expectExitCode(session, 143)
  })

  it('suspends on Ctrl-Z and draws again after fg', async () => {
    await startLive(session)
    session.sendKeys('C-z')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')

    session.type('fg', true)
    await session.waitForScreen((text) => text.includes('Completed HTTP responses') && text.includes('q quit'), 15_000, 'the view after fg')
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('1 0')
    expect(session.capture()).not.toContain(SHELL_PROMPT.trim())
    // Raw keys again: p acts at once, without Enter.
    session.sendKeys('p')
    await session.waitForScreen((text) => /^web-top .*PAUSED$/m.test(text), 15_000, 'PAUSED after fg')
    session.sendKeys('q')
    await waitForPrompt(session)
    await expectExitCode(session, 0)
  })

  it('suspends the job under a wrapper', async () => {
    session.type('clear', true)
    await waitForPrompt(session)
    session.type(`sh -c ${quoteForShell(`${LIVE_COMMAND}; echo wrapper-done`)}`, true)
    await session.waitForScreen((text) => text.includes('Completed HTTP responses') && text.includes('q quit'), 15_000, 'the view')
    session.sendKeys('C-z')
    await waitForPrompt(session)

    session.type('fg', true)
    await session.waitForScreen((text) => text.includes('Completed HTTP responses') && text.includes('q quit'), 15_000, 'the view after fg')
    session.sendKeys('q')
    const screen = await waitForPrompt(session)
    expect(screen).toContain('wrapper-done')
    // No frame drawn while suspended or before the screen was back is left on the shell's screen.
    expect(screen).not.toMatch(/^Hosts /m)
  })

  it('suspends on SIGTSTP, exits on SIGQUIT', async () => {
    await startLive(session)
    const cliPid = Number(execFileSync('pgrep', ['-P', String(session.shellPid())], { encoding: 'utf8' }).trim())
    process.kill(cliPid, 'SIGTSTP')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')

    session.type('fg', true)
    await session.waitForScreen((text) => text.includes('Completed HTTP responses') && text.includes('q quit'), 15_000, 'the view after fg')
    process.kill(cliPid, 'SIGQUIT')
    await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    await expectExitCode(session, 131)
  })

  it('restores the terminal after an uncaught error in the render loop', async () => {
    await startLive(session, 'WEB_TOP_CLI_TEST_FAULT=render ')
    const screen = await waitForPrompt(session)
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
    expect(screen).toContain('web-top-cli: live view failed: deliberate fault in the render loop')
    await expectExitCode(session, 1)
  })
})

describe('live without a terminal', () => {
  it('prints plain frames separated by a blank line', async () => {
    const result = await runCli(['live', '--tracker-url', trackerUrl, '--refresh-rate', '0.2'], {
      // The second frame is written whole, with the blank line before it.
      interruptWhen: (stdout) => stdout.includes('\n\n'),
    })
    expect(result.code).toBe(130)
    expect(result.stderr).toBe('')
    expect(result.stdout).not.toContain('\x1b')

    const frames = result.stdout.trimEnd().split('\n\n')
    expect(frames.length).toBeGreaterThanOrEqual(2)
    for (const frame of frames) {
      expect(frame).toMatch(/^web-top  redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ {2}\d\d:\d\d:\d\d\nHosts /)
      expect(frame).toContain('Completed HTTP responses')
      expect(frame).toContain(NEUTRALISED_USER_AGENT)
    }
    expect(new Set(frames).size).toBe(frames.length)
  })

  it('prints one frame a second', async () => {
    // Reads every 0.2 s, but prints only when the second changes.
    const live = startCli(['live', '--tracker-url', trackerUrl, '--refresh-rate', '0.2'])
    // The 3 s are counted from the first frame, because a loaded machine may take seconds to start the process.
    await live.waitFor((stdout) => stdout.includes('Completed HTTP responses'), 'the first frame', 15_000)
    await sleep(3_000)
    await live.stop()
    const frames = live.stdout().trimEnd().split('\n\n')
    // The first frame, then one a second; the last may or may not make it before the interrupt.
    expect(frames.length).toBeGreaterThanOrEqual(3)
    expect(frames.length).toBeLessThanOrEqual(5)
  })

  it('exits 0 when the pipe closes', async () => {
    const result = await runLiveUntilPipeCloses(['live', '--tracker-url', trackerUrl, '--refresh-rate', '0.2'])
    expect(result.firstOutput).toMatch(/^web-top /)
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
  })
})

describe('live options', () => {
  it('rejects --slow-after above --stall-after', async () => {
    const result = await runCli(['live', '--tracker-url', trackerUrl, '--slow-after', '40', '--stall-after', '30'])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      'web-top-cli: Invalid --slow-after 40: it must not be greater than --stall-after 30, because a ' +
        'request counts as slow before it counts as STALLED; lower --slow-after or raise --stall-after\n',
    )
  })

  it('rejects --slow-after above the default --stall-after', async () => {
    const result = await runCli(['live', '--tracker-url', trackerUrl, '--slow-after', '31'])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      'web-top-cli: Invalid --slow-after 31: it must not be greater than the default --stall-after 30, ' +
        'because a request counts as slow before it counts as STALLED; lower --slow-after or raise --stall-after\n',
    )
  })

  it.each(['0', '4.5'])('rejects --stall-after %s below the default --slow-after', async (stallAfter) => {
    const result = await runCli(['live', '--tracker-url', trackerUrl, '--stall-after', stallAfter])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      `web-top-cli: Invalid --stall-after ${stallAfter}: it must not be less than the default --slow-after 5, ` +
        'because a request counts as slow before it counts as STALLED; raise --stall-after or pass a lower --slow-after\n',
    )
  })
})

describe('live settings from the environment', () => {
  it('reads the Python web-top variables', async () => {
    const result = await runCli(['live', '--tracker-url', trackerUrl], {
      interruptWhen: (stdout) => stdout.includes('Completed HTTP responses'),
      env: {
        ACTIVE_COLUMNS: 'Method, Path, Host, Route',
        COMPLETED_COLUMNS: 'Resp,Status text,Path',
        TOP_REFRESH_RATE: '0.2',
      },
    })
    const frame = result.stdout.trimEnd().split('\n\n').at(-1) ?? ''
    expect(frame).toMatch(/^State +Method +Path +Host +Route$/m)
    expect(frame).toMatch(/^Resp +Status text +Path$/m)
  })
})

/** Runs the CLI, closes its standard output after the first output, as `| head -1` does, and waits for it to exit. */
function runLiveUntilPipeCloses(
  args: readonly string[],
): Promise<{ code: number | null; firstOutput: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: cliEnvironment(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let firstOutput = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').once('data', (chunk: string) => {
      firstOutput = chunk
      child.stdout.destroy()
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code, firstOutput, stderr })
    })
  })
}

async function startLive(session: TmuxSession, prefix = ''): Promise<void> {
  session.type('clear', true)
  await waitForPrompt(session)
  session.type(`${prefix}${LIVE_COMMAND}`, true)
  await session.waitForScreen(
    (text) => text.includes('Completed HTTP responses') && text.includes('q quit'),
    10_000,
    'the live view',
  )
}

async function waitForPrompt(session: TmuxSession): Promise<string> {
  return session.waitForScreen(
    (text) => text.trimEnd().split('\n').at(-1) === SHELL_PROMPT.trimEnd(),
    15_000,
    'the shell prompt',
  )
}

async function expectExitCode(session: TmuxSession, code: number): Promise<void> {
  session.type('echo "exit=$?"', true)
  await session.waitForScreen((text) => text.includes(`exit=${code}`), 15_000, `exit code ${code}`)
}

function completedPaths(screen: string): string[] {
  const lines = screen.split('\n')
  const start = lines.findIndex((line) => line.startsWith('Completed HTTP responses'))
  return lines
    .slice(start + 2)
    .map((line) => /\s(\/[\w/-]+)\s/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined)
}

function activeTitle(screen: string): string {
  return lineWith(screen, 'Active HTTP requests')
}

/** Returns the titles of both tables, where the sort order shows. */
function tableTitles(screen: string): string {
  return `${activeTitle(screen)}\n${lineWith(screen, 'Completed HTTP responses')}`
}

function lineWith(screen: string, text: string): string {
  return screen.split('\n').find((line) => line.includes(text)) ?? ''
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms))
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
