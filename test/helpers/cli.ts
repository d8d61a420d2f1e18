/**
 * Runs the built `web-top-cli` bin as a child process, with an environment
 * free of the variables that would change its defaults.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { quoteForShell, SHELL_PROMPT, TmuxSession } from './pty'

export const CLI_PATH = resolve(__dirname, '../../bin/web-top-cli.js')

/** Environment variables the CLI reads, removed so the machine's settings stay out of a test. */
export const CLI_VARIABLES: readonly string[] = [
  'TOP_TRACKER_URL',
  'TOP_TRACKER_PREFIX',
  'TOP_RECENT_COLUMNS',
  'TOP_RECENT_MODE',
  'TOP_RECENT_LIMIT',
  'TOP_REFRESH_RATE',
  'TOP_MAX_RECORD_SIZE',
  'ACTIVE_COLUMNS',
  'COMPLETED_COLUMNS',
  'NO_COLOR',
  'FORCE_COLOR',
]

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Returns `process.env` without the CLI's variables, plus `extra`. */
export function cliEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of CLI_VARIABLES) delete env[name]
  return { ...env, ...extra }
}

export interface RunCliOptions {
  env?: Record<string, string>
  /** Kills the CLI with SIGKILL after this long. */
  timeoutMs?: number
  /** Sends the CLI SIGINT after this long, as Ctrl-C would. */
  interruptAfterMs?: number
  /**
   * Sends the CLI SIGINT once this returns true for the output so far,
   * checked every 25 ms. A test that reads what a running command printed waits
   * for it this way, because a fixed delay may end before a loaded machine
   * has started the process.
   */
  interruptWhen?: (stdout: string, stderr: string) => boolean
  /** An open file descriptor for the CLI's standard output in place of a pipe; `stdout` is then empty. */
  stdoutFd?: number
}

/** Runs `node bin/web-top-cli.js ...args` and resolves when it exits. */
export function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: cliEnvironment(options.env),
      stdio: ['ignore', options.stdoutFd ?? 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))

    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000)
    const interrupt =
      options.interruptAfterMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGINT'), options.interruptAfterMs)
    const interruptWhen = options.interruptWhen
    const watcher =
      interruptWhen === undefined
        ? undefined
        : setInterval(() => {
            if (!interruptWhen(stdout, stderr)) return
            clearInterval(watcher)
            child.kill('SIGINT')
          }, 25)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      clearTimeout(interrupt)
      clearInterval(watcher)
      resolvePromise({ code, stdout, stderr })
    })
  })
}

export interface RunningCli {
  /** Standard output so far. */
  stdout(): string
  /** Standard error so far. */
  stderr(): string
  /** Resolves once `check` holds for the output so far; rejects on exit or after `timeoutMs`. */
  waitFor(check: (stdout: string, stderr: string) => boolean, description: string, timeoutMs?: number): Promise<void>
  /** Sends a signal (SIGINT by default) and resolves with the exit code; SIGKILL after 15 s. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts `node bin/web-top-cli.js ...args` and returns at once, for commands that keep running. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): RunningCli {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: cliEnvironment(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolveExit) => child.once('close', (code) => resolveExit(code)))

  return {
    stdout: () => stdout,
    stderr: () => stderr,
    async waitFor(check, description, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (!check(stdout, stderr)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          const reason = child.exitCode !== null ? `it exited with code ${child.exitCode}` : `${timeoutMs} ms passed`
          throw new Error(`web-top-cli ${args[0]}: ${description} not seen (${reason}).\nstdout:\n${stdout}\nstderr:\n${stderr}`)
        }
        await new Promise((resolveWait) => setTimeout(resolveWait, 25))
      }
    },
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/**
 * Starts `web-top-cli live --refresh-rate 1` on `trackerUrl` in a tmux
 * pane of `width` columns (120 by default) and 30 rows, with `env` added,
 * and resolves with the session once `isReady` accepts the screen. The
 * caller kills the session.
 */
export async function startLiveSession(
  trackerUrl: string,
  isReady: (screen: string) => boolean,
  env: Record<string, string> = {},
  width = 120,
): Promise<TmuxSession> {
  const session = TmuxSession.start({
    width,
    height: 30,
    env: { ...env, TOP_TRACKER_URL: trackerUrl },
    unset: CLI_VARIABLES,
  })
  try {
    await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    await session.waitForScreen(isReady, 10_000, 'the live view')
    return session
  } catch (err) {
    session.kill()
    throw err
  }
}
