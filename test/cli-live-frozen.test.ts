/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * against a private redis-server frozen with SIGSTOP: started while Redis
 * is frozen, it shows that it connects and quits at once on q or Ctrl-C.
 * Frozen while it runs, its status line counts the whole outage, not only
 * the read in flight.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-frozen: the terminal tests are skipped because tmux is not on PATH')

const SLOW_READ = /No reply to a read for (\d+(?:\.\d+)?)s/

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
        3_000,
        'the connecting screen',
      )
      expect(screen).toContain(`Connecting to ${redis.url} and reading its requests`)

      const quitMs = Date.now()
      session.sendKeys(key)
      await session.waitForScreen((text) => /exit=\d/.test(text), 3_000, 'the exit code')
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
    await session.waitForScreen((text) => text.includes('Read failed'), 15_000, 'the read failure')
    const screen = await session.waitForScreen((text) => SLOW_READ.test(text), 10_000, 'the slow read notice')
    const shownSeconds = Number(SLOW_READ.exec(screen)?.[1])
    // The outage began with the first read after the freeze, within a refresh interval of it.
    expect(shownSeconds).toBeGreaterThan((Date.now() - frozenMs) / 1000 - 2)
    expect(shownSeconds).toBeGreaterThan(6)
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
  await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 5_000, 'the shell prompt')
  return session
}
