/**
 * Decoded records kept from one read of a tracker to the next, so that a
 * reader that reads the whole tracker again and again (the live view's
 * resync) parses only the records that changed.
 */
import { decodeTask, type DecodeResult } from '../task/wire'

/** Decodes the records of one read. */
export interface RecordDecoder {
  /** Decodes the active record stored under `processorId`. */
  decodeActive(processorId: string, text: unknown): DecodeResult
  /** Decodes one completed record. */
  decodeCompleted(text: unknown): DecodeResult
  /** Ends the read: records not decoded during it are forgotten. */
  finish(): void
}

/** A decoder that keeps nothing between reads. */
export const plainDecoder: RecordDecoder = {
  decodeActive: (_processorId, text) => decodeTask(text),
  decodeCompleted: (text) => decodeTask(text),
  finish: () => {},
}

interface CachedActive {
  text: string
  result: DecodeResult
}

/**
 * Decode results of the latest read: active records by processor id,
 * completed records by their JSON text. A record whose text is the same,
 * character for character, as at the previous read gets the same result,
 * and so the same task object, so callers must not change the tasks.
 * Entries that the latest read did not bring are dropped, so the cache
 * holds at most the records of one read.
 */
export class DecodeCache {
  #active = new Map<string, CachedActive>()
  #completed = new Map<string, DecodeResult>()

  /** Records kept: active ones and distinct completed texts. */
  get size(): { active: number; completed: number } {
    return { active: this.#active.size, completed: this.#completed.size }
  }

  /**
   * Starts a read. Until `finish()` is called on the returned decoder, the
   * cache keeps its previous entries, so a read that fails midway leaves it
   * as it was.
   */
  beginRead(): RecordDecoder {
    const previousActive = this.#active
    const previousCompleted = this.#completed
    const nextActive = new Map<string, CachedActive>()
    const nextCompleted = new Map<string, DecodeResult>()

    return {
      decodeActive: (processorId, text) => {
        if (typeof text !== 'string') return decodeTask(text)
        const previous = previousActive.get(processorId)
        const result = previous !== undefined && previous.text === text ? previous.result : decodeTask(text)
        nextActive.set(processorId, { text, result })
        return result
      },
      decodeCompleted: (text) => {
        if (typeof text !== 'string') return decodeTask(text)
        const result = nextCompleted.get(text) ?? previousCompleted.get(text) ?? decodeTask(text)
        nextCompleted.set(text, result)
        return result
      },
      finish: () => {
        this.#active = nextActive
        this.#completed = nextCompleted
      },
    }
  }
}
