/**
 * `live` and `tail` in a real pseudo-terminal (tmux on a private socket)
 * whose session is killed under them, as when an ssh connection drops: the
 * terminal hangs up. Each must end with exit status 129, as a SIGHUP ends a
 * program, and must not abort in Node's restore of the terminal modes
 * ("Assertion failed" in node::ResetStdio(), then SIGABRT, status 134).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-hangup: the tests are skipped because tmux is not on PATH')

/** `setsid -w` of util-linux runs a program in a session of its own and returns its exit status. */
const SETSID_AVAILABLE = spawnSync('setsid', ['--version'], { stdio: 'ignore' }).status === 0

/** Exit status of a program that SIGHUP ended, as a shell reports it: 128 + 1. */
const HANGUP_STATUS = '129'

let redis: TestRedis
let folder: string

beforeAll(async () => {
  redis = await startRedis()
  folder = mkdtempSync(join(tmpdir(), 'web-top-hangup-'))
})

afterAll(async () => {
  await redis?.close()
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true })
})

describe.skipIf(!TMUX_AVAILABLE)('CLI on a terminal that hangs up (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    session?.kill()
    session = undefined
  })

  it('live exits 129 on hangup', { timeout: 60_000 }, async () => {
    session = await startShell()
    const run = startInShell(session, 'live', `node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`)
    await session.waitForScreen((screen) => screen.includes('q quit'), 15_000, 'the live view')

    hangUp(session)
    const ended = await run.waitForExit()

    expect(ended.stderr).not.toContain('Assertion failed')
    expect(ended.stderr).not.toContain('Native stack trace')
    expect(ended.status).toBe(HANGUP_STATUS)
  })

  it('tail exits 129 on hangup', { timeout: 60_000 }, async () => {
    session = await startShell()
    const run = startInShell(session, 'tail', `node ${quoteForShell(CLI_PATH)} tail`)
    await publishUntilShown(session, '/before-hangup')

    hangUp(session)
    const ended = await run.waitForExit()

    expect(ended.stderr).not.toContain('Assertion failed')
    expect(ended.stderr).not.toContain('Native stack trace')
    expect(ended.status).toBe(HANGUP_STATUS)
  })

  // In a session of its own, live gets no SIGHUP from the terminal: it
  // learns of the hangup from the EIO of its next frame.
  it.skipIf(!SETSID_AVAILABLE)('live exits 129 on EIO alone', { timeout: 60_000 }, async () => {
    session = await startShell()
    const command = `setsid -w node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`
    const run = startInShell(session, 'live-eio', command)
    await session.waitForScreen((screen) => screen.includes('q quit'), 15_000, 'the live view')

    hangUp(session)
    const ended = await run.waitForExit()

    expect(ended.stderr).not.toContain('Assertion failed')
    expect(ended.stderr).not.toContain('cannot write to standard output')
    expect(ended.status).toBe(HANGUP_STATUS)
  })
})

interface ShellRun {
  /** Waits for the exit status that the inner shell wrote, and returns it with the CLI's stderr. */
  waitForExit(): Promise<{ status: string; stderr: string }>
}

/**
 * Types `command` into the pane's shell, run by an inner `sh` that ignores
 * SIGHUP, so that it outlives the hangup and writes the exit status to a
 * file. Node resets the signal dispositions it inherits, so the CLI still
 * gets SIGHUP. Standard error goes to a file as well.
 */
function startInShell(session: TmuxSession, name: string, command: string): ShellRun {
  const statusFile = join(folder, `${name}.status`)
  const stderrFile = join(folder, `${name}.stderr`)
  rmSync(statusFile, { force: true })
  rmSync(stderrFile, { force: true })
  const script = `trap "" HUP; ${command} 2>${quoteForShell(stderrFile)}; echo $? >${quoteForShell(statusFile)}`
  session.type(`sh -c ${quoteForShell(script)}`, true)
  return {
    async waitForExit() {
      const deadline = Date.now() + 15_000
      while (!existsSync(statusFile) || readFileSync(statusFile, 'utf8') === '') {
        if (Date.now() > deadline) {
          const stderr = existsSync(stderrFile) ? readFileSync(stderrFile, 'utf8') : ''
          throw new Error(`${name}: no exit status 15 s after the hangup. stderr:\n${stderr}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return { status: readFileSync(statusFile, 'utf8').trim(), stderr: readFileSync(stderrFile, 'utf8') }
    },
  }
}

/** Kills the tmux session, which closes the pseudo-terminal's master side, as sshd does when the connection drops. */
function hangUp(session: TmuxSession): void {
  session.tmux('kill-session', '-t', 'web-top-test')
}

/** Publishes a completed request until `tail` has subscribed and shows it. */
async function publishUntilShown(session: TmuxSession, path: string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!session.capture().includes(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not shown within 15 s. Screen:\n${session.capture()}`)
    const now = new Date().toISOString()
    const record = { task_id: path, method: 'GET', path, status_code: 200, started_at: now, ended_at: now }
    await redis.client.publish('task_updates', JSON.stringify(record))
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

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
