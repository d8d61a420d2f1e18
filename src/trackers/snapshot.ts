import type { HttpTask } from '../task/http-task'
import { plainDecoder, type DecodeCache } from './decode-cache'
import type { TaskSnapshot } from './tracker'

const MAX_SKIP_REASONS = 5

/**
 * Decodes raw records into a snapshot, counting the ones that cannot be
 * read. With a `cache`, records unchanged since its previous read are not
 * decoded again.
 */
export function buildSnapshot(
  activeEntries: Iterable<[string, unknown]>,
  completedTexts: Iterable<unknown>,
  lastClearedAt: string | null,
  cache?: DecodeCache,
): TaskSnapshot {
  const decoder = cache?.beginRead() ?? plainDecoder
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

/** Counts one unreadable record (or key) and keeps its reason while there is room. */
export function addSkip(snapshot: TaskSnapshot, reason: string): void {
  snapshot.skipped++
  if (snapshot.skipReasons.length < MAX_SKIP_REASONS) snapshot.skipReasons.push(reason)
}
