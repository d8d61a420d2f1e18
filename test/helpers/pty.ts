/**
 * Runs a program in a real pseudo-terminal: a tmux server on a private
 * socket (never the user's tmux), one detached session of a fixed size, and
 * helpers to type keys, read the screen and resize the window.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

/** Prompt of the shell in the pane, to tell when a program has returned to it. */
export const SHELL_PROMPT = 'web-top-test$ '

/** Returns true when `tmux` is on PATH. */
export function hasTmux(): boolean {
  return spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0
}

export interface TmuxOptions {
  width: number
  height: number
  /** Environment variables of the shell in the pane. */
  env?: Record<string, string>
  /** Environment variables removed from the shell in the pane. */
  unset?: readonly string[]
}

export class TmuxSession {
  readonly socket: string
  readonly #target = 'web-top-test:0.0'

  private constructor(socket: string) {
    this.socket = socket
  }

  /** Starts a tmux server on a new private socket with one session running `sh`. */
  static start(options: TmuxOptions): TmuxSession {
    const session = new TmuxSession(`web-top-test-${process.pid}-${randomBytes(4).toString('hex')}`)
    // The shell command goes through `sh -c`, so each assignment is quoted.
    const removals = (options.unset ?? []).map((name) => `-u ${quoteForShell(name)}`)
    const assignments = Object.entries({ PS1: SHELL_PROMPT, ...options.env }).map(([name, value]) =>
      quoteForShell(`${name}=${value}`),
    )
    session.tmux(
      'new-session',
      '-d',
      '-s',
      'web-top-test',
      '-x',
      String(options.width),
      '-y',
      String(options.height),
      `env ${[...removals, ...assignments].join(' ')} sh`,
    )
    // The window keeps the size given above and follows resize-window only.
    session.tmux('set-option', '-g', 'window-size', 'manual')
    return session
  }

  /** Runs a tmux command on the private socket and returns its output. */
  tmux(...args: string[]): string {
    const env = { ...process.env }
    delete env.TMUX
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  }

  /** Types text literally, then presses Enter when `enter` is set. */
  type(text: string, enter = false): void {
    this.tmux('send-keys', '-t', this.#target, '-l', text)
    if (enter) this.tmux('send-keys', '-t', this.#target, 'Enter')
  }

  /** Sends tmux key names such as `C-c` or `q`. */
  sendKeys(...keys: string[]): void {
    this.tmux('send-keys', '-t', this.#target, ...keys)
  }

  /** Returns the process id of the shell in the pane. */
  shellPid(): number {
    return Number(this.display('#{pane_pid}'))
  }

  /** Returns the visible screen as text, one line per row, without colours. */
  capture(): string {
    return this.tmux('capture-pane', '-p', '-t', this.#target)
  }

  /** Returns the visible screen with its colour escape sequences. */
  captureWithColours(): string {
    return this.tmux('capture-pane', '-p', '-e', '-t', this.#target)
  }

  /** Returns a tmux format, for example `#{pane_title}` or `#{alternate_on}`, for the pane. */
  display(format: string): string {
    return this.tmux('display-message', '-p', '-t', this.#target, format).trimEnd()
  }

  resize(width: number, height: number): void {
    this.tmux('resize-window', '-t', 'web-top-test:0', '-x', String(width), '-y', String(height))
  }

  /** Polls the screen until `predicate` holds, and returns that screen; fails after `timeoutMs`. */
  async waitForScreen(
    predicate: (screen: string) => boolean,
    timeoutMs: number,
    description: string,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let screen = this.capture()
    while (!predicate(screen)) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}. Screen:\n${screen}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      screen = this.capture()
    }
    return screen
  }

  /** Stops the private tmux server and everything running in it. */
  kill(): void {
    try {
      this.tmux('kill-server')
    } catch {
      // Already gone.
    }
  }
}

/** Quotes a value for a POSIX shell command line. */
export function quoteForShell(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}

/** Returns the row shown in reverse video (SGR 7) below the title line, or ''. */
export function findSelectedRow(session: TmuxSession): string {
  return (
    session
      .captureWithColours()
      .split('\n')
      .slice(1)
      .find((line) => /\x1b\[(?:[\d;]*;)?7m/.test(line)) ?? ''
  )
}
