/**
 * A recorder's life after setup: its heartbeat, the HTTP servers it
 * watches, going idle once they have all closed (or, for the adapters,
 * after the last request while none is open), waking up on the next
 * request or watched server, and closing for good.
 *
 * Idle and closed both remove the recorder's entries and heartbeat, so
 * that the process can exit: closing closes the Redis connection the
 * recorder opened, and going idle keeps it without letting it hold the
 * process (`Tracker.suspend`). An idle recorder records again on the next
 * request; a closed one never does.
 */
import type { Tracker } from '../trackers/tracker'
import { settleWithin } from '../util/deadline'
import type { Logger } from '../util/logger'
import type { HeartbeatSender } from './heartbeat-sender'
import { closeOnSignal, stopClosingOnSignal } from './signals'

/** Max time the removal of a recorder's entries waits for Redis, in milliseconds. */
const CLEANUP_TIMEOUT_MS = 2_000

/**
 * Max time `close()` waits for Redis in all: the removal of the entries
 * and the tracker's last writes share it, so that a Redis that does not
 * reply costs this once, not once per step.
 */
const CLOSE_TIMEOUT_MS = 2_000

/**
 * State of a recorder, which decides what it does with a new request:
 * record it (`open`), wake up first (`idle`) or skip it (`closed`).
 */
export type RecorderState = 'open' | 'idle' | 'closed'

/** An HTTP server as the recorder watches it: its `close` event, and `close()` on a signal. */
export interface WatchedServer {
  once(event: 'close', listener: () => void): unknown
  close?(callback: (err?: Error) => void): unknown
}

/**
 * The recorders waiting for each server's `close` event. A server gets one
 * listener however many recorders watch it, so that a dozen recorders on
 * one server stay below Node's warning about too many listeners.
 */
const closeWatchers = new WeakMap<WatchedServer, Set<RecorderLifecycle>>()

function watchServerClose(server: WatchedServer, lifecycle: RecorderLifecycle): void {
  let watchers = closeWatchers.get(server)
  if (watchers === undefined) {
    const waiting = new Set<RecorderLifecycle>()
    watchers = waiting
    closeWatchers.set(server, waiting)
    server.once('close', () => {
      closeWatchers.delete(server)
      for (const watcher of waiting) watcher.onServerClose(server)
    })
  }
  watchers.add(lifecycle)
}

export interface LifecycleSettings {
  tracker: Tracker
  /** Whether the recorder opened the tracker, and so closes it. */
  ownsTracker: boolean
  processorIdPrefix: string
  heartbeat: HeartbeatSender
  logger: Logger
  handleSignals: boolean
  /** Returns the number of requests in flight, which the recorder counts. */
  countInFlight: () => number
  /** Ends the requests in flight whose connection is destroyed already, as their `close` event would. */
  endRequestsOfClosedConnections: () => void
}

export class RecorderLifecycle {
  /** Read by the recorder on every request. */
  state: RecorderState = 'open'

  readonly #settings: LifecycleSettings
  /** HTTP servers seen by `watchServer()` that have not closed yet. */
  readonly #servers = new Set<WatchedServer>()
  /** Servers that only `stopAccepting()` closes, such as a Fastify app's, which closes the recorder itself. */
  readonly #signalServers = new Set<WatchedServer>()
  /** Whether `close()` has started, so that a request it ends does not start the idle cleanup too. */
  #closing = false
  /**
   * Whether the recorder goes idle when its last request ends while no
   * watched server is open, as with `inject()` only. Set by
   * `idleUntilFirstRequest()`, for adapters that watch their servers.
   */
  #idlesWithoutServer = false
  /** The tracker's `suspend()` under way, if any. */
  #suspending: Promise<void> | undefined

  constructor(settings: LifecycleSettings) {
    this.#settings = settings
    settings.heartbeat.start()
    if (settings.handleSignals) closeOnSignal(this)
  }

  /**
   * Watches a server until its `close` event, and wakes an idle recorder,
   * because a server that listens or sends a request serves the app.
   * Returns at once for a server already watched, so it can run on every request.
   */
  watchServer(server: WatchedServer | null | undefined): void {
    if (server == null || typeof server.once !== 'function' || this.#servers.has(server)) return
    this.#servers.add(server)
    watchServerClose(server, this)
    if (this.state === 'idle') this.wake()
  }

  /** Adds a server for `stopAccepting()` alone, without going idle when it closes. */
  closeOnSignal(server: WatchedServer): void {
    this.#signalServers.add(server)
  }

  /**
   * Stops the servers of `watchServer()` and `closeOnSignal()` from
   * accepting connections, for the cleanup after a signal. The process ends
   * once the cleanup is done, so a request accepted meanwhile would be
   * served but not recorded. Requests in flight go on.
   */
  stopAccepting(): void {
    for (const server of [...this.#servers, ...this.#signalServers]) {
      // The callback receives ERR_SERVER_NOT_RUNNING for a server closed already.
      if (typeof server.close === 'function') server.close(() => {})
    }
  }

  /**
   * Starts idle, for a recorder that learns of its servers from their
   * requests or from their `listening` event. Until the first request or
   * watched server, the heartbeat is off and the connection the recorder
   * opened does not keep the process alive. So an app that closes its
   * server before serving anything, or never listens, can exit. From then
   * on, the recorder also goes idle when its last request ends while no
   * watched server is open (`onLastRequestEnd()`).
   */
  idleUntilFirstRequest(): void {
    this.#idlesWithoutServer = true
    if (this.state !== 'open' || this.#servers.size > 0 || this.#settings.countInFlight() > 0) return
    this.state = 'idle'
    const { heartbeat, tracker, ownsTracker, processorIdPrefix, logger } = this.#settings
    heartbeat.stop()
    // The first heartbeat still waits for the connection, so removing it
    // drops it unsent. On a connection that is ready, the removal follows it.
    tracker.removeHeartbeat?.(processorIdPrefix).catch((err: unknown) => {
      logger.warn({ err, processorIdPrefix }, 'web-top could not remove its heartbeat')
    })
    if (ownsTracker) void this.#suspendTracker()
  }

  /** Returns to work after going idle. Returns false once closed. */
  wake(): boolean {
    if (this.state === 'closed') return false
    this.state = 'open'
    this.#settings.heartbeat.start()
    // A `suspend()` that began before the wake still parks the connection
    // when it ends, unless a record was written meanwhile. The heartbeat
    // written at once above does not count as one, so it is written again.
    const suspending = this.#suspending
    if (suspending !== undefined) void suspending.then(this.#resumeAfterSuspend)
    return true
  }

  readonly #resumeAfterSuspend = (): void => {
    if (this.state === 'open') this.#settings.heartbeat.writeNow()
  }

  /** Calls the tracker's `suspend()`, kept in `#suspending` until it ends. */
  async #suspendTracker(): Promise<void> {
    const suspending = this.#settings.tracker.suspend?.() ?? Promise.resolve()
    this.#suspending = suspending
    try {
      await suspending
    } finally {
      if (this.#suspending === suspending) this.#suspending = undefined
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    // A server's `close` event, and so Fastify's `onClose` hooks, can come
    // before the `close` event of a response whose client went away. Ended
    // now, such a request is recorded as aborted, not as cut by the close.
    this.#closing = true
    this.#settings.endRequestsOfClosedConnections()
    this.state = 'closed'
    stopClosingOnSignal(this)
    this.#settings.heartbeat.stop()

    const startedAt = Date.now()
    await this.#removeOwnEntries()
    if (this.#settings.ownsTracker) {
      const waitMs = Math.max(0, CLOSE_TIMEOUT_MS - (Date.now() - startedAt))
      await this.#settings.tracker.close({ waitMs })
    }
  }

  /** Forgets a server passed to `watchServer()` once it closes, and goes idle after the last one. */
  onServerClose(server: WatchedServer): void {
    this.#servers.delete(server)
    if (this.#servers.size === 0 && this.state === 'open') this.#goIdle()
  }

  /**
   * Starts the idle cleanup when the last request in flight has ended after
   * the recorder went idle. Goes idle when no watched server is open and
   * the recorder's connection would keep the process alive, as after
   * requests of `inject()` (Fastify, light-my-request) before any server
   * listens, or without one.
   */
  onLastRequestEnd(): void {
    if (this.#closing) return
    if (this.state === 'idle') {
      void this.#cleanUpIdle()
      return
    }
    if (this.state === 'open' && this.#servers.size === 0 && this.#idlesWithoutServer && this.#holdsProcess()) {
      this.#goIdle()
    }
  }

  /** Returns whether the recorder's connection can keep the process alive: a tracker it opened that can suspend. */
  #holdsProcess(): boolean {
    return this.#settings.ownsTracker && typeof this.#settings.tracker.suspend === 'function'
  }

  #goIdle(): void {
    // These requests end while the state is still open, so that
    // `onLastRequestEnd()` does not start a cleanup of its own. The comment
    // in `close()` explains why they can still be in flight.
    this.#settings.endRequestsOfClosedConnections()
    this.state = 'idle'
    this.#settings.heartbeat.stop()
    // Requests still in flight, such as those of a server the recorder has
    // not seen, keep the entries and connection until the last one ends.
    if (this.#settings.countInFlight() === 0) void this.#cleanUpIdle()
  }

  async #cleanUpIdle(): Promise<void> {
    await this.#removeOwnEntries()
    if (this.state === 'idle' && this.#settings.ownsTracker) {
      await this.#suspendTracker()
    }
  }

  /**
   * Ends this recorder's entries by cleanup, ordered after its pending
   * writes, then removes its heartbeat unless a request woke the recorder
   * meanwhile. Logs instead of throwing, and gives up after 2 s.
   */
  async #removeOwnEntries(): Promise<void> {
    const { tracker, processorIdPrefix: prefix, logger } = this.#settings
    let step = 'end the active tasks of this process'
    let consequence =
      'readers list this process and its active tasks until its heartbeat expires (heartbeatTtlMs), ' +
      'and then web-top-cli prune ends those tasks'
    const removal = async () => {
      if (tracker.queueRemoveProcessors !== undefined) {
        tracker.queueRemoveProcessors(prefix)
        await tracker.flush()
      } else {
        await tracker.flush()
        await tracker.removeProcessors(prefix)
      }
      // A request that woke an idle recorder meanwhile has written a new
      // heartbeat, which this removal would delete.
      if (this.state === 'open') return
      step = 'remove the heartbeat of this process'
      consequence = 'readers list this process as running until its heartbeat expires (heartbeatTtlMs)'
      await tracker.removeHeartbeat?.(prefix)
    }

    const done = removal().catch((err: unknown) => {
      logger.warn({ err, processorIdPrefix: prefix }, `web-top could not ${step}`)
    })
    if (!(await settleWithin(done, CLEANUP_TIMEOUT_MS))) {
      logger.warn(
        { timeoutMs: CLEANUP_TIMEOUT_MS, processorIdPrefix: prefix },
        `web-top timed out trying to ${step}: ${consequence}`,
      )
    }
  }
}
