/**
 * Terminal modes of the full-screen view: the alternate screen, a hidden
 * cursor, no line wrap and raw keys, all put back by `restore()`, which is
 * safe to call from any exit path and more than once.
 */

const ENTER_ALTERNATE_SCREEN = '\x1b[?1049h'
const LEAVE_ALTERNATE_SCREEN = '\x1b[?1049l'
const HIDE_CURSOR = '\x1b[?25l'
const SHOW_CURSOR = '\x1b[?25h'
const DISABLE_LINE_WRAP = '\x1b[?7l'
const ENABLE_LINE_WRAP = '\x1b[?7h'
const RESET_ATTRIBUTES = '\x1b[0m'
const CLEAR_SCREEN = '\x1b[2J'
const ERASE_LINE = '\x1b[2K'
const ERASE_BELOW = '\x1b[J'
// Synchronized output: a terminal that supports mode 2026 shows the frame at
// once instead of line by line; others ignore the unknown mode.
const BEGIN_SYNCHRONIZED_UPDATE = '\x1b[?2026h'
const END_SYNCHRONIZED_UPDATE = '\x1b[?2026l'

import { parseKeys } from './live-input'

/** Key presses the view reacts to, named as `parseKeys` names them. */
export type KeyHandler = (key: string) => void

export interface TerminalOutput {
  isTTY?: boolean
  columns?: number
  rows?: number
  write(text: string): boolean
}

export interface TerminalInput {
  isTTY?: boolean
  setRawMode?(mode: boolean): unknown
  setEncoding(encoding: BufferEncoding): unknown
  resume(): unknown
  pause(): unknown
  on(event: 'data', listener: (data: string) => void): unknown
  off(event: 'data', listener: (data: string) => void): unknown
}

export class TerminalScreen {
  readonly #output: TerminalOutput
  readonly #input: TerminalInput
  #active = false
  #rawMode = false
  #onData: ((data: string) => void) | undefined

  constructor(output: TerminalOutput, input: TerminalInput) {
    this.#output = output
    this.#input = input
  }

  /** Switches to the alternate screen, hides the cursor and reads raw keys from a terminal. */
  enter(onKey: KeyHandler): void {
    if (this.#active) return
    this.#active = true
    this.#output.write(ENTER_ALTERNATE_SCREEN + HIDE_CURSOR + DISABLE_LINE_WRAP + CLEAR_SCREEN)

    if (this.#input.isTTY === true && typeof this.#input.setRawMode === 'function') {
      this.#input.setRawMode(true)
      this.#rawMode = true
    }
    this.#onData = (data) => {
      for (const key of parseKeys(data)) onKey(key)
    }
    this.#input.setEncoding('utf8')
    this.#input.on('data', this.#onData)
    this.#input.resume()
  }

  /**
   * Sets the modes of `enter()` again after the process was stopped and
   * continued: a shell that ran in between may have changed them, as when
   * something other than the view stopped the process with SIGSTOP.
   */
  reenter(onKey: KeyHandler): void {
    if (!this.#active) {
      this.enter(onKey)
      return
    }
    this.#output.write(ENTER_ALTERNATE_SCREEN + HIDE_CURSOR + DISABLE_LINE_WRAP + CLEAR_SCREEN)
    if (this.#rawMode) this.#input.setRawMode?.(true)
  }

  /** Puts the terminal back as it was: main screen, cursor, line wrap and cooked input. */
  restore(): void {
    if (!this.#active) return
    this.#active = false

    if (this.#onData !== undefined) this.#input.off('data', this.#onData)
    this.#input.pause()
    if (this.#rawMode) {
      try {
        this.#input.setRawMode?.(false)
      } catch {
        // On a terminal that has hung up, Node emits EIO as an 'error' event, which throws
        // without a listener. Such a terminal has no mode left to restore.
      }
    }
    this.#rawMode = false
    this.#output.write(
      END_SYNCHRONIZED_UPDATE +
        RESET_ATTRIBUTES +
        ENABLE_LINE_WRAP +
        SHOW_CURSOR +
        LEAVE_ALTERNATE_SCREEN,
    )
  }

  /** Returns the terminal size, with a fallback of 80x24 when it is not known. */
  size(): { width: number; height: number } {
    return { width: this.#output.columns || 80, height: this.#output.rows || 24 }
  }
}

/**
 * Returns the escape sequences that turn the screen showing `previous`
 * into one showing `lines`: only the lines that changed are written, and
 * the rows below the last line are cleared when the frame got shorter.
 * With `previous` undefined the whole screen is cleared and drawn.
 */
export function composeScreenUpdate(
  previous: readonly string[] | undefined,
  lines: readonly string[],
  height: number,
): string {
  if (previous === undefined) return composeScreenFrame(lines, height, true)
  const shown = lines.slice(0, height)
  let frame = ''
  shown.forEach((line, index) => {
    if (line !== previous[index]) frame += `\x1b[${index + 1};1H${ERASE_LINE}${line}${RESET_ATTRIBUTES}`
  })
  if (shown.length < Math.min(previous.length, height)) {
    frame += `\x1b[${shown.length + 1};1H${ERASE_BELOW}`
  }
  return frame === '' ? '' : BEGIN_SYNCHRONIZED_UPDATE + frame + END_SYNCHRONIZED_UPDATE
}

/**
 * Returns the escape sequences that draw `lines` over the whole screen:
 * each line is positioned, erased and written, and the rows below the last
 * line are cleared. Lines must already fit the width.
 */
export function composeScreenFrame(
  lines: readonly string[],
  height: number,
  clearFirst: boolean,
): string {
  let frame = BEGIN_SYNCHRONIZED_UPDATE + (clearFirst ? CLEAR_SCREEN : '')
  const shown = lines.slice(0, height)
  shown.forEach((line, index) => {
    frame += `\x1b[${index + 1};1H${ERASE_LINE}${line}${RESET_ATTRIBUTES}`
  })
  // Moving below the last row would land on it and erase it.
  if (shown.length < height) frame += `\x1b[${shown.length + 1};1H${ERASE_BELOW}`
  return frame + END_SYNCHRONIZED_UPDATE
}
