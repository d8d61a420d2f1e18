/**
 * The live view's copy of the tracker: active and completed tasks, the
 * rolling figures and the heartbeats. Updates from `task_updates` are
 * applied here one by one, without a read. A full read (a resync) replaces
 * the active tasks and fills in completed tasks the stream did not bring.
 */
import { getCompletedKey, getEndedAtMs, getTaskKey } from '../task/derived'
import { hasEnded, type HttpTask } from '../task/http-task'
import { parseIsoTime } from '../task/time'
import { decodeTask, type DecodeOptions } from '../task/wire'
import { createStaleProcessorTest, type HeartbeatReport } from '../trackers/heartbeat'
import type { DecodeCache } from '../trackers/decode-cache'
import { isActiveRecordReason, MAX_SKIP_REASONS } from '../trackers/snapshot'
import type { TaskSnapshot } from '../trackers/tracker'
import { findMissingPeriod, findOldestEnd, type MissingPeriod } from './missing-period'
import { StatsWindow } from './stats'

/** An active task and the processor id it is stored under, when known. */
export interface ActiveEntry {
  task: HttpTask
  /** Field of the `processors` hash; for a task known only from an update, the id its writer uses. */
  processorId: string | undefined
}

/** Outcome of a resync. */
export interface ResyncResult {
  /** Completed tasks the read brought that the window had not seen. */
  recovered: number
  /** Period in which completed tasks may be missing, when the read did not reach back to its start. */
  missing: MissingPeriod | undefined
  /**
   * Active records of a light read whose content is unknown, because the
   * cached task ended on `task_updates` but its field still contains a
   * record of the same length. The next read should fetch every record.
   */
  unverified: number
}

export interface LiveStateOptions {
  windowMs: number
  /** Most completed tasks kept for the table. */
  completedLimit: number
  nowMs: number
  /**
   * The cache of the reads whose snapshots this state applies. Each active
   * record an update brings is kept in it (`DecodeCache.learnActive`), after
   * the read in flight if there is one, so that a read of the same bytes
   * returns the state's task object without decoding it.
   */
  decodeCache?: DecodeCache
  /** Maximum length of an update decoded, in UTF-8 bytes (`decodeTask`). Unset: no limit. */
  maxRecordBytes?: number | undefined
}

export class LiveState {
  readonly stats: StatsWindow
  readonly #completedLimit: number
  readonly #decodeCache: DecodeCache | undefined
  readonly #decodeOptions: DecodeOptions

  /** Active tasks by task key (`getTaskKey`). */
  active = new Map<string, ActiveEntry>()
  /** Completed tasks, the most recent end first, each once. */
  completed: HttpTask[] = []
  heartbeats: HeartbeatReport = { live: [], stalePrefixes: [] }
  /** The report that `#isStale` was made from. */
  #staleTestFor: HeartbeatReport | undefined
  #isStale: (processorId: string) => boolean = () => false
  skipped = 0
  skipReasons: string[] = []
  /** Updates that could not be decoded and were left out, since the view started. */
  skippedUpdates = 0
  /** Distinct reasons for the first few of `skippedUpdates`. */
  updateSkipReasons: string[] = []
  /** Time of the last change applied, from an update or a read, in epoch ms. */
  lastUpdateMs: number | undefined
  /** Updates applied since the view started. */
  updatesApplied = 0

  /**
   * Skipped records and keys of the last read with the completed list,
   * apart from active records. A read without that list keeps showing them.
   */
  #completedSkips: { skipped: number; reasons: string[] } = { skipped: 0, reasons: [] }
  #lastClearedAt: string | null = null
  #resyncs = 0
  /** Updates that arrived while a read was in flight, applied again on top of its result. */
  #replay: HttpTask[] | undefined
  /** Updates not yet passed to the decode cache, because a read was in flight when they arrived. */
  #unlearned: Array<{ processorId: string | undefined; json: string; task: HttpTask }> = []

  constructor(options: LiveStateOptions) {
    this.stats = new StatsWindow(options.windowMs, options.nowMs)
    this.#completedLimit = options.completedLimit
    this.#decodeCache = options.decodeCache
    this.#decodeOptions = { maxRecordBytes: options.maxRecordBytes }
  }

  /** Applies one message of `task_updates`. Returns false when it cannot be decoded. */
  applyUpdate(json: string, nowMs: number): boolean {
    const result = decodeTask(json, this.#decodeOptions)
    if (!result.ok) {
      this.skippedUpdates++
      const reasons = this.updateSkipReasons
      if (reasons.length < MAX_SKIP_REASONS && !reasons.includes(result.reason)) reasons.push(result.reason)
      return false
    }
    this.#replay?.push(result.task)
    const key = readTaskKey(result.task)
    const endedId = hasEnded(result.task) ? this.active.get(key)?.processorId : undefined
    this.#applyTask(result.task, nowMs)
    if (this.#decodeCache !== undefined) {
      const processorId = endedId ?? this.active.get(key)?.processorId ?? deriveProcessorId(result.task)
      this.#unlearned.push({ processorId, json, task: result.task })
      // A read in flight compares what it fetched with the cache, which must not change under it.
      if (this.#replay === undefined) this.#learnUpdates()
    }
    this.updatesApplied++
    this.lastUpdateMs = nowMs
    return true
  }

  /** Starts keeping the updates that arrive until `finishResync`. Call it just before a read. */
  beginResync(): void {
    this.#replay = []
  }

  /** Stops keeping updates after a read that failed. */
  abortResync(): void {
    this.#replay = undefined
    this.#learnUpdates()
  }

  /**
   * Passes the updates not yet passed to the decode cache: an active record
   * is kept under its processor id, and an end removes the record of a
   * request that no read listed, which the recorder has deleted from the hash.
   */
  #learnUpdates(): void {
    const cache = this.#decodeCache
    if (cache === undefined) return
    for (const { processorId, json, task } of this.#unlearned) {
      if (processorId === undefined) continue
      if (!hasEnded(task)) cache.learnActive(processorId, json, task)
      else cache.forgetUnlisted(processorId)
    }
    this.#unlearned = []
  }

  /**
   * Replaces the active tasks with those of a read, applies the updates that
   * arrived while it was in flight, and adds its completed tasks. `gapStartMs`
   * is the time from which updates may have been lost: when the connection
   * dropped, or the previous read when there is no stream. It is undefined
   * when no update was lost. With `completedFromReadOnly`, the view has no
   * update stream and polls: a completed task that the read no longer
   * returns is gone from the store, as after an app on `memory://` restarted.
   * `readCompleted` is false for a read that left out the completed list.
   */
  finishResync(
    snapshot: TaskSnapshot,
    nowMs: number,
    gapStartMs?: number,
    completedFromReadOnly = false,
    readCompleted = true,
  ): ResyncResult {
    const replay = this.#replay ?? []
    this.#replay = undefined

    const unverified = snapshot.reused === undefined ? this.#replaceActive(snapshot) : this.#mergeActive(snapshot, snapshot.reused)
    if (snapshot.lastClearedAt !== this.#lastClearedAt && this.#resyncs > 0) {
      this.#forgetBeforeClear(snapshot.lastClearedAt, nowMs)
    }
    if (completedFromReadOnly) {
      const stored = new Set(snapshot.completed.map((task) => readCompletedFacts(task).key))
      this.completed = this.completed.filter((task) => stored.has(readCompletedFacts(task).key))
    }
    this.#lastClearedAt = snapshot.lastClearedAt

    // A task object the list shows already went through `stats.add` and the
    // merge. The decode cache returns the same object for a record it read
    // before, so most completed records of a read are left out here.
    const listed = new Set(this.completed)
    const added = snapshot.completed.filter((task) => !listed.has(task))
    let recovered = 0
    for (const task of added) {
      if (this.stats.add(task, nowMs)) recovered++
    }
    // `#addCompleted` keeps the list in order, so a read without new completed records leaves it as it is.
    if (added.length > 0) this.#mergeCompleted(added)
    for (const task of replay) this.#applyTask(task, nowMs)

    const missing = this.#findMissing(snapshot, nowMs, gapStartMs)
    if (missing !== undefined) this.stats.addGap(missing.fromMs, missing.toMs)

    this.#learnUpdates()
    this.#countSkipped(snapshot, readCompleted)
    this.#resyncs++
    this.lastUpdateMs = nowMs
    return { recovered: this.#resyncs === 1 ? 0 : recovered, missing, unverified }
  }

  /**
   * Forgets the completed tasks and figures from before a clear of the
   * store at `lastClearedAt`. The tasks that the update stream brought
   * since the clear, before the read that found it, stay. Without a time
   * of the clear (the key is gone, as after a restart of Redis without its
   * data), nothing stays.
   */
  #forgetBeforeClear(lastClearedAt: string | null, nowMs: number): void {
    const clearedMs = parseIsoTime(lastClearedAt)
    this.completed =
      clearedMs === undefined ? [] : this.completed.filter((task) => readCompletedFacts(task).endedAtMs >= clearedMs)
    // The figures count from the clear on, which the clock of another host may put after this one's now.
    this.stats.clear(clearedMs === undefined ? nowMs : Math.min(clearedMs, nowMs))
    for (const task of this.completed) this.stats.add(task, nowMs)
  }

  /**
   * Sets `skipped` and `skipReasons`. A read without the completed list
   * counts its active records, plus what the last read with that list
   * skipped apart from active records, so the count does not change with
   * the kind of read.
   */
  #countSkipped(snapshot: TaskSnapshot, readCompleted: boolean): void {
    if (readCompleted) {
      this.skipped = snapshot.skipped
      this.skipReasons = snapshot.skipReasons
      this.#completedSkips = {
        skipped: snapshot.skipped - (snapshot.activeSkipped ?? 0),
        reasons: snapshot.skipReasons.filter((reason) => !isActiveRecordReason(reason)),
      }
      return
    }
    const carried = this.#completedSkips
    this.skipped = snapshot.skipped + carried.skipped
    this.skipReasons = [...carried.reasons, ...snapshot.skipReasons].slice(0, Math.max(MAX_SKIP_REASONS, carried.reasons.length))
  }

  /** Replaces the active tasks with those of a full read. Returns 0: nothing is unverified. */
  #replaceActive(snapshot: TaskSnapshot): number {
    this.active = new Map()
    for (const [processorId, task] of snapshot.active) {
      this.active.set(readTaskKey(task), { task, processorId })
    }
    return 0
  }

  /**
   * Brings the active tasks in line with a light read, in place, so that
   * an unchanged read costs a look-up per task and no new objects. The
   * result is that of `#replaceActive`, except for the records the read
   * took from the cache (`reused`). A cached task may be older than the
   * state's copy, which the stream changed since, so the state's entry
   * under that processor id wins. But when the state also has an entry of
   * the cached task itself, the stream started that task in the field, and
   * the other entries under that processor id ended without a message, as
   * requests left out by sampling do. Returns how many reused records no
   * entry claims: the stream ended the cached task, but its field still
   * contains a record of the same length, whose content is unknown.
   */
  #mergeActive(snapshot: TaskSnapshot, reused: ReadonlySet<string>): number {
    let reusedClaimed = 0
    for (const [key, entry] of this.active) {
      const processorId = entry.processorId
      const task = processorId === undefined ? undefined : snapshot.active.get(processorId)
      if (task === undefined) {
        this.active.delete(key)
      } else if (reused.has(processorId as string)) {
        const cachedKey = task === entry.task ? key : readTaskKey(task)
        if (cachedKey === key || !this.active.has(cachedKey)) reusedClaimed++
        else this.active.delete(key)
      } else if (task !== entry.task) {
        // A fetched record: Redis's copy wins, as in a full read.
        if (readTaskKey(task) === key) entry.task = task
        else this.active.delete(key)
      }
    }
    // When the read fetched nothing, every task of the snapshot is reused, and there is none to add.
    const fetchedAny = reused.size < snapshot.active.size
    for (const [processorId, task] of fetchedAny ? snapshot.active : []) {
      if (reused.has(processorId)) continue
      const key = readTaskKey(task)
      if (this.active.get(key)?.task !== task) this.active.set(key, { task, processorId })
    }
    return Math.max(0, reused.size - reusedClaimed)
  }

  /**
   * Returns the newest record of a task (`getTaskKey`): the active one, or
   * once the task ended, its most recent completed record. Returns
   * undefined when the state has neither.
   */
  findLatestTask(taskKey: string): HttpTask | undefined {
    const active = this.active.get(taskKey)
    if (active !== undefined) return active.task
    return this.completed.find((task) => readTaskKey(task) === taskKey)
  }

  /** Returns true when the task's processor belongs to a recorder whose heartbeat stopped. */
  isOrphaned(entry: ActiveEntry): boolean {
    const { processorId } = entry
    if (processorId === undefined) return false
    // Made once per heartbeat read: each entry's test then costs no more with thousands of stale prefixes.
    if (this.#staleTestFor !== this.heartbeats) {
      this.#staleTestFor = this.heartbeats
      this.#isStale = createStaleProcessorTest(this.heartbeats.stalePrefixes)
    }
    return this.#isStale(processorId)
  }

  #applyTask(task: HttpTask, nowMs: number): void {
    const key = readTaskKey(task)
    if (!hasEnded(task)) {
      const processorId = this.active.get(key)?.processorId ?? deriveProcessorId(task)
      this.active.set(key, { task, processorId })
      return
    }
    if (!this.active.delete(key)) this.#deleteStartOnOtherThread(task)
    this.stats.add(task, nowMs)
    this.#addCompleted(task)
  }

  /**
   * Deletes the active entry of an ended task whose end record names
   * another thread than its start, or none: the only entry with the same
   * task id, host and process. With several such entries, the next read
   * decides. Ends without an entry of their own are rare, so the scan of
   * the active tasks runs seldom.
   */
  #deleteStartOnOtherThread(task: HttpTask): void {
    if (task.task_id == null || task.task_id === '') return
    // Without a thread, the key ends with the `/` before it: `id:<task id>@<host>/<pid>/`.
    const keyStart = getTaskKey({ ...task, thread_id: null })
    let match: string | undefined
    for (const key of this.active.keys()) {
      if (!key.startsWith(keyStart)) continue
      if (match !== undefined) return
      match = key
    }
    if (match !== undefined) this.active.delete(match)
  }

  #addCompleted(task: HttpTask): void {
    const { key, endedAtMs } = readCompletedFacts(task)
    // Updates arrive about in end order, so the new record belongs near the top.
    let index = 0
    while (index < this.completed.length) {
      const other = this.completed[index] as HttpTask
      const facts = readCompletedFacts(other)
      if (facts.key === key) return
      if (facts.endedAtMs <= endedAtMs) break
      index++
    }
    if (index >= this.#completedLimit) return
    this.completed.splice(index, 0, task)
    if (this.completed.length > this.#completedLimit) this.completed.length = this.#completedLimit
  }

  #mergeCompleted(tasks: readonly HttpTask[]): void {
    const byKey = new Map<string, HttpTask>()
    for (const task of [...this.completed, ...tasks]) byKey.set(readCompletedFacts(task).key, task)
    this.completed = [...byKey.values()]
      .map((task) => ({ task, endedAtMs: readCompletedFacts(task).endedAtMs }))
      .sort((a, b) => b.endedAtMs - a.endedAtMs)
      .slice(0, this.#completedLimit)
      .map((entry) => entry.task)
  }

  /**
   * Returns the period whose completed tasks may be lost: `past_tasks` keeps
   * only the most recent ones, so when the oldest task read ended after the
   * gap began, the tasks that ended between the two may have been trimmed.
   * On the first read, sets where the window's full coverage starts instead.
   */
  #findMissing(
    snapshot: TaskSnapshot,
    nowMs: number,
    gapStartMs: number | undefined,
  ): ResyncResult['missing'] {
    const oldestMs = findOldestEnd(snapshot.completed)
    if (this.#resyncs === 0) {
      const windowStart = nowMs - this.stats.windowMs
      this.stats.setCoveredSince(oldestMs === undefined ? nowMs : Math.max(windowStart, oldestMs))
      return undefined
    }
    if (gapStartMs === undefined) return undefined
    return findMissingPeriod(snapshot.completed, gapStartMs, nowMs)
  }
}

/**
 * Task keys by record object. Reads return the same task object for a
 * record unchanged since the previous read (`DecodeCache`), so a full read
 * of 10,000 records builds and hashes only the keys of changed ones. In a
 * throwaway loop, filling a map of 10,000 entries took 1.5 ms with these
 * keys and 4 to 5 ms with new ones.
 */
const taskKeys = new WeakMap<HttpTask, string>()

/**
 * Completed key and end time (0 when unreadable) by record object. A read
 * with the completed list merges up to twice `completedLimit` tasks, most
 * of them the same objects as at the read before.
 */
const completedFacts = new WeakMap<HttpTask, { key: string; endedAtMs: number }>()

function readCompletedFacts(task: HttpTask): { key: string; endedAtMs: number } {
  let facts = completedFacts.get(task)
  if (facts === undefined) {
    facts = { key: getCompletedKey(task), endedAtMs: getEndedAtMs(task) ?? 0 }
    completedFacts.set(task, facts)
  }
  return facts
}

/** Returns `getTaskKey(task)`, built once per task object. */
function readTaskKey(task: HttpTask): string {
  let key = taskKeys.get(task)
  if (key === undefined) {
    key = getTaskKey(task)
    taskKeys.set(task, key)
  }
  return key
}

/**
 * Returns the processor id that web-top's recorder stores a task under
 * (`host/pid-thread-internal id`), or undefined for a record without those fields.
 */
export function deriveProcessorId(task: HttpTask): string | undefined {
  const { host_name, process_id, thread_id, process_internal_id } = task
  if (host_name == null || process_id == null || thread_id == null || process_internal_id == null) {
    return undefined
  }
  return `${host_name}/${process_id}-${thread_id}-${process_internal_id}`
}
