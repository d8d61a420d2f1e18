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

interface CachedRecord extends CachedField {
  raw: RawRecord
  result: DecodeResult
  /** Number of the last light read that brought or reused the record. */
  lightRead: number
}

/** The facts of a cached active record that a light read compares with its listing. */
export interface CachedField {
  /** Length of the raw record in bytes, as Redis HSTRLEN counts it. */
  readonly byteLength: number
  /** `hashFieldName` of the processor id, which picks the light read that verifies the record. */
  readonly fieldHash: number
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
  /** `hashFieldName` of each field, by which a light read picks the records it verifies. */
  fieldHashes: Uint32Array
}

/**
 * Returns the 32-bit FNV-1a hash of the UTF-16 code units of a field name.
 * A light read that verifies one slice of the records picks them by this
 * hash modulo the number of slices, so a field stays in its slice when
 * other fields come and go or Redis lists them in another order.
 */
export function hashFieldName(name: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < name.length; index++) {
    hash ^= name.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * Decode results of the latest read: active records by processor id,
 * completed records by their raw content. A record whose raw content is the
 * same, byte for byte, as at the previous read gets the same result, and so
 * the same task object, so callers must not change the tasks. Entries that
 * the latest read did not bring are dropped, so the cache contains at most
 * the records of one read, except that a light read without completed
 * records keeps those of the read before.
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

  /** Byte length and field hash of the active record cached for `processorId`, or undefined when none is. */
  activeField(processorId: string): CachedField | undefined {
    return this.#active.get(processorId)
  }

  /**
   * Returns which of `slices` slices the next light read verifies. It
   * advances by one with each light read that reaches the cache, so
   * `slices` light reads in a row verify each slice once.
   */
  verifiedSlice(slices: number): number {
    return this.#lightReads % slices
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
        if (entry === undefined || !isSameRecord(entry.raw, raw)) entry = createEntry(processorId, raw)
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
   * fields, and `finish()` skips looking for entries to drop unless the
   * read added a field or changed a record's length.
   */
  beginLightRead(listing?: FieldListing): RecordDecoder {
    const lightRead = ++this.#lightReads
    const active = this.#active
    const previousCompleted = this.#completed
    const nextCompleted = new Map<string, CachedCompleted>()
    const unchanged = listing !== undefined && listing === this.#listing
    // Set when the read adds a field to the cache or changes a record's
    // length. For an unchanged listing, which the cache matched already,
    // only a record it verified (same field, same length) keeps the match.
    let reshaped = false
    let missing = false
    let readCompleted = false

    return {
      decodeActive: (processorId, raw) => {
        if (!isRawRecord(raw)) {
          reshaped = true
          return decodeRecord(raw)
        }
        let entry = active.get(processorId)
        if (entry === undefined || !isSameRecord(entry.raw, raw)) {
          const created = createEntry(processorId, raw)
          if (entry === undefined || entry.byteLength !== created.byteLength) reshaped = true
          entry = created
          active.set(processorId, entry)
        }
        entry.lightRead = lightRead
        return entry.result
      },
      decodeCompleted: (raw) => {
        readCompleted = true
        return decodeCompletedWith(previousCompleted, nextCompleted, raw)
      },
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
        if (!unchanged || reshaped) {
          for (const [processorId, entry] of active) {
            if (entry.lightRead !== lightRead) active.delete(processorId)
          }
        }
        // Most light reads leave out the completed records, so the cache
        // keeps those of the last read that had some.
        if (readCompleted) this.#completed = nextCompleted
        // A listed field that is not cached, or a field added or resized
        // for a listing that the cache matched already, leaves the cache
        // out of line with the listing.
        this.#listing = missing || (unchanged && reshaped) ? undefined : listing
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
function createEntry(processorId: string, raw: RawRecord): CachedRecord {
  const stored = typeof raw === 'string' ? raw : copyBuffer(raw)
  const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length
  return { raw: stored, byteLength, fieldHash: hashFieldName(processorId), result: decodeRecord(raw), lightRead: 0 }
}

function copyBuffer(source: Buffer): Buffer {
  // allocUnsafeSlow, unlike Buffer.from, never shares a pooled slab with other Buffers.
  const copy = Buffer.allocUnsafeSlow(source.length)
  source.copy(copy)
  return copy
}
