import type { HttpTask } from '../task/http-task'
import { plainDecoder, type DecodeCache, type RecordDecoder } from './decode-cache'
import type { TaskSnapshot } from './tracker'

const MAX_SKIP_REASONS = 5

/**
 * Decodes raw records into a snapshot, counting the ones that cannot be
 * read. With a `cache`, records unchanged since its previous read are not
 * decoded again, and the active records of `reusedIds`, which the read did
 * not fetch, are taken from it.
 */
export function buildSnapshot(
  activeEntries: Iterable<[string, unknown]>,
  completedTexts: Iterable<unknown>,
  lastClearedAt: string | null,
  cache?: DecodeCache,
  reusedIds?: readonly string[],
): TaskSnapshot {
  const decoder = (reusedIds === undefined ? cache?.beginRead() : cache?.beginLightRead()) ?? plainDecoder
  const snapshot: TaskSnapshot = {
    active: new Map<string, HttpTask>(),
    completed: [],
    skipped: 0,
    skipReasons: [],
    lastClearedAt,
  }

  for (const [processorId, text] of activeEntries) {
    const result = decoder.decodeActive(processorId, text)
    if (result.ok) snapshot.active.set(processorId, result.task)
    else addSkip(snapshot, `active task of processor ${JSON.stringify(processorId)}: ${result.reason}`)
  }
  if (reusedIds !== undefined) addReused(snapshot, decoder, reusedIds)

  let index = 0
  for (const text of completedTexts) {
    const result = decoder.decodeCompleted(text)
    if (result.ok) snapshot.completed.push(result.task)
    else addSkip(snapshot, `completed task at index ${index}: ${result.reason}`)
    index++
  }
  decoder.finish()
  return snapshot
}

function addReused(snapshot: TaskSnapshot, decoder: RecordDecoder, reusedIds: readonly string[]): void {
  const reused = new Set<string>()
  for (const processorId of reusedIds) {
    const result = decoder.reuseActive(processorId)
    if (result === undefined) {
      // The cache changed during the read: only a read that runs at the same time with the same cache does that.
      addSkip(snapshot, `active task of processor ${JSON.stringify(processorId)}: not fetched and no longer cached`)
    } else if (result.ok) {
      snapshot.active.set(processorId, result.task)
      reused.add(processorId)
    } else {
      addSkip(snapshot, `active task of processor ${JSON.stringify(processorId)}: ${result.reason}`)
    }
  }
  snapshot.reused = reused
}

/** Counts one unreadable record (or key) and keeps its reason while there is room. */
export function addSkip(snapshot: TaskSnapshot, reason: string): void {
  snapshot.skipped++
  if (snapshot.skipReasons.length < MAX_SKIP_REASONS) snapshot.skipReasons.push(reason)
}
