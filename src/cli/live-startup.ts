/**
 * The screen of `live` while a slow tracker connects and is read for the
 * first time. It names the tracker and counts the wait, and q, Ctrl-C and
 * the exit signals end it at once, so a tracker that does not reply keeps
 * no one waiting at a blank screen.
 */
import { formatDuration } from './format'
import { exitOnHangup } from './hangup'
import { sanitizeText } from '../util/sanitize'
import { watchJobControl, type JobControl } from './job-control'
import { composeScreenUpdate, TerminalScreen, type TerminalInput, type TerminalOutput } from './screen'
import { cutToWidth } from './text-width'

/**
 * Exit codes of the signals that end the view: 128 + the signal number. The
 * view handles each, because a signal's default action would end the
 * process with the terminal still on the alternate screen and raw.
 * SIGUSR1 is left to Node, which starts its inspector on it.
 */
export const SIGNAL_EXIT_CODES = {
  SIGINT: 130,
  SIGTERM: 143,
  SIGHUP: 129,
  SIGQUIT: 131,
  SIGALRM: 142,
  SIGUSR2: 140,
} as const

export type ExitSignal = keyof typeof SIGNAL_EXIT_CODES

/** Returns the exit code for a signal. On a screen, Ctrl-C is a key, so a SIGINT comes from elsewhere and ends the view as the key does. */
export function exitCodeOfSignal(signal: ExitSignal, onScreen: boolean): number {
  return signal === 'SIGINT' && onScreen ? 0 : SIGNAL_EXIT_CODES[signal]
}

/** Time between two redraws of the wait. */
const REDRAW_INTERVAL_MS = 1_000

/**
 * Time the connection and the first read may take before the startup
 * screen is shown. A tracker that replies at once opens the view without
 * the startup screen flashing by.
 */
const SHOW_AFTER_MS = 250

/** Outcome of the startup: the value of its work, or the exit code when the user quit first. */
export type StartupOutcome<T> = { value: T } | { exitCode: number }

export interface StartupStreams {
  stdout: TerminalOutput
  stdin: TerminalInput
}

/**
 * Runs `work`, and shows on a terminal that the view connects to
 * `displayUrl` when `work` takes longer than `SHOW_AFTER_MS`. From then on,
 * q, Ctrl-C and the exit signals resolve this with their exit code at
 * once, and a later result of `work` goes to `discard`, which closes it.
 * Ctrl-Z and SIGTSTP suspend the screen as in the view (`watchJobControl`).
 * The terminal is restored before this resolves or throws.
 */
export async function runWhileConnecting<T>(
  displayUrl: string,
  streams: StartupStreams,
  work: Promise<T>,
  discard: (value: T) => unknown,
): Promise<StartupOutcome<T>> {
  if (streams.stdout.isTTY !== true) return { value: await work }

  const screen = new TerminalScreen(streams.stdout, streams.stdin)
  const startedMs = Date.now()
  let lastLines: string[] | undefined
  let jobControl: JobControl | undefined
  const draw = () => {
    if (jobControl?.suspended === true) return
    const lines = renderStartupLines(displayUrl, Date.now() - startedMs, screen.size())
    const update = composeScreenUpdate(lastLines, lines, screen.size().height)
    lastLines = lines
    if (update !== '') streams.stdout.write(update)
  }

  let quit: (exitCode: number) => void = () => {}
  const quitRequested = new Promise<StartupOutcome<T>>((resolve) => {
    quit = (exitCode) => resolve({ exitCode })
  })
  const onSignal = (signal: ExitSignal) => {
    exitOnHangup(signal)
    quit(exitCodeOfSignal(signal, true))
  }
  const signals = Object.keys(SIGNAL_EXIT_CODES) as ExitSignal[]
  let redrawTimer: NodeJS.Timeout | undefined
  const showTimer = setTimeout(() => {
    for (const signal of signals) process.on(signal, onSignal)
    const onKey = (key: string) => {
      if (key === 'q' || key === 'Q' || key === 'ctrl-c') quit(0)
      if (key === 'ctrl-z') jobControl?.suspend()
    }
    screen.enter(onKey)
    jobControl = watchJobControl(screen, onKey, () => {
      lastLines = undefined
      draw()
    })
    draw()
    redrawTimer = setInterval(draw, REDRAW_INTERVAL_MS)
  }, SHOW_AFTER_MS)

  try {
    const outcome = await Promise.race([work.then((value) => ({ value })), quitRequested])
    // The work goes on after a quit: whatever it opens is closed once it has.
    if ('exitCode' in outcome) work.then(discard, () => {})
    return outcome
  } finally {
    clearTimeout(showTimer)
    clearInterval(redrawTimer)
    for (const signal of signals) process.off(signal, onSignal)
    jobControl?.remove()
    screen.restore()
  }
}

/** Returns the lines of the startup screen: the tracker, the time waited, and the quit key at the bottom. */
export function renderStartupLines(
  displayUrl: string,
  waitedMs: number,
  size: { width: number; height: number },
): string[] {
  const url = sanitizeText(displayUrl)
  const waited = formatDuration(waitedMs) ?? '0.00s'
  const lines = [`web-top  ${url}`, '', `Connecting to ${url} and reading its requests (${waited})`]
  const padding = Array<string>(Math.max(0, size.height - lines.length - 1)).fill('')
  return [...lines, ...padding, 'q quit'].slice(0, size.height).map((line) => cutToWidth(line, size.width))
}
