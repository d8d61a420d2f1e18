/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * against a private redis-server frozen with SIGSTOP: started while Redis
 * is frozen, it shows that it connects and quits at once on q or Ctrl-C.
 * Frozen while it runs, or with every client paused (CLIENT PAUSE), its
 * status line counts the whole outage, not only the read in flight, also
 * after a read timed out.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-frozen: the terminal tests are skipped because tmux is not on PATH')

const SLOW_READ = /No reply to a read for (\d+(?:\.\d+)?)s/
const READS_FAILING = /Reads failing for (\d+(?:\.\d+)?)s/

/** Length of the CLIENT PAUSE, in ms: the first read times out after 5 s, well within it. */
const PAUSE_MS = 12_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  redis?.thaw()
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live with a frozen Redis (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    redis.thaw()
    session?.kill()
    session = undefined
  })

  for (const [name, key] of [
    ['q', 'q'],
    ['Ctrl-C', 'C-c'],
  ] as const) {
    it(`quits on ${name} while connecting`, async () => {
      session = await startShell()
      redis.freeze()
      session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1; echo "exit=$?"`, true)
      const screen = await session.waitForScreen(
        (text) => text.includes('Connecting to'),
        15_000,
        'the connecting screen',
      )
      expect(screen).toContain(`Connecting to ${redis.url} and reading its requests`)

      const quitMs = Date.now()
      session.sendKeys(key)
      await session.waitForScreen((text) => /exit=\d/.test(text), 15_000, 'the exit code')
      // The connect deadline is 5 s: an exit well before it is the key's doing.
      expect(Date.now() - quitMs).toBeLessThan(2_500)
      expect(session.capture()).toContain('exit=0')
    })
  }

  it('counts the whole outage', { timeout: 40_000 }, async () => {
    session = await startShell()
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    await session.waitForScreen((text) => text.includes('q quit'), 10_000, 'the live view')

    const frozenMs = Date.now()
    redis.freeze()
    // The first read times out after 5 s, and the next one starts 1 s later.
    const screen = await session.waitForScreen(
      (text) => Number(READS_FAILING.exec(text)?.[1]) > 6,
      15_000,
      'the failing reads notice past 6 s',
    )
    const shownSeconds = Number(READS_FAILING.exec(screen)?.[1])
    // The outage began with the first read after the freeze, within a refresh interval of it.
    expect(shownSeconds).toBeGreaterThan((Date.now() - frozenMs) / 1000 - 2)
    expect(screen).not.toMatch(SLOW_READ)
    session.sendKeys('q')
  })

  it('keeps counting a paused Redis after a timeout', { timeout: 40_000 }, async () => {
    session = await startShell()
    session.type(`node ${quoteForShell(CLI_PATH)} live`, true)
    await session.waitForScreen((text) => text.includes('q quit'), 10_000, 'the live view')

    // CLIENT PAUSE delays every client's commands, as an overloaded server would.
    await redis.client.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL')
    const pausedMs = Date.now()
    await session.waitForScreen((text) => READS_FAILING.test(text), 10_000, 'the failing reads notice')

    // Until Redis replies, each look shows a longer outage than the one before. The view redraws
    // every second, so looks 1.3 s apart never see the same frame.
    const outages: number[] = []
    while (Date.now() - pausedMs < PAUSE_MS - 1_500) {
      const seconds = Number(READS_FAILING.exec(session.capture())?.[1])
      if (!Number.isNaN(seconds)) outages.push(seconds)
      await new Promise((resolve) => setTimeout(resolve, 1_300))
    }
    expect(outages.length).toBeGreaterThanOrEqual(3)
    for (let index = 1; index < outages.length; index++) {
      expect(outages[index], `outages shown: ${outages.join(', ')}`).toBeGreaterThan(outages[index - 1] as number)
    }
    // Past the 5 s read timeout: the first read starts within a refresh interval (2 s) of the pause.
    expect(outages.at(-1)).toBeGreaterThan(6)

    await session.waitForScreen((text) => !READS_FAILING.test(text), 10_000, 'the notice to go')
    session.sendKeys('q')
  })
})

async function startShell(): Promise<TmuxSession> {
  const session = TmuxSession.start({
    width: 120,
    height: 30,
    env: { TOP_TRACKER_URL: redis.url },
    unset: CLI_VARIABLES,
  })
  await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
  return session
}
