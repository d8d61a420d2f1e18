/**
 * The `live` command: a full-screen view of active and completed requests,
 * read again every refresh interval and soon after the tracker announces a
 * change, at most `MAX_FRAMES_PER_SECOND` times a second.
 */
import type { TaskSnapshot } from '../trackers/tracker'
import { describeError } from './cli-error'
import type { Column } from './columns'
import { connectTracker, readTracker, type TrackerConnection } from './connect'
import { renderLiveFrame } from './live-frame'
import {
  composeScreenFrame,
  TerminalScreen,
  type TerminalInput,
  type TerminalOutput,
} from './screen'
import { shouldUseColour } from './style'

/** Most frames drawn per second when updates arrive faster. */
export const MAX_FRAMES_PER_SECOND = 10

/** Most completed tasks read per refresh. */
export const LIVE_COMPLETED_LIMIT = 500

const MIN_FRAME_INTERVAL_MS = 1000 / MAX_FRAMES_PER_SECOND

/** Exit codes of the signals that end the view: 128 + the signal number. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const

export interface LiveOptions {
  trackerUrl: string
  keyPrefix: string | undefined
  refreshRateSeconds: number
  activeColumns: readonly Column[]
  completedColumns: readonly Column[]
}

export interface LiveStreams {
  stdout: TerminalOutput & NodeJS.EventEmitter
  stdin: TerminalInput
}

/**
 * Runs the live view until `q`, Ctrl-C or a signal, and returns the exit
 * code. Throws a `CliError` before the view opens when the tracker cannot be
 * reached or read.
 */
export async function runLive(
  options: LiveOptions,
  streams: LiveStreams = { stdout: process.stdout, stdin: process.stdin },
): Promise<number> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix)
  let snapshot: TaskSnapshot
  try {
    snapshot = await readTracker(connection, LIVE_COMPLETED_LIMIT)
  } catch (error) {
    await connection.close()
    throw error
  }
  return new LiveView(connection, options, streams, snapshot).run()
}

class LiveView {
  readonly #connection: TrackerConnection
  readonly #options: LiveOptions
  readonly #stdout: LiveStreams['stdout']
  readonly #screen: TerminalScreen | undefined
  readonly #colour: boolean

  #snapshot: TaskSnapshot
  #readError: string | undefined
  #lastFrame = ''
  #framesWritten = 0
  #clearBeforeNextFrame = true

  #reading = false
  #refreshPending = false
  #lastReadStartedAt = 0
  #soonTimer: NodeJS.Timeout | undefined
  #periodicTimer: NodeJS.Timeout | undefined

  /** The last warning a library printed while the screen was up, shown in the footer. */
  #notice: string | undefined
  #restoreConsole: (() => void) | undefined

  #unsubscribe: (() => Promise<void>) | undefined
  #stopped = false
  #resolveExit: (code: number) => void = () => {}

  constructor(
    connection: TrackerConnection,
    options: LiveOptions,
    streams: LiveStreams,
    snapshot: TaskSnapshot,
  ) {
    this.#connection = connection
    this.#options = options
    this.#stdout = streams.stdout
    this.#snapshot = snapshot
    this.#screen =
      streams.stdout.isTTY === true ? new TerminalScreen(streams.stdout, streams.stdin) : undefined
    this.#colour = this.#screen !== undefined && shouldUseColour(streams.stdout)
  }

  async run(): Promise<number> {
    const exited = new Promise<number>((resolve) => {
      this.#resolveExit = resolve
    })
    this.#installExitHandlers()
    if (this.#screen !== undefined) {
      this.#screen.enter(this.#onKey)
      this.#restoreConsole = this.#captureConsoleWarnings()
    }
    this.#stdout.on('resize', this.#onResize)

    this.#draw()
    this.#armPeriodicRefresh()
    await this.#subscribe()
    return exited
  }

  /** Asks for a read and a frame soon; calls closer than the frame interval are merged into one. */
  readonly requestRefresh = (): void => {
    if (this.#stopped) return
    if (this.#reading) {
      this.#refreshPending = true
      return
    }
    if (this.#soonTimer !== undefined) return

    const wait = this.#lastReadStartedAt + MIN_FRAME_INTERVAL_MS - Date.now()
    if (wait > 0) {
      this.#soonTimer = setTimeout(this.#refreshNow, wait)
      return
    }
    void this.#refreshNow()
  }

  readonly #refreshNow = async (): Promise<void> => {
    this.#soonTimer = undefined
    this.#reading = true
    this.#lastReadStartedAt = Date.now()
    try {
      this.#snapshot = await this.#connection.tracker.read({ completedLimit: LIVE_COMPLETED_LIMIT })
      this.#readError = undefined
    } catch (error) {
      this.#readError = this.#connection.describeFailure(error)
    } finally {
      this.#reading = false
    }
    if (this.#stopped) return

    this.#draw()
    this.#armPeriodicRefresh()
    if (this.#refreshPending) {
      this.#refreshPending = false
      this.requestRefresh()
    }
  }

  async #subscribe(): Promise<void> {
    try {
      this.#unsubscribe = await this.#connection.tracker.subscribe(() => this.requestRefresh())
    } catch {
      // Without push updates the view still refreshes on its timer.
      this.#unsubscribe = undefined
    }
    if (this.#stopped) await this.#unsubscribe?.()
  }

  #armPeriodicRefresh(): void {
    clearTimeout(this.#periodicTimer)
    this.#periodicTimer = setTimeout(this.requestRefresh, this.#options.refreshRateSeconds * 1000)
  }

  /** Renders the last snapshot and writes it, unless it is the frame already on screen. */
  #draw(): void {
    const size = this.#screen?.size() ?? { width: Infinity, height: Infinity }
    const lines = renderLiveFrame({
      snapshot: this.#snapshot,
      readError: this.#readError,
      notice: this.#notice,
      trackerUrl: this.#connection.displayUrl,
      nowMs: Date.now(),
      width: size.width,
      height: size.height,
      activeColumns: this.#options.activeColumns,
      completedColumns: this.#options.completedColumns,
      completedLimit: LIVE_COMPLETED_LIMIT,
      colour: this.#colour,
      showKeys: this.#screen !== undefined,
    })

    if (this.#screen === undefined) {
      this.#writePlainFrame(lines.join('\n'))
      return
    }
    // Compare the content, not the escape codes: the first frame also clears the screen.
    const content = lines.join('\n')
    if (content === this.#lastFrame && !this.#clearBeforeNextFrame) return
    const frame = composeScreenFrame(lines, size.height, this.#clearBeforeNextFrame)
    this.#clearBeforeNextFrame = false
    this.#lastFrame = content
    this.#stdout.write(frame)
  }

  /** Writes a frame as plain text, separated from the previous one by a blank line. */
  #writePlainFrame(text: string): void {
    if (text === this.#lastFrame) return
    this.#lastFrame = text
    this.#stdout.write(`${this.#framesWritten === 0 ? '' : '\n'}${text}\n`)
    this.#framesWritten++
  }

  readonly #onKey = (key: string): void => {
    if (key === 'q' || key === 'Q' || key === '\x03') void this.stop(0)
  }

  readonly #onResize = (): void => {
    this.#clearBeforeNextFrame = true
    this.#draw()
  }

  readonly #onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
    // Ctrl-C is a key while the input is raw; a SIGINT then comes from elsewhere.
    const quitKey = signal === 'SIGINT' && this.#screen !== undefined
    void this.stop(quitKey ? 0 : SIGNAL_EXIT_CODES[signal])
  }

  readonly #onFatalError = (error: unknown): void => {
    this.#restoreTerminal()
    process.stderr.write(`web-top-cli: live view failed: ${describeError(error)}\n`)
    process.exit(1)
  }

  readonly #restoreTerminal = (): void => {
    this.#restoreConsole?.()
    this.#restoreConsole = undefined
    this.#screen?.restore()
  }

  /**
   * Routes `console.warn` and `console.error` to the footer while the screen
   * is up: ioredis prints some warnings there (a password the server does
   * not need), and text written over the view would garble it.
   */
  #captureConsoleWarnings(): () => void {
    const { warn, error } = console
    const show = (...args: unknown[]) => {
      this.#notice = args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' ')
      this.#draw()
    }
    console.warn = show
    console.error = show
    return () => {
      console.warn = warn
      console.error = error
    }
  }

  #installExitHandlers(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as Array<keyof typeof SIGNAL_EXIT_CODES>) {
      process.on(signal, this.#onSignal)
    }
    process.on('uncaughtException', this.#onFatalError)
    process.on('unhandledRejection', this.#onFatalError)
    process.on('exit', this.#restoreTerminal)
  }

  #removeExitHandlers(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as Array<keyof typeof SIGNAL_EXIT_CODES>) {
      process.off(signal, this.#onSignal)
    }
    process.off('uncaughtException', this.#onFatalError)
    process.off('unhandledRejection', this.#onFatalError)
    process.off('exit', this.#restoreTerminal)
  }

  /** Restores the terminal first, then closes the subscription and the connection. */
  async stop(code: number): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#soonTimer)
    clearTimeout(this.#periodicTimer)
    this.#stdout.off('resize', this.#onResize)
    this.#restoreTerminal()
    this.#removeExitHandlers()

    try {
      await this.#unsubscribe?.()
      await this.#connection.close()
    } catch {
      // The view is closing; a connection that fails to close changes nothing for the user.
    }
    this.#resolveExit(code)
  }
}
