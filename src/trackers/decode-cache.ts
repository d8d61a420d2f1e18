/**
 * Decoded records kept from one read of a tracker to the next, so that a
 * reader that reads the whole tracker again and again (the live view's
 * resync) parses only the records that changed.
 */
import { decodeTask, type DecodeResult } from '../task/wire'

/**
 * Decodes the records of one read. A raw record is JSON text, as a string
 * or as the UTF-8 bytes of a Buffer.
 */
export interface RecordDecoder {
  /** Decodes the active record stored under `processorId`. */
  decodeActive(processorId: string, raw: unknown): DecodeResult
  /** Decodes one completed record. */
  decodeCompleted(raw: unknown): DecodeResult
  /**
   * Returns the cached result for `processorId` without its raw record, for
   * a read that did not fetch the record because its length had not
   * changed, or undefined when nothing is cached for it.
   */
  reuseActive(processorId: string): DecodeResult | undefined
  /** Ends the read: records not decoded during it are forgotten. */
  finish(): void
}

/** Decodes one raw record: a string, or a Buffer of UTF-8 bytes. */
export function decodeRecord(raw: unknown): DecodeResult {
  return decodeTask(Buffer.isBuffer(raw) ? raw.toString('utf8') : raw)
}

/** A decoder that keeps nothing between reads. */
export const plainDecoder: RecordDecoder = {
  decodeActive: (_processorId, raw) => decodeRecord(raw),
  decodeCompleted: (raw) => decodeRecord(raw),
  reuseActive: () => undefined,
  finish: () => {},
}

type RawRecord = string | Buffer

interface CachedRecord {
  raw: RawRecord
  /** Length of `raw` in bytes, as Redis HSTRLEN counts it. */
  byteLength: number
  result: DecodeResult
  /** Number of the last light read that brought or reused the record. */
  lightRead: number
}

interface CachedCompleted {
  key: string
  result: DecodeResult
}

/**
 * The fields of the processors hash and their byte lengths as a light
 * read listed them, in the reply's order.
 */
export interface FieldListing {
  /** The field names joined with NUL bytes, as the script returns them. */
  joinedFields: string
  lengths: readonly number[]
  fields: readonly string[]
}

/**
 * Decode results of the latest read: active records by processor id,
 * completed records by their raw content. A record whose raw content is the
 * same, byte for byte, as at the previous read gets the same result, and so
 * the same task object, so callers must not change the tasks. Entries that
 * the latest read did not bring are dropped, so the cache contains at most
 * the records of one read.
 */
export class DecodeCache {
  #active = new Map<string, CachedRecord>()
  #completed = new Map<string, CachedCompleted>()
  #lightReads = 0
  /**
   * The listing of the latest read, when it was a light read after which
   * the cache contains exactly the listed fields, each with its listed
   * length. Any other read clears it.
   */
  #listing: FieldListing | undefined

  /** Records kept: active ones and distinct completed ones. */
  get size(): { active: number; completed: number } {
    return { active: this.#active.size, completed: this.#completed.size }
  }

  /** Byte length of the active record cached for `processorId`, or undefined when none is. */
  activeByteLength(processorId: string): number | undefined {
    return this.#active.get(processorId)?.byteLength
  }

  /**
   * Returns the listing of the latest read when its field names and
   * lengths are these, so that a light read that lists the same can skip
   * comparing each field with the cache. Returns undefined when they
   * differ, or when the latest read was not a light read that left the
   * cache matching its listing.
   */
  findListing(joinedFields: string, lengths: readonly number[]): FieldListing | undefined {
    const listing = this.#listing
    if (listing === undefined || listing.joinedFields !== joinedFields) return undefined
    const previous = listing.lengths
    if (previous.length !== lengths.length) return undefined
    for (let index = 0; index < lengths.length; index++) {
      if (previous[index] !== lengths[index]) return undefined
    }
    return listing
  }

  /** Returns whether `listing` is that of the latest read, and the cache has not changed since. */
  isCurrentListing(listing: FieldListing): boolean {
    return listing === this.#listing
  }

  /**
   * Starts a read. Until `finish()` is called on the returned decoder, the
   * cache keeps its previous entries, so a read that fails midway leaves it
   * as it was.
   */
  beginRead(): RecordDecoder {
    // An unchanged record keeps its entry, and so the raw record or key of
    // the read that first brought it: the new read's copy becomes garbage
    // while it is young, which is cheap to collect.
    const previousActive = this.#active
    const previousCompleted = this.#completed
    const nextActive = new Map<string, CachedRecord>()
    const nextCompleted = new Map<string, CachedCompleted>()

    return {
      decodeActive: (processorId, raw) => {
        if (!isRawRecord(raw)) return decodeRecord(raw)
        let entry = previousActive.get(processorId)
        if (entry === undefined || !isSameRecord(entry.raw, raw)) entry = createEntry(raw)
        nextActive.set(processorId, entry)
        return entry.result
      },
      decodeCompleted: (raw) => decodeCompletedWith(previousCompleted, nextCompleted, raw),
      reuseActive: (processorId) => {
        const entry = previousActive.get(processorId)
        if (entry === undefined) return undefined
        nextActive.set(processorId, entry)
        return entry.result
      },
      finish: () => {
        this.#active = nextActive
        this.#completed = nextCompleted
        this.#listing = undefined
      },
    }
  }

  /**
   * Starts a light read, which fetches only some active records and reuses
   * the others. Unlike `beginRead()`, it updates the active entries in place,
   * so that reusing 10,000 records costs no new map. `buildSnapshot` calls
   * it only after the fetch succeeded, in one synchronous pass, so a failed
   * fetch leaves the cache as it was.
   *
   * `listing` is what the read listed, when every field it fetched had
   * the listed length, so that the cache matches it after `finish()`. When
   * it is the current listing, the cache already contains exactly its
   * fields, and `finish()` skips looking for entries to drop.
   */
  beginLightRead(listing?: FieldListing): RecordDecoder {
    const lightRead = ++this.#lightReads
    const active = this.#active
    const previousCompleted = this.#completed
    const nextCompleted = new Map<string, CachedCompleted>()
    const unchanged = listing !== undefined && listing === this.#listing
    let decoded = false
    let missing = false

    return {
      decodeActive: (processorId, raw) => {
        decoded = true
        if (!isRawRecord(raw)) return decodeRecord(raw)
        let entry = active.get(processorId)
        if (entry === undefined || !isSameRecord(entry.raw, raw)) {
          entry = createEntry(raw)
          active.set(processorId, entry)
        }
        entry.lightRead = lightRead
        return entry.result
      },
      decodeCompleted: (raw) => decodeCompletedWith(previousCompleted, nextCompleted, raw),
      reuseActive: (processorId) => {
        const entry = active.get(processorId)
        if (entry === undefined) {
          missing = true
          return undefined
        }
        entry.lightRead = lightRead
        return entry.result
      },
      finish: () => {
        if (!unchanged || decoded) {
          for (const [processorId, entry] of active) {
            if (entry.lightRead !== lightRead) active.delete(processorId)
          }
        }
        this.#completed = nextCompleted
        // A listed field that is not cached, or a record decoded for a
        // listing that the cache matched already, leaves the cache out of
        // line with the listing.
        this.#listing = missing || (unchanged && decoded) ? undefined : listing
      },
    }
  }
}

/** Decodes a completed record, or takes it from `previous` or `next` by its raw content, and keeps it in `next`. */
function decodeCompletedWith(
  previous: Map<string, CachedCompleted>,
  next: Map<string, CachedCompleted>,
  raw: unknown,
): DecodeResult {
  if (!isRawRecord(raw)) return decodeRecord(raw)
  const key = completedKey(raw)
  const entry = next.get(key) ?? previous.get(key) ?? { key, result: decodeRecord(raw) }
  next.set(entry.key, entry)
  return entry.result
}

function isRawRecord(raw: unknown): raw is RawRecord {
  return typeof raw === 'string' || Buffer.isBuffer(raw)
}

function isSameRecord(stored: RawRecord, raw: RawRecord): boolean {
  if (typeof stored === 'string' || typeof raw === 'string') return stored === raw
  return stored.equals(raw)
}

/**
 * Returns the key of a completed record: a string as it is, and a Buffer
 * as Latin-1 text, one character per byte, which maps distinct bytes to
 * distinct keys. The first character marks which of the two it was.
 */
function completedKey(raw: RawRecord): string {
  return typeof raw === 'string' ? `s${raw}` : `b${raw.toString('latin1')}`
}

/**
 * Decodes an active record for the cache. A Buffer is copied into memory of its
 * own: a reply's Buffers are slices of larger ones, and a kept slice would
 * keep the whole reply in memory.
 */
function createEntry(raw: RawRecord): CachedRecord {
  const stored = typeof raw === 'string' ? raw : copyBuffer(raw)
  const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length
  return { raw: stored, byteLength, result: decodeRecord(raw), lightRead: 0 }
}

function copyBuffer(source: Buffer): Buffer {
  // allocUnsafeSlow, unlike Buffer.from, never shares a pooled slab with other Buffers.
  const copy = Buffer.allocUnsafeSlow(source.length)
  source.copy(copy)
  return copy
}
