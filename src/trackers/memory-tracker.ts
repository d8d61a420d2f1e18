/**
 * A tracker that keeps tasks in the memory of one process. It needs nothing
 * installed, serves single-process apps and tests, and is what the demo uses.
 */
import { requireCount } from '../errors'
import { endByCleanup, type CleanupOutcome } from '../task/cleanup-end'
import { formatIsoTime } from '../task/time'
import { DEFAULT_MAX_COMPLETED_TASKS } from './completed-cap'
import { sortHeartbeats, type Heartbeat, type HeartbeatReport, type PruneResult } from './heartbeat'
import { buildSnapshot } from './snapshot'
import type { ReadOptions, TaskSnapshot, TaskUpdateListener, Tracker, TrackerStats } from './tracker'

export interface MemoryTrackerOptions {
  /**
   * Most completed tasks kept; older ones are dropped.
   * @default 256
   */
  maxCompletedTasks?: number | undefined
}

export class MemoryTracker implements Tracker {
  readonly kind = 'memory'

  readonly #processors = new Map<string, string>()
  readonly #completed: string[] = []
  readonly #maxCompleted: number
  readonly #listeners = new Set<TaskUpdateListener>()
  #pendingUpdates: string[] = []
  #completedStart = 0
  #lastClearedAt: string | null = null
  #written = 0
  /** Heartbeats by processor id prefix, with the time they expire (ms since the epoch). */
  readonly #heartbeats = new Map<string, { heartbeat: Heartbeat; expiresAt: number }>()

  constructor(options: MemoryTrackerOptions = {}) {
    this.#maxCompleted = requireCount('maxCompletedTasks', options.maxCompletedTasks ?? DEFAULT_MAX_COMPLETED_TASKS)
  }

  /** Number of completed tasks kept. */
  get maxCompletedTasks(): number {
    return this.#maxCompleted
  }

  recordStart(processorId: string, taskJson: string): void {
    this.#processors.set(processorId, taskJson)
    this.#publish(taskJson)
  }

  recordEnd(processorId: string, taskJson: string): void {
    this.#processors.delete(processorId)
    this.#pushCompleted(taskJson)
    this.#publish(taskJson)
  }

  /** Records a start given in parts (see `Tracker.recordStartFields`); unpublished with `published` false. */
  recordStartFields(
    processorId: string,
    fixedFields: string,
    startFields: string,
    sharedFields: string,
    published: boolean,
  ): void {
    const taskJson = `{${fixedFields},${startFields}${sharedFields}}`
    this.#processors.set(processorId, taskJson)
    if (published) this.#publish(taskJson)
    else this.#written++
  }

  /** Records an end given in parts (see `Tracker.recordEndFields`). */
  recordEndFields(processorId: string, fixedFields: string, endFields: string, sharedFields: string): void {
    this.recordEnd(processorId, `{${fixedFields},${endFields}${sharedFields}}`)
  }

  /** Ends the matching active entries by cleanup, as completed tasks with `recorded_successfully: false`. */
  async removeProcessors(processorIdPrefix: string, outcome: CleanupOutcome = 'recorder_closed'): Promise<number> {
    return this.#endProcessors(processorIdPrefix, outcome).removed
  }

  queueRemoveProcessors(processorIdPrefix: string, outcome?: CleanupOutcome): void {
    void this.removeProcessors(processorIdPrefix, outcome)
  }

  recordDiscard(processorId: string): void {
    this.#processors.delete(processorId)
  }

  writeHeartbeat(heartbeat: Heartbeat, ttlMs: number): void {
    const expiresAt = Date.now() + ttlMs
    this.#heartbeats.set(heartbeat.processor_id_prefix, { heartbeat, expiresAt })
  }

  async removeHeartbeat(processorIdPrefix: string): Promise<void> {
    this.#heartbeats.delete(processorIdPrefix)
  }

  async readHeartbeats(): Promise<HeartbeatReport> {
    const now = Date.now()
    const live: Heartbeat[] = []
    const stalePrefixes: string[] = []
    for (const [prefix, { heartbeat, expiresAt }] of this.#heartbeats) {
      if (expiresAt > now) live.push(heartbeat)
      else stalePrefixes.push(prefix)
    }
    return { live: sortHeartbeats(live), stalePrefixes: stalePrefixes.sort() }
  }

  async pruneStaleTasks(): Promise<PruneResult> {
    const { stalePrefixes } = await this.readHeartbeats()
    let removedTasks = 0
    let endedTasks = 0
    for (const prefix of stalePrefixes) {
      this.#heartbeats.delete(prefix)
      const { removed, ended } = this.#endProcessors(prefix, 'process_stopped')
      removedTasks += removed
      endedTasks += ended
    }
    return { removedTasks, endedTasks, stalePrefixes }
  }

  async read(options: ReadOptions = {}): Promise<TaskSnapshot> {
    const limit = options.completedLimit ?? this.#maxCompleted
    return buildSnapshot(
      this.#processors.entries(),
      this.#recentCompleted(limit),
      this.#lastClearedAt,
      options.decodeCache,
      undefined,
      undefined,
      options.maxRecordBytes,
    )
  }

  async subscribe(listener: TaskUpdateListener): Promise<() => Promise<void>> {
    // A wrapper per call, so that the same function subscribed twice is called twice, as with Redis.
    const subscription: TaskUpdateListener = (json) => listener(json)
    this.#listeners.add(subscription)
    return async () => {
      this.#listeners.delete(subscription)
    }
  }

  async clear(): Promise<void> {
    this.#processors.clear()
    this.#completed.length = 0
    this.#completedStart = 0
    this.#lastClearedAt = formatIsoTime(Date.now())
  }

  async flush(): Promise<void> {}

  stats(): TrackerStats {
    return { written: this.#written, dropped: 0, pendingBytes: 0 }
  }

  async close(): Promise<void> {
    this.#listeners.clear()
  }

  /** Ends the entries whose processor id starts with the prefix, and deletes those that are not JSON objects. */
  #endProcessors(processorIdPrefix: string, outcome: CleanupOutcome): { removed: number; ended: number } {
    const endedAt = formatIsoTime(Date.now())
    let removed = 0
    let ended = 0
    for (const [processorId, taskJson] of this.#processors) {
      if (!processorId.startsWith(processorIdPrefix)) continue
      removed++
      const endJson = endByCleanup(taskJson, endedAt, outcome)
      if (endJson === null) {
        this.#processors.delete(processorId)
      } else {
        this.recordEnd(processorId, endJson)
        ended++
      }
    }
    return { removed, ended }
  }

  /** Stores completed tasks in a ring buffer, so a push costs the same at any size. */
  #pushCompleted(taskJson: string): void {
    if (this.#completed.length < this.#maxCompleted) {
      this.#completed.push(taskJson)
      return
    }
    this.#completed[this.#completedStart] = taskJson
    this.#completedStart = (this.#completedStart + 1) % this.#maxCompleted
  }

  /** Yields completed tasks, most recent first. */
  *#recentCompleted(limit: number): Generator<string> {
    const size = this.#completed.length
    for (let i = 0; i < Math.min(limit, size); i++) {
      const index = (this.#completedStart + size - 1 - i) % size
      yield this.#completed[index] as string
    }
  }

  /**
   * Queues an update for the subscribers. Updates are delivered on the next
   * turn of the event loop, as Redis pub/sub delivers them, so a listener
   * never runs inside the request that wrote the record.
   */
  #publish(taskJson: string): void {
    this.#written++
    if (this.#listeners.size === 0) return

    this.#pendingUpdates.push(taskJson)
    if (this.#pendingUpdates.length === 1) setImmediate(this.#deliverUpdates)
  }

  /**
   * Calls every listener with every queued update. An error thrown by a
   * listener is raised after all listeners ran, as an uncaught exception,
   * which is what an EventEmitter listener's error would be.
   */
  readonly #deliverUpdates = (): void => {
    const updates = this.#pendingUpdates
    this.#pendingUpdates = []
    let firstError: unknown

    for (const listener of this.#listeners) {
      for (const update of updates) {
        try {
          listener(update)
        } catch (err) {
          firstError ??= err
        }
      }
    }
    if (firstError !== undefined) throw firstError
  }
}
