/**
 * Decoded records kept from one read of a tracker to the next, so that a
 * reader that reads the whole tracker again and again (the live view's
 * resync) parses only the records that changed.
 */
import { isSampledOut } from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { decodeTask, describeOversizedRecord, findSizeProblem, type DecodeResult } from '../task/wire'

/**
 * A record over the read's size limit, of which only the length is kept:
 * the light read does not fetch it, and the cache keeps this in place of
 * its bytes.
 */
export class OversizedRecord {
  /** Length of the record in bytes, as Redis HSTRLEN counts it. */
  readonly byteLength: number

  constructor(byteLength: number) {
    this.byteLength = byteLength
  }
}

/**
 * Decodes the records of one read. A raw record is JSON text, as a string
 * or as the UTF-8 bytes of a Buffer, or an `OversizedRecord`.
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

/**
 * Decodes one raw record: a string, a Buffer of UTF-8 bytes, or an
 * `OversizedRecord`. A record longer than `maxRecordBytes` is rejected
 * before a Buffer is turned into a string.
 */
export function decodeRecord(raw: unknown, maxRecordBytes = Infinity): DecodeResult {
  if (Buffer.isBuffer(raw)) {
    const sizeProblem = findSizeProblem(raw, maxRecordBytes)
    return sizeProblem === undefined ? decodeTask(raw.toString('utf8')) : { ok: false, reason: sizeProblem }
  }
  if (raw instanceof OversizedRecord) {
    return { ok: false, reason: describeOversizedRecord(raw.byteLength, maxRecordBytes) }
  }
  return decodeTask(raw, { maxRecordBytes })
}

/** Returns a decoder that keeps nothing between reads. */
export function createPlainDecoder(maxRecordBytes = Infinity): RecordDecoder {
  return {
    decodeActive: (_processorId, raw) => decodeRecord(raw, maxRecordBytes),
    decodeCompleted: (raw) => decodeRecord(raw, maxRecordBytes),
    reuseActive: () => undefined,
    finish: () => {},
  }
}

type RawRecord = string | Buffer | OversizedRecord

interface CachedRecord extends CachedField {
  raw: RawRecord
  result: DecodeResult
  /** Number of the last light read that brought or reused the record. */
  lightRead: number
  /** Whether the record is tagged `web_top.sampled_out` (`DecodeCache.sampledOutFields`). */
  readonly sampledOut: boolean
}

/** The facts of a cached active record that a light read compares with its listing. */
export interface CachedField {
  /**
   * The processor id, as the same string object that keys the cache, so
   * that a light read that lists the field under it finds the entry without
   * hashing and comparing a new string.
   */
  readonly processorId: string
  /** Length of the raw record in bytes, as Redis HSTRLEN counts it. */
  readonly byteLength: number
  /** `hashFieldName` of the processor id, which picks the light read that verifies the record. */
  readonly fieldHash: number
}

/** Completed records of one read, in the list's order, with their decode results. */
interface CompletedList {
  raws: readonly RawRecord[]
  results: readonly DecodeResult[]
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
  /**
   * Offset of each name in `joinedFields`, and one more entry: the length
   * of `joinedFields` plus one. Set by the light read, which compares the
   * next listing with this one by these offsets (redis-changed-read.ts).
   */
  nameOffsets?: Int32Array
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
 * completed records in the list's order (`CompletedReader`). A record whose
 * raw content is the same, byte for byte, as at the previous read gets the
 * same result, and so the same task object, so callers must not change the
 * tasks. A completed record counts as the same only where the list kept the
 * previous read's order, as pushes at the head and trims leave it. Entries that
 * the latest read did not bring are dropped, so the cache contains at most
 * the records of one read, except that a light read without completed
 * records keeps those of the read before.
 */
export class DecodeCache {
  #active = new Map<string, CachedRecord>()
  /** Keys of the entries of `#active` whose record is tagged `web_top.sampled_out`. */
  #sampledOut = new Set<string>()
  #completed: CompletedList = { raws: [], results: [] }
  #lightReads = 0
  /** Size limit of the previous read, under which the cached results were decoded. */
  #maxRecordBytes: number | undefined
  /**
   * The listing of the latest read, when it was a light read after which
   * the cache contains exactly the listed fields, each with its listed
   * length. Any other read clears it.
   */
  #listing: FieldListing | undefined
  /**
   * The listing of the latest light read while every field it lists is
   * cached with its listed length. Unlike `#listing`, an update that adds
   * a field or rewrites one with the same length keeps it.
   */
  #base: FieldListing | undefined
  /**
   * The listing of the latest light read, whether the read succeeded or
   * not, with the cache's own key strings as names where it had the field.
   * The next light read compares its listing with it position by position
   * (redis-changed-read.ts).
   */
  previousListing: FieldListing | undefined

  /**
   * Processor ids of the cached active records tagged `web_top.sampled_out`:
   * requests left out by `completedSampleRate`, whose records are stored
   * and deleted without a publish. The next request in the same slot
   * usually has a record of the same length, so a light read fetches these
   * fields every time (`readChangedActive`).
   */
  get sampledOutFields(): ReadonlySet<string> {
    return this.#sampledOut
  }

  /** Records kept: active ones and distinct completed ones. */
  get size(): { active: number; completed: number } {
    const distinct = new Set(this.#completed.raws.map(describeRaw))
    return { active: this.#active.size, completed: distinct.size }
  }

  /**
   * Sets the size limit of the next read, in bytes. A cached result holds
   * for one limit only, so a limit other than the previous read's empties
   * the cache. Reads call it before they look at the cache.
   */
  useRecordLimit(maxRecordBytes: number): void {
    if (maxRecordBytes === this.#maxRecordBytes) return
    const first = this.#maxRecordBytes === undefined
    this.#maxRecordBytes = maxRecordBytes
    // Records learned before the first read come from the reader that reads with this limit.
    if (first) return
    this.#active = new Map()
    this.#sampledOut = new Set()
    this.#completed = { raws: [], results: [] }
    this.#listing = undefined
    this.#base = undefined
    this.previousListing = undefined
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

  /**
   * Keeps `task`, decoded from `json`, as the record of `processorId`, as
   * if a read had brought it. The live view passes each active record that
   * `task_updates` published. web-top's recorder stores the text it
   * publishes (APPLY_BATCH_SCRIPT), so a later read that fetches these
   * bytes, a new record or a verified slice, returns `task` without
   * decoding it again. A writer that stores other text of the same length
   * is corrected when the record's slice is verified. Call it only between
   * reads. A record the hash does not contain is not listed by the next
   * light read, which drops it.
   */
  learnActive(processorId: string, json: string, task: HttpTask): void {
    const byteLength = Buffer.byteLength(json)
    const raw = Buffer.allocUnsafeSlow(byteLength)
    raw.write(json, 'utf8')
    const previous = this.#active.get(processorId)
    const entry: CachedRecord = {
      processorId: previous?.processorId ?? processorId,
      raw,
      byteLength,
      fieldHash: previous?.fieldHash ?? hashFieldName(processorId),
      result: { ok: true, task },
      lightRead: previous?.lightRead ?? 0,
      sampledOut: isSampledOut(task),
    }
    this.#active.set(processorId, entry)
    this.#markSampledOut(entry)
    // The cache may no longer match the listing of the latest read. It
    // still has the listed length of every listed field unless this
    // record, cached before, changed length.
    this.#listing = undefined
    if (previous !== undefined && previous.byteLength !== byteLength) this.#base = undefined
  }

  /**
   * Drops the record of `processorId` when it came from `learnActive` and
   * no light read listed it since, so that requests that start and end
   * between two reads leave nothing behind. Such a record is in no listing
   * that `matchesListing` vouches for. Call it only between reads.
   */
  forgetUnlisted(processorId: string): void {
    if (this.#active.get(processorId)?.lightRead !== 0) return
    this.#active.delete(processorId)
    this.#sampledOut.delete(processorId)
  }

  /** Adds the key of `entry`, just cached, to `#sampledOut` or removes it. */
  #markSampledOut(entry: CachedRecord): void {
    if (entry.sampledOut) this.#sampledOut.add(entry.processorId)
    else if (this.#sampledOut.size > 0) this.#sampledOut.delete(entry.processorId)
  }

  /**
   * Returns whether every field of `listing` is cached with the length it
   * lists, as after the light read that listed it, so that a later light
   * read can compare lengths with the listing instead of the cache.
   */
  matchesListing(listing: FieldListing): boolean {
    return listing === this.#base
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
  beginRead(maxRecordBytes = Infinity): RecordDecoder {
    this.useRecordLimit(maxRecordBytes)
    // An unchanged record keeps its entry, and so the raw record or key of
    // the read that first brought it: the new read's copy becomes garbage
    // while it is young, which is cheap to collect.
    const previousActive = this.#active
    const nextActive = new Map<string, CachedRecord>()
    const nextSampledOut = new Set<string>()
    const completed = new CompletedReader(this.#completed, maxRecordBytes)

    return {
      decodeActive: (processorId, raw) => {
        if (!isRawRecord(raw)) return decodeRecord(raw)
        const previous = previousActive.get(processorId)
        const entry =
          previous !== undefined && isSameRecord(previous.raw, raw)
            ? previous
            : createEntry(previous?.processorId ?? processorId, raw, maxRecordBytes)
        nextActive.set(entry.processorId, entry)
        if (entry.sampledOut) nextSampledOut.add(entry.processorId)
        return entry.result
      },
      decodeCompleted: (raw) => completed.decode(raw),
      reuseActive: (processorId) => {
        const entry = previousActive.get(processorId)
        if (entry === undefined) return undefined
        nextActive.set(entry.processorId, entry)
        if (entry.sampledOut) nextSampledOut.add(entry.processorId)
        return entry.result
      },
      finish: () => {
        this.#active = nextActive
        this.#sampledOut = nextSampledOut
        this.#completed = completed.finish()
        this.#listing = undefined
        this.#base = undefined
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
  beginLightRead(listing?: FieldListing, maxRecordBytes = Infinity): RecordDecoder {
    this.useRecordLimit(maxRecordBytes)
    const lightRead = ++this.#lightReads
    const active = this.#active
    const completed = new CompletedReader(this.#completed, maxRecordBytes)
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
          // A replaced entry keeps the key string, which the map keeps too.
          const created = createEntry(entry?.processorId ?? processorId, raw, maxRecordBytes)
          if (entry === undefined || entry.byteLength !== created.byteLength) reshaped = true
          entry = created
          active.set(processorId, entry)
          this.#markSampledOut(entry)
        }
        entry.lightRead = lightRead
        return entry.result
      },
      decodeCompleted: (raw) => {
        readCompleted = true
        return completed.decode(raw)
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
          const sampledOut = this.#sampledOut
          for (const [processorId, entry] of active) {
            if (entry.lightRead === lightRead) continue
            active.delete(processorId)
            if (entry.sampledOut) sampledOut.delete(processorId)
          }
        }
        // Most light reads leave out the completed records, so the cache
        // keeps those of the last read that had some.
        if (readCompleted) this.#completed = completed.finish()
        // A listed field that is not cached, or a field added or resized
        // for a listing that the cache matched already, leaves the cache
        // out of line with the listing.
        this.#listing = missing || (unchanged && reshaped) ? undefined : listing
        this.#base = this.#listing
      },
    }
  }
}

/**
 * Decodes the completed records of one read, in the list's order. A
 * recorder pushes new records at the head of the list and trims its tail,
 * so the previous read's records come shifted by the number pushed since.
 * Once a record equals the first record of the previous read, each later
 * record is compared, byte for byte, with the previous read's record at
 * the same shift, and gets its result when they are equal. This needs no
 * key: a key of 500 records of 1.7 KB costs a string and its hash each.
 * A record found nowhere in the previous list by this rule is decoded.
 */
class CompletedReader {
  readonly #previous: CompletedList
  readonly #maxRecordBytes: number
  readonly #raws: RawRecord[] = []
  readonly #results: DecodeResult[] = []
  /** Position in this read minus position in the previous one, once the previous first record was found. */
  #shift = -1

  constructor(previous: CompletedList, maxRecordBytes: number) {
    this.#previous = previous
    this.#maxRecordBytes = maxRecordBytes
  }

  decode(raw: unknown): DecodeResult {
    if (!isRawRecord(raw)) return decodeRecord(raw)
    const { raws, results } = this.#previous
    const index = this.#raws.length
    const first = raws[0]
    if (this.#shift < 0 && first !== undefined && isSameRecord(first, raw)) this.#shift = index
    const at = index - this.#shift
    const previous = this.#shift >= 0 ? raws[at] : undefined
    if (previous !== undefined && isSameRecord(previous, raw)) {
      this.#raws.push(previous)
      this.#results.push(results[at] as DecodeResult)
    } else {
      const { stored, result } = decodeForCache(raw, this.#maxRecordBytes)
      this.#raws.push(stored)
      this.#results.push(result)
    }
    return this.#results[index] as DecodeResult
  }

  finish(): CompletedList {
    return { raws: this.#raws, results: this.#results }
  }
}

function isRawRecord(raw: unknown): raw is RawRecord {
  return typeof raw === 'string' || Buffer.isBuffer(raw) || raw instanceof OversizedRecord
}

/**
 * Returns whether `raw` gets the result cached for `stored`. A record over
 * the limit is cached as its length only, which is all its result depends on.
 */
function isSameRecord(stored: RawRecord, raw: RawRecord): boolean {
  // Buffers first: a read compares 10,000 of them, and `instanceof` of
  // another class walks a Buffer's whole prototype chain.
  if (Buffer.isBuffer(stored)) return Buffer.isBuffer(raw) && stored.equals(raw)
  if (typeof stored === 'string') return stored === raw
  return stored.byteLength === measureRaw(raw)
}

function measureRaw(raw: RawRecord): number {
  if (Buffer.isBuffer(raw)) return raw.length
  return typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength
}

/** Returns a key under which equal raw records fall together, for `DecodeCache.size`. */
function describeRaw(raw: RawRecord): string {
  if (raw instanceof OversizedRecord) return `o${raw.byteLength}`
  return typeof raw === 'string' ? `s${raw}` : `b${raw.toString('latin1')}`
}

/**
 * Decodes a record for the cache and returns what the cache keeps of it. A
 * Buffer is copied into memory of its own: a reply's Buffers are slices of
 * larger ones, and a kept slice would keep the whole reply in memory. A
 * record over `maxRecordBytes` is neither decoded nor kept: the cache keeps
 * its length, so that a read that brings it again costs no copy.
 */
function decodeForCache(raw: RawRecord, maxRecordBytes: number): { stored: RawRecord; result: DecodeResult } {
  const result = decodeRecord(raw, maxRecordBytes)
  if (!Buffer.isBuffer(raw)) return { stored: raw, result }
  if (raw.length > maxRecordBytes) return { stored: new OversizedRecord(raw.length), result }
  return { stored: copyBuffer(raw), result }
}

/** Decodes an active record for the cache (`decodeForCache`). */
function createEntry(processorId: string, raw: RawRecord, maxRecordBytes: number): CachedRecord {
  const { stored, result } = decodeForCache(raw, maxRecordBytes)
  const byteLength = measureRaw(stored)
  const fieldHash = hashFieldName(processorId)
  const sampledOut = result.ok && isSampledOut(result.task)
  return { processorId, raw: stored, byteLength, fieldHash, result, lightRead: 0, sampledOut }
}

function copyBuffer(source: Buffer): Buffer {
  // allocUnsafeSlow, unlike Buffer.from, never shares a pooled slab with other Buffers.
  const copy = Buffer.allocUnsafeSlow(source.length)
  source.copy(copy)
  return copy
}
