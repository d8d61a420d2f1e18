/**
 * The interface every tracker backend implements: a write side that the
 * recorder calls on the request path, and a read side for readers.
 */
import type { CleanupOutcome } from '../task/cleanup-end'
import type { HttpTask } from '../task/http-task'
import type { DecodeCache } from './decode-cache'
import type { Heartbeat, HeartbeatReport, PruneResult } from './heartbeat'

/** Result of one read of a tracker. */
export interface TaskSnapshot {
  /** Active tasks, keyed by processor id. */
  active: Map<string, HttpTask>
  /** Completed tasks, most recent first. */
  completed: HttpTask[]
  /** Records that could not be decoded and were left out. */
  skipped: number
  /** Reasons for the first few skipped records, for display. */
  skipReasons: string[]
  /**
   * Of `skipped`, those of the active tasks: their records and their key.
   * The rest concern the completed list and its key. Unset by trackers that
   * do not tell them apart.
   */
  activeSkipped?: number
  /**
   * Position in the completed list, as read, of the last completed record
   * that could not be decoded. Unset when none was skipped.
   */
  lastSkippedCompletedIndex?: number
  /** ISO 8601 time of the last clear, if the tracker stores one. */
  lastClearedAt: string | null
  /**
   * Keys without task records that the read found with another Redis type
   * than a tracker writes, such as a `last_cleared_at` list. Set only when
   * there are some.
   */
  wrongTypeKeys?: string[]
  /**
   * Set only by a read with `changedOnly` that did not fetch every record:
   * the processor ids whose records were not fetched because their byte
   * length had not changed. Their tasks come from the decode cache and may
   * be older than what `task_updates` published since.
   */
  reused?: ReadonlySet<string>
}

/** Counters a tracker keeps about its own writes. */
export interface TrackerStats {
  /** Task writes handed to the backend. */
  written: number
  /** Task writes dropped because the backend was unreachable, slow or full. */
  dropped: number
  /** Bytes of task records waiting to be written, including those in flight. */
  pendingBytes: number
}

export interface ReadOptions {
  /** Most completed tasks to read. */
  completedLimit?: number
  /**
   * Decoded records of the previous read with the same cache. Records
   * whose JSON text has not changed since are returned as the same task
   * objects without being decoded again. Trackers that receive records
   * already parsed (HTTP) ignore it.
   */
  decodeCache?: DecodeCache
  /**
   * With `decodeCache`: fetch only the active records that are new to the
   * cache or whose byte length changed, and reuse the cached ones for the
   * rest (listed in `TaskSnapshot.reused`). A record rewritten with the
   * same length is not seen unless `verifySlices` is set, so a reader
   * that uses this must learn of changes from `subscribe()`, and set
   * `verifySlices` or do a full read from time to time. Trackers that
   * cannot read this way (memory, HTTP, or Redis without EVAL permission)
   * do a full read and leave `reused` unset.
   */
  changedOnly?: boolean
  /**
   * With `changedOnly`: the number of slices into which the active records
   * are split by a hash of their processor id. Each light read with the
   * same `decodeCache` also fetches the records of the next slice and
   * compares them with the cache, so that a record rewritten with the same
   * length is read within this many light reads. 0 or unset: none.
   */
  verifySlices?: number
  /**
   * Maximum length of a record decoded, in UTF-8 bytes, as Redis stores
   * it. A longer record is counted in `TaskSnapshot.skipped`, with its
   * size in the reason, and is not parsed. The Redis tracker's light read
   * does not fetch it. The HTTP tracker receives its records parsed, and
   * measures them as compact JSON without escapes. Unset: no limit.
   * web-top-cli passes `DEFAULT_MAX_RECORD_BYTES` or its --max-record-size.
   */
  maxRecordBytes?: number
}

/** Called with the JSON text of each task update a tracker publishes. */
export type TaskUpdateListener = (json: string) => void

export interface Tracker {
  /** Short name of the backend, for messages: `redis`, `memory`. */
  readonly kind: string

  /**
   * Records that a task started on a processor. Returns at once and never
   * throws: a write that cannot be made is dropped and counted.
   */
  recordStart(processorId: string, taskJson: string): void

  /**
   * Records that the task on a processor ended: removes it from the active
   * tasks and adds it to the completed ones. Returns at once and never throws.
   */
  recordEnd(processorId: string, taskJson: string): void

  /**
   * Records a start like `recordStart()`, with the record given in parts:
   * `{${fixedFields},${startFields}${sharedFields}}`, where the parts are
   * JSON fields without braces and `sharedFields` is empty or starts with a
   * comma. The recorder passes the same `fixedFields` string to
   * `recordEndFields()`, and the same few `sharedFields` strings (process
   * facts and tags) for all its requests, so a tracker can send each once.
   * With `published` false (a request left out by `completedSampleRate`),
   * the active entry is stored but not published, and the request ends
   * through `recordDiscard()`. Returns at once and never throws.
   */
  recordStartFields?(
    processorId: string,
    fixedFields: string,
    startFields: string,
    sharedFields: string,
    published: boolean,
  ): void

  /** Records an end like `recordEnd()`, with the record `{${fixedFields},${endFields}${sharedFields}}`. */
  recordEndFields?(processorId: string, fixedFields: string, endFields: string, sharedFields: string): void

  /**
   * Removes the active entries whose processor id starts with
   * `processorIdPrefix` and returns their number. The Redis and memory
   * trackers end each by cleanup: a completed task with
   * `recorded_successfully: false` and the tag `web_top.outcome` set to
   * `outcome` (`recorder_closed` when not given), pushed and published
   * like any end.
   */
  removeProcessors(processorIdPrefix: string, outcome?: CleanupOutcome): Promise<number>

  /**
   * Queues `removeProcessors()`, ordered before every write handed over
   * after this call. Later repairs leave these entries out. Returns at
   * once and never throws.
   */
  queueRemoveProcessors?(processorIdPrefix: string, outcome?: CleanupOutcome): void

  /**
   * Removes the active entry of exactly this processor id without recording
   * a completed task, for a request that should not have been recorded.
   * Returns at once and never throws.
   */
  recordDiscard?(processorId: string): void

  /**
   * Stores a recorder's heartbeat for `ttlMs` milliseconds and lists its
   * processor id prefix among the heartbeats. Returns at once and never throws.
   */
  writeHeartbeat?(heartbeat: Heartbeat, ttlMs: number): void

  /** Deletes a recorder's heartbeat and its entry in the list, when it stops cleanly. */
  removeHeartbeat?(processorIdPrefix: string): Promise<void>

  /** Reads the live heartbeats and the prefixes whose heartbeat expired. */
  readHeartbeats?(): Promise<HeartbeatReport>

  /** Removes the active entries of recorders whose heartbeat expired. */
  pruneStaleTasks?(): Promise<PruneResult>

  /**
   * Sends pending writes, then stops the connection from keeping an idle
   * process alive (or closes it) until the next write.
   */
  suspend?(): Promise<void>

  /** Reads the active and the completed tasks. */
  read(options?: ReadOptions): Promise<TaskSnapshot>

  /** Calls `listener` for every task update until the returned function is called. */
  subscribe(listener: TaskUpdateListener): Promise<() => Promise<void>>

  /** Deletes all active and completed tasks and stores the time of the clear. */
  clear(): Promise<void>

  /** Resolves when every write handed over so far has been applied or dropped. */
  flush(): Promise<void>

  stats(): TrackerStats

  /**
   * Flushes pending writes and closes what the tracker opened. `waitMs`
   * bounds the wait for writes that the backend has not confirmed, where
   * the tracker waits for them at all.
   */
  close(options?: CloseOptions): Promise<void>
}

export interface CloseOptions {
  /** Maximum wait in milliseconds for the pending writes. Each tracker has its own default. */
  waitMs?: number
}
