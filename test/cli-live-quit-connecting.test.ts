/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * against a private redis-server that accepts the connection but replies
 * to no command (`CLIENT PAUSE ... ALL`). On q or Ctrl-C at the connecting
 * screen, the process exits at once with code 0, and leaves the terminal
 * on its main screen with line editing and echo on. Ctrl-Z gives the shell
 * its prompt, and fg brings the connecting screen back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-quit-connecting: the tests are skipped because tmux is not on PATH')

/**
 * Maximum time from the key to the shell's next command. A process that
 * waits for the connection being opened stays up for the 1 s that the CLI
 * gives open sockets to close. An exit at once took 10 to 51 ms in 5 runs
 * of this test on a shared 2-core machine, so the bound leaves room for a
 * loaded CI runner.
 */
const MAX_EXIT_MS = 700

/** Line that the shell prints after the CLI exits: its exit code and the time in epoch milliseconds. */
const EXIT_LINE = /^exit=(\d+) at=(\d+)$/m

/**
 * Length of the pause, longer than the tests take. It ends by itself,
 * because Redis 7.0 postpones CLIENT UNPAUSE too while the pause lasts.
 */
const PAUSE_MS = 30_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const pausing = redis.client.duplicate()
  await pausing.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL')
  pausing.disconnect()
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live quit while connecting (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    session?.kill()
    session = undefined
  })

  for (const [name, key] of [
    ['q', 'q'],
    ['Ctrl-C', 'C-c'],
  ] as const) {
    it(`exits at once on ${name}`, async () => {
      session = await startShell()
      session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1; echo "exit=$? at=$(date +%s%3N)"`, true)
      await session.waitForScreen((text) => text.includes('Connecting to'), 15_000, 'the connecting screen')

      const keyMs = Date.now()
      session.sendKeys(key)
      const screen = await session.waitForScreen((text) => EXIT_LINE.test(text), 15_000, 'the exit line')
      const [, exitCode, exitedAt] = EXIT_LINE.exec(screen) ?? []
      expect(exitCode).toBe('0')
      expect(Number(exitedAt) - keyMs).toBeLessThan(MAX_EXIT_MS)

      expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
      expect(screen).not.toContain('Connecting to')
      session.type('stty -a | tr " " "\\n" | grep -E "^-?(icanon|echo)$" | tr "\\n" " "; echo', true)
      await session.waitForScreen((text) => /^icanon echo\s*$/m.test(text), 15_000, 'icanon and echo back on')
    })
  }
})

describe.skipIf(!TMUX_AVAILABLE)('live suspended while connecting (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    session?.kill()
    session = undefined
  })

  it('suspends on Ctrl-Z and comes back with fg', async () => {
    session = await startShell()
    const atPrompt = (text: string) => text.trimEnd().split('\n').at(-1) === SHELL_PROMPT.trimEnd()
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    await session.waitForScreen((text) => text.includes('Connecting to'), 15_000, 'the connecting screen')

    session.sendKeys('C-z')
    await session.waitForScreen(atPrompt, 15_000, 'the shell prompt')
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')

    session.type('fg', true)
    await session.waitForScreen((text) => text.includes('Connecting to'), 15_000, 'the connecting screen after fg')
    expect(session.display('#{alternate_on}')).toBe('1')
    session.sendKeys('q')
    await session.waitForScreen(atPrompt, 15_000, 'the shell prompt after q')
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('0 1')
  })

  it('keeps the screen when orphaned', async () => {
    session = await startShell()
    // The pane runs the CLI itself, as `tmux new-session 'web-top-cli live'`
    // does: its process group is orphaned, and the kernel discards SIGTSTP.
    const command = `env TOP_TRACKER_URL=${quoteForShell(redis.url)} node ${quoteForShell(CLI_PATH)} live; echo "exit=$?"; sleep 30`
    session.tmux('respawn-pane', '-k', '-t', 'web-top-test:0.0', command)
    await session.waitForScreen((text) => text.includes('Connecting to'), 15_000, 'the connecting screen')

    session.sendKeys('C-z')
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(session.display('#{alternate_on} #{cursor_flag}')).toBe('1 0')
    expect(session.capture()).toContain('Connecting to')
    session.sendKeys('q')
    await session.waitForScreen((text) => /^exit=0$/m.test(text), 15_000, 'the exit line')
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
