/**
 * Batches that Redis rejected without running them, kept to be sent again.
 * A Redis Cluster whose master of the tracker's slot is down replies with
 * redirections to the dead node until a replica takes over or the node
 * comes back, and ioredis gives up after `maxRedirections`. A single
 * server that is loading its data set, or busy with another client's
 * script, rejects writes the same way for a while. Those batches are kept within the tracker's
 * byte budget and sent again, so a short outage loses no records.
 */
import type { BatchChunk } from './redis-batch'

/**
 * Errors of ioredis and Redis after which the script did not run: NOSCRIPT
 * for an EVALSHA of a script the server does not have, ioredis
 * gave up following redirections or found no node, or did not write the
 * call to a connection that was closing, or Redis refused the call before
 * running it. A server that became a replica (READONLY), or a master
 * without enough replicas for `min-replicas-to-write` (NOREPLICAS),
 * rejects the batch script at its first write, before which the script
 * runs no command that changes anything or publishes (redis-scripts.ts).
 * Redis 6 reports that error inside its own script error, after a `-`. A replica cut off from its master (MASTERDOWN) rejects the call
 * itself. A connection that closed while the call was out is not among
 * them, because Redis may have run the call before it closed.
 */
const NOT_APPLIED_ERROR = new RegExp(
  [
    /^(?:CLUSTERDOWN|TRYAGAIN|LOADING|BUSY|MASTERDOWN|NOSCRIPT)\b/.source,
    /(?:^|-)(?:READONLY|NOREPLICAS)\b/.source,
    /Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Cluster isn't ready/.source,
    /Stream isn't writeable and enableOfflineQueue options is false/.source,
  ].join('|'),
)

/** Returns true for an error after which Redis did not run the call, so sending it again writes nothing twice. */
export function isNotAppliedError(err: Error): boolean {
  return NOT_APPLIED_ERROR.test(err.message)
}

/** Returns true for the error of a write to a server that is a replica now, as Redis 7 and Redis 6 word it. */
export function isReadonlyError(err: Error): boolean {
  return /(?:^|-)READONLY\b/.test(err.message)
}

/** First wait before a rejected batch is sent again, in milliseconds; it doubles up to the maximum. */
const FIRST_RETRY_DELAY_MS = 250
const MAX_RETRY_DELAY_MS = 2_000

/**
 * The rejected batches, in the order they were sent, and the timer that
 * sends them again. The tracker sends nothing new while the timer runs,
 * so the batches reach Redis in their first order.
 */
export class RetryQueue {
  #chunks: BatchChunk[] = []
  #bytes = 0
  #timer: NodeJS.Timeout | undefined
  #delayMs = FIRST_RETRY_DELAY_MS
  /** Set by a rejection, until Redis runs a batch again. */
  #rejecting = false
  readonly #retry: () => void

  /** `retry` runs when the wait is over: it sends `take()` before anything else. */
  constructor(retry: () => void) {
    this.#retry = retry
  }

  /** Bytes of the kept batches, counted against the tracker's byte budget. */
  get bytes(): number {
    return this.#bytes
  }

  get isEmpty(): boolean {
    return this.#chunks.length === 0
  }

  /** Records in the kept batches. */
  get records(): number {
    let records = 0
    for (const chunk of this.#chunks) records += chunk.records
    return records
  }

  /** True from a rejection until Redis runs a batch again. */
  get isRejecting(): boolean {
    return this.#rejecting
  }

  /** True while the batches wait for the timer: nothing else may be sent before them. */
  get isWaiting(): boolean {
    return this.#timer !== undefined
  }

  /** Keeps a rejected batch and starts the wait, longer after each rejection in a row. */
  add(chunk: BatchChunk): void {
    this.#chunks.push(chunk)
    this.#bytes += chunk.bytes
    this.holdBack()
  }

  /**
   * Starts the wait, as `add()` does, for a rejected batch that the caller
   * keeps itself: one that may have run before, which keeps its place.
   */
  holdBack(): void {
    this.#rejecting = true
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(this.#onTimer, this.#delayMs)
    // The app's own handles, or the Redis connection, keep the process alive.
    this.#timer.unref()
    this.#delayMs = Math.min(this.#delayMs * 2, MAX_RETRY_DELAY_MS)
  }

  /** Returns the kept batches, oldest first, and empties the queue. */
  take(): BatchChunk[] {
    const chunks = this.#chunks
    this.#chunks = []
    this.#bytes = 0
    return chunks
  }

  /**
   * Resets the wait after a batch that Redis ran. Returns true for the first
   * batch that Redis ran after it rejected some, so that the end of the
   * rejections is logged once.
   */
  succeeded(): boolean {
    this.#delayMs = FIRST_RETRY_DELAY_MS
    const ended = this.#rejecting
    this.#rejecting = false
    return ended
  }

  /** Ends the wait, so that the next send goes out now (`flush()` and `close()`). */
  stopWaiting(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.#retry()
  }
}
