import { markCompleted, type HttpTask } from '../task/http-task'
import { createPlainDecoder, type DecodeCache, type FieldListing, type RecordDecoder } from './decode-cache'
import type { TaskSnapshot } from './tracker'

/** Most skip reasons a snapshot keeps, apart from those of keys. */
export const MAX_SKIP_REASONS = 5

const ACTIVE_RECORD_REASON = 'active task of processor '
const COMPLETED_RECORD_REASON = 'completed task at index '

/** The active part of a snapshot that a light read built from the cache alone. */
interface ReusedActive {
  active: ReadonlyMap<string, HttpTask>
  reused: ReadonlySet<string>
  skipped: number
  skipReasons: readonly string[]
}

/**
 * The active part of the snapshot of each listing for which a light read
 * fetched nothing. While the cache keeps that listing (`isCurrentListing`)
 * and no read of it fetched a record since, a read of the same listing
 * takes the same tasks from the cache, so it copies this instead of
 * looking up each record.
 */
const reusedByListing = new WeakMap<FieldListing, ReusedActive>()

/**
 * Decodes raw records into a snapshot, counting the ones that cannot be
 * read. With a `cache`, records unchanged since its previous read are not
 * decoded again, and the active records of `reusedIds`, which the read did
 * not fetch, are taken from it. `listing` is the light read's listing when
 * the cache will match it (`DecodeCache.beginLightRead`). Records longer
 * than `maxRecordBytes` are counted as skipped without being parsed.
 */
export function buildSnapshot(
  activeEntries: Iterable<[string, unknown]>,
  completedTexts: Iterable<unknown>,
  lastClearedAt: string | null,
  cache?: DecodeCache,
  reusedIds?: readonly string[],
  listing?: FieldListing,
  maxRecordBytes = Infinity,
): TaskSnapshot {
  // Before the listing is looked up: another limit than the previous read's empties the cache.
  cache?.useRecordLimit(maxRecordBytes)
  const previous = listing !== undefined && cache?.isCurrentListing(listing) === true ? reusedByListing.get(listing) : undefined
  const cacheDecoder =
    reusedIds === undefined ? cache?.beginRead(maxRecordBytes) : cache?.beginLightRead(listing, maxRecordBytes)
  const decoder = cacheDecoder ?? createPlainDecoder(maxRecordBytes)
  const snapshot: TaskSnapshot = {
    active: new Map<string, HttpTask>(),
    completed: [],
    skipped: 0,
    skipReasons: [],
    activeSkipped: 0,
    lastClearedAt,
  }

  let fetched = 0
  // Only a light read, which reuses the other records, needs the fetched ones apart.
  const fetchedIds = new Set<string>()
  for (const [processorId, text] of activeEntries) {
    fetched++
    const result = decoder.decodeActive(processorId, text)
    if (result.ok) {
      snapshot.active.set(processorId, result.task)
      if (reusedIds !== undefined) fetchedIds.add(processorId)
    } else {
      addActiveSkip(snapshot, processorId, result.reason)
    }
  }
  if (reusedIds !== undefined) {
    if (previous !== undefined && fetched === 0) {
      copyReused(snapshot, previous)
    } else {
      addReused(snapshot, decoder, reusedIds, fetchedIds)
      if (listing !== undefined && fetched === 0) {
        reusedByListing.set(listing, keepReused(snapshot))
      } else if (listing !== undefined) {
        // A verified record may have replaced a cached task and left the listing as it was.
        reusedByListing.delete(listing)
      }
    }
  }

  let index = 0
  for (const text of completedTexts) {
    const result = decoder.decodeCompleted(text)
    if (result.ok) addCompleted(snapshot, result.task)
    else addCompletedSkip(snapshot, index, result.reason)
    index++
  }
  decoder.finish()
  return snapshot
}

/**
 * Adds a record of the completed list, marked so that one without an end
 * time shows an unknown duration rather than one that grows as if active.
 */
export function addCompleted(snapshot: TaskSnapshot, task: HttpTask): void {
  markCompleted(task)
  snapshot.completed.push(task)
}

function addReused(
  snapshot: TaskSnapshot,
  decoder: RecordDecoder,
  reusedIds: readonly string[],
  fetchedIds: ReadonlySet<string>,
): void {
  for (const processorId of reusedIds) {
    const result = decoder.reuseActive(processorId)
    if (result === undefined) {
      // The cache changed during the read: only a read that runs at the same time with the same cache does that.
      addActiveSkip(snapshot, processorId, 'not fetched and no longer cached')
    } else if (result.ok) {
      snapshot.active.set(processorId, result.task)
    } else {
      addActiveSkip(snapshot, processorId, result.reason)
    }
  }
  snapshot.reused = new ReusedIds(snapshot.active, fetchedIds)
}

/**
 * The processor ids of a light read's snapshot whose records came from
 * the cache: its active ids except those fetched. It is a view of the
 * snapshot's map, which a light read of 10,000 records would otherwise
 * copy into a set of 10,000 ids, so it changes if a caller changes that map.
 */
class ReusedIds implements ReadonlySet<string> {
  readonly #active: ReadonlyMap<string, HttpTask>
  readonly #fetched: ReadonlySet<string>

  /** `fetched` must contain only keys of `active`. */
  constructor(active: ReadonlyMap<string, HttpTask>, fetched: ReadonlySet<string>) {
    this.#active = active
    this.#fetched = fetched
  }

  get size(): number {
    return this.#active.size - this.#fetched.size
  }

  has(processorId: string): boolean {
    return this.#active.has(processorId) && !this.#fetched.has(processorId)
  }

  *keys(): IterableIterator<string> {
    for (const processorId of this.#active.keys()) {
      if (!this.#fetched.has(processorId)) yield processorId
    }
  }

  values(): IterableIterator<string> {
    return this.keys()
  }

  *entries(): IterableIterator<[string, string]> {
    for (const processorId of this.keys()) yield [processorId, processorId]
  }

  [Symbol.iterator](): IterableIterator<string> {
    return this.keys()
  }

  forEach(callback: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const processorId of this.keys()) callback.call(thisArg, processorId, processorId, this)
  }
}

/** Copies the active part of a snapshot that fetched nothing, which later reads of its listing copy back. */
function keepReused(snapshot: TaskSnapshot): ReusedActive {
  const active = new Map(snapshot.active)
  return {
    active,
    reused: new ReusedIds(active, new Set()),
    skipped: snapshot.skipped,
    skipReasons: [...snapshot.skipReasons],
  }
}

/** Fills a snapshot that fetched nothing with copies of the active part kept by `keepReused`. */
function copyReused(snapshot: TaskSnapshot, previous: ReusedActive): void {
  snapshot.active = new Map(previous.active)
  snapshot.reused = previous.reused
  snapshot.skipped = previous.skipped
  snapshot.activeSkipped = previous.skipped
  snapshot.skipReasons = [...previous.skipReasons]
}

/** Counts one unreadable record and keeps its reason while there is room. */
export function addSkip(snapshot: TaskSnapshot, reason: string): void {
  snapshot.skipped++
  if (snapshot.skipReasons.length < MAX_SKIP_REASONS) snapshot.skipReasons.push(reason)
}

/** Counts the unreadable active record of a processor, as `addSkip` does, and in `activeSkipped`. */
export function addActiveSkip(snapshot: TaskSnapshot, processorId: string, problem: string): void {
  addSkip(snapshot, `${ACTIVE_RECORD_REASON}${JSON.stringify(processorId)}: ${problem}`)
  snapshot.activeSkipped = (snapshot.activeSkipped ?? 0) + 1
}

/** Counts the unreadable record at `index` of the completed list, as `addSkip` does. */
export function addCompletedSkip(snapshot: TaskSnapshot, index: number, problem: string): void {
  addSkip(snapshot, `${COMPLETED_RECORD_REASON}${index}: ${problem}`)
  snapshot.lastSkippedCompletedIndex = index
}

/** Returns the reason `addCompletedSkip` gives for the record at `index`, up to its problem. */
export function describeCompletedSkipStart(index: number): string {
  return `${COMPLETED_RECORD_REASON}${index}: `
}

/**
 * Counts a key that could not be read at all. Key reasons go before those
 * of records and are always kept, so that `check` finds them however many
 * records were skipped.
 */
export function addKeySkip(snapshot: TaskSnapshot, reason: string): void {
  snapshot.skipped++
  const keys = snapshot.skipReasons.filter(isKeyReason)
  const records = snapshot.skipReasons.filter((each) => !isKeyReason(each))
  snapshot.skipReasons = [...keys, reason, ...records].slice(0, Math.max(MAX_SKIP_REASONS, keys.length + 1))
}

/**
 * Counts the key of the active tasks, which could not be read at all, as
 * `addKeySkip` does, and in `activeSkipped`, because a read of the active
 * tasks alone meets it again. `reason` is `key <processors key>: <problem>`.
 */
export function addActiveKeySkip(snapshot: TaskSnapshot, reason: string): void {
  addKeySkip(snapshot, reason)
  snapshot.activeSkipped = (snapshot.activeSkipped ?? 0) + 1
}

/**
 * Reason of `addActiveKeySkip`: the key name, which ends in `processors`,
 * comes right after `key `. A key prefix with a space in it does not match,
 * and live then counts the skip of that key twice.
 */
const ACTIVE_KEY_REASON = /^key \S*processors: /

/** Returns whether a skip reason concerns the active tasks (`addActiveSkip`, `addActiveKeySkip`). */
export function isActiveRecordReason(reason: string): boolean {
  return reason.startsWith(ACTIVE_RECORD_REASON) || ACTIVE_KEY_REASON.test(reason)
}

function isKeyReason(reason: string): boolean {
  return reason.startsWith('key ')
}
