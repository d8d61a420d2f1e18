/**
 * Refreshes one recorder's heartbeat every third of its TTL, with the
 * meters the live view shows: event-loop delay, memory and request counts.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { formatIsoTime, nowMs } from '../task/time'
import type { Heartbeat } from '../trackers/heartbeat'
import type { Tracker } from '../trackers/tracker'
import type { Logger } from '../util/logger'

/** Sampling interval of the event-loop delay histogram, in milliseconds (Node's default is 10). */
const EVENT_LOOP_RESOLUTION_MS = 20

const NANOSECONDS_PER_MS = 1e6

/**
 * Returns the delay in milliseconds of a histogram sample given in
 * nanoseconds: the part beyond the sampling interval. Node records the time
 * between two runs of its sampling timer, so an idle loop records the
 * interval itself (20.02 ms and more at 20 ms on Node 20).
 */
export function toLoopDelayMs(sampleNs: number): number {
  return Math.max(0, sampleNs / NANOSECONDS_PER_MS - EVENT_LOOP_RESOLUTION_MS)
}

/**
 * One event-loop delay histogram for the whole process, enabled while any
 * sender runs: each enabled histogram samples on a timer of its own.
 */
let sharedDelay: IntervalHistogram | undefined
let sharedDelayUsers = 0

function acquireDelayHistogram(): IntervalHistogram {
  if (sharedDelay === undefined) {
    sharedDelay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS })
    sharedDelay.enable()
  }
  sharedDelayUsers++
  return sharedDelay
}

function releaseDelayHistogram(): void {
  sharedDelayUsers--
  if (sharedDelayUsers > 0) return
  sharedDelay?.disable()
  sharedDelay = undefined
}

/** Fields of a heartbeat besides the meters, which the sender fills in. */
export type HeartbeatBase = Pick<
  Heartbeat,
  'processor_id_prefix' | 'host_name' | 'process_id' | 'thread_id' | 'processor_name' | 'started_at'
>

/** Counts the recorder keeps, read at each refresh. */
export interface RequestCounts {
  inFlight: number
  completed: number
}

export class HeartbeatSender {
  readonly #tracker: Tracker
  readonly #ttlMs: number
  readonly #base: HeartbeatBase
  readonly #readCounts: () => RequestCounts
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #delay: IntervalHistogram | undefined

  constructor(
    tracker: Tracker,
    ttlMs: number,
    base: HeartbeatBase,
    readCounts: () => RequestCounts,
    logger: Logger,
  ) {
    this.#tracker = tracker
    this.#ttlMs = ttlMs
    this.#base = base
    this.#readCounts = readCounts
    this.#logger = logger
  }

  /**
   * Writes a heartbeat now and then every third of the TTL, on a timer that
   * never keeps the process alive.
   */
  start(): void {
    if (this.#timer !== undefined || this.#tracker.writeHeartbeat === undefined) return

    this.#delay = acquireDelayHistogram()
    this.#beat()
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.floor(this.#ttlMs / 3)))
    this.#timer.unref()
  }

  /** Writes a heartbeat now, between two refreshes, while the sender runs. */
  writeNow(): void {
    if (this.#timer !== undefined) this.#beat()
  }

  stop(): void {
    if (this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#delay = undefined
    releaseDelayHistogram()
  }

  readonly #onTimer = (): void => {
    this.#beat()
    this.#timer?.refresh()
  }

  #beat(): void {
    try {
      this.#tracker.writeHeartbeat?.(this.#sample(), this.#ttlMs)
    } catch (err) {
      this.#logger.error({ err }, 'web-top failed to write a heartbeat')
    }
  }

  /**
   * Reads the meters. The delay percentile covers the time since the
   * previous heartbeat of any recorder in this process, because they share
   * one histogram and each read resets it.
   */
  #sample(): Heartbeat {
    const delay = this.#delay
    const delayP99 = delay !== undefined && delay.count > 0 ? toLoopDelayMs(delay.percentile(99)) : null
    delay?.reset()
    const memory = process.memoryUsage()
    const counts = this.#readCounts()

    return {
      ...this.#base,
      updated_at: formatIsoTime(nowMs()),
      ttl_ms: this.#ttlMs,
      event_loop_delay_p99_ms: delayP99 === null ? null : Math.round(delayP99 * 100) / 100,
      heap_used_bytes: memory.heapUsed,
      rss_bytes: memory.rss,
      requests_in_flight: counts.inFlight,
      requests_completed: counts.completed,
      records_dropped: this.#tracker.stats().dropped,
    }
  }
}
