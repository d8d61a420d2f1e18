/**
 * `web-top-cli` in a real pseudo-terminal (tmux on a private socket) whose
 * TERM is `dumb`, a terminal without colours or cursor movement: recent
 * prints no escape codes, and live exits with a usage error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-dumb-terminal: the tests are skipped because tmux is not on PATH')

/** Line that the shell prints after the CLI exits. */
const EXIT_LINE = /^exit=(\d+)$/m

/** An SGR sequence (colour or attribute) as tmux captures it. */
const SGR = /\x1b\[[0-9;]*m/

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/orders', 500, 12)))
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('TERM=dumb (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    session?.kill()
    session = undefined
  })

  it('recent colours its table on xterm', async () => {
    session = await startShell('xterm-256color')
    const screen = await runInShell(session, 'recent')

    expect(screen).toContain('/orders')
    expect(session.captureWithColours()).toMatch(SGR)
  })

  it('recent prints no colours on dumb', async () => {
    session = await startShell('dumb')
    const screen = await runInShell(session, 'recent')

    expect(screen).toContain('/orders')
    expect(session.captureWithColours()).not.toMatch(SGR)
  })

  it('live exits 2 on dumb', async () => {
    session = await startShell('dumb')
    const screen = await runInShell(session, 'live')

    expect(screen).toMatch(EXIT_LINE)
    expect(EXIT_LINE.exec(screen)?.[1]).toBe('2')
    expect(screen.replace(/\n/g, '')).toContain(
      'web-top-cli: live needs a terminal that can move the cursor, and TERM is "dumb": ' +
        'use recent or tail instead, or set TERM to the type of your terminal, such as xterm-256color',
    )
    expect(session.display('#{alternate_on}')).toBe('0')
  })
})

async function startShell(term: string): Promise<TmuxSession> {
  const shell = TmuxSession.start({
    width: 200,
    height: 20,
    env: { TERM: term, TOP_TRACKER_URL: redis.url },
    unset: CLI_VARIABLES.filter((name) => name !== 'TOP_TRACKER_URL'),
  })
  await shell.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
  return shell
}

/** Runs a command of the CLI in the pane and returns the screen once the shell prints its exit code. */
async function runInShell(shell: TmuxSession, command: string): Promise<string> {
  shell.type(`node ${quoteForShell(CLI_PATH)} ${command}; echo "exit=$?"`, true)
  return shell.waitForScreen((text) => EXIT_LINE.test(text), 10_000, `${command} to exit`)
}
