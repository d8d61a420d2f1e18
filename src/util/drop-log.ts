/**
 * Logs dropped writes as counts, never one line per drop. The first drop
 * after a quiet interval is logged at once. The drops that follow are
 * summed and logged at the end of each interval in which some happened.
 * A burst of thousands of drops therefore costs a few lines, and the
 * `dropped` fields of all lines add up to the number dropped.
 */
import type { Logger } from './logger'

export class DropLog {
  readonly #logger: Logger
  readonly #intervalMs: number
  readonly #message: string
  readonly #describe: () => Record<string, unknown>
  #unreported = 0
  #total = 0
  #timer: NodeJS.Timeout | undefined

  /**
   * @param describe returns the fields added to every line, such as the
   * byte budget and the URL.
   */
  constructor(
    logger: Logger,
    intervalMs: number,
    message: string,
    describe: () => Record<string, unknown>,
  ) {
    this.#logger = logger
    this.#intervalMs = intervalMs
    this.#message = message
    this.#describe = describe
  }

  /** Counts `count` drops, and logs at once when none was logged in the current interval. */
  add(count = 1): void {
    this.#unreported += count
    this.#total += count
    if (this.#timer !== undefined) return

    this.#report()
    this.#timer = setTimeout(this.#onInterval, this.#intervalMs)
    this.#timer.unref()
  }

  /**
   * Logs the drops not logged yet, for a tracker that goes idle or closes
   * and whose process may exit. The interval goes on, so a tracker that
   * wakes and drops again within it sums those drops as before. The timer
   * does not keep the process alive.
   */
  flush(): void {
    if (this.#unreported > 0) this.#report()
  }

  readonly #onInterval = (): void => {
    if (this.#unreported === 0) {
      this.#timer = undefined
      return
    }
    this.#report()
    this.#timer?.refresh()
  }

  #report(): void {
    const dropped = this.#unreported
    this.#unreported = 0
    this.#logger.warn(
      { dropped, droppedTotal: this.#total, intervalMs: this.#intervalMs, ...this.#describe() },
      this.#message,
    )
  }
}
