/**
 * Rate-limited reports of a read that fails on every poll, as while the app
 * that serves an http(s):// tracker is down. The first error is written in
 * full, its repeats are counted at most every `REPEAT_NOTE_INTERVAL_MS`,
 * and one line reports when a read succeeds again.
 */
import { countOf, formatDuration } from './format'

/** Shortest time between two lines about the same error, in milliseconds. */
export const REPEAT_NOTE_INTERVAL_MS = 30_000

export class RepeatedFailureReport {
  readonly #writeLine: (line: string) => void
  readonly #now: () => number
  /** Message of the failure in progress, or undefined after a success. */
  #message: string | undefined
  #firstFailureMs = 0
  #failures = 0
  /** Failures since the last line written, which no line has counted yet. */
  #unreported = 0
  #lastLineMs = 0

  /** `writeLine` takes a line without its newline, and `now` returns epoch milliseconds. */
  constructor(writeLine: (line: string) => void, now: () => number = Date.now) {
    this.#writeLine = writeLine
    this.#now = now
  }

  /** Reports a failed read: in full when its message is new, otherwise as a count at most every 30 s. */
  fail(message: string): void {
    const nowMs = this.#now()
    if (this.#message === undefined) this.#firstFailureMs = nowMs
    this.#failures++

    if (message !== this.#message) {
      this.#message = message
      this.#writeLine(message)
      this.#markWritten(nowMs)
      return
    }
    this.#unreported++
    if (nowMs - this.#lastLineMs < REPEAT_NOTE_INTERVAL_MS) return
    const period = formatDuration(nowMs - this.#lastLineMs) ?? '?'
    this.#writeLine(`still failing with the same error: ${countOf(this.#unreported, 'more failed read')} in ${period}`)
    this.#markWritten(nowMs)
  }

  /** Reports that a read succeeded, once after a run of failures. */
  succeed(): void {
    if (this.#message === undefined) return
    const nowMs = this.#now()
    const period = formatDuration(nowMs - this.#firstFailureMs) ?? '?'
    this.#writeLine(`the tracker can be read again, after ${countOf(this.#failures, 'failed read')} in ${period}`)
    this.#message = undefined
    this.#failures = 0
    this.#unreported = 0
  }

  #markWritten(nowMs: number): void {
    this.#lastLineMs = nowMs
    this.#unreported = 0
  }
}
