/**
 * The light read of the processors hash: the field names and value lengths
 * first, then HMGET of the fields that are new to a decode cache or whose
 * length changed, of the fields whose cached record is tagged
 * `web_top.sampled_out`, and of one slice of the others to verify them.
 * The other records are taken from the cache, so an unchanged hash of
 * 10,000 records of 1.4 KB verified in 30 slices costs a reply of about
 * 900 KB instead of 14 MB.
 */
import type { RedisClient } from './redis-tracker'
import { hashFieldName, OversizedRecord, type DecodeCache, type FieldListing } from './decode-cache'

/** Name under which the tracker defines FIELD_LENGTHS_SCRIPT on its client. */
export const FIELD_LENGTHS_COMMAND = 'webTopFieldLengths'

type FieldLengths = (processorsKey: string) => Promise<[string, number[]]>

/** Result of the light read of the processors hash. */
export interface ChangedActive {
  /**
   * Records fetched, because they are new to the cache, their length
   * changed, their cached record is tagged `web_top.sampled_out`, or their
   * slice is verified. A record that would be fetched but is longer than
   * the read's limit comes as an `OversizedRecord`.
   */
  fetched: Array<[string, Buffer | OversizedRecord]>
  /** Fields whose cached record is kept, because the length is the same. */
  reusedIds: readonly string[]
  /**
   * The fields and lengths listed, when every record fetched had its
   * listed length, so that the cache will match the listing once the read
   * is decoded (`DecodeCache.beginLightRead`).
   */
  listing: FieldListing | undefined
}

/**
 * Lists the fields of `processorsKey` with their lengths, compares them with
 * `cache`, and fetches the records that are new or changed length. It also
 * fetches the fields of `DecodeCache.sampledOutFields` at every light read,
 * because the recorder stores and deletes those records without a publish,
 * so the live view learns of no change to them. With `verifySlices` above
 * 0, it also fetches the records of one slice of the fields: `hashFieldName`
 * modulo `verifySlices`, the next slice at each light read. So the cache
 * replaces a record rewritten with the same length within `verifySlices`
 * light reads. A field deleted between the two steps is left out. A
 * record longer than `maxRecordBytes` is not fetched at all. Returns
 * undefined when a field name contains a NUL byte, so that the caller
 * reads everything. Rejects with the server's error when the script
 * cannot run (NOPERM, unknown command).
 */
export async function readChangedActive(
  client: RedisClient,
  processorsKey: string,
  cache: DecodeCache,
  verifySlices = 0,
  maxRecordBytes = Infinity,
): Promise<ChangedActive | undefined> {
  // Before the cache is compared with the listing: another limit than the previous read's empties it.
  cache.useRecordLimit(maxRecordBytes)
  const fieldLengths = (client as unknown as Record<string, FieldLengths>)[FIELD_LENGTHS_COMMAND] as FieldLengths
  const [joinedFields, lengths] = await fieldLengths.call(client, processorsKey)
  // Nothing was added, removed or changed length since the previous light
  // read: its fields are cached with these lengths, so only the verified
  // slice and the sampled-out records are fetched.
  const same = cache.findListing(joinedFields, lengths)
  const sampledOut = cache.sampledOutFields
  const hasSampledOut = sampledOut.size > 0
  if (same !== undefined && verifySlices <= 0 && !hasSampledOut) {
    return { fetched: [], reusedIds: same.fields, listing: same }
  }

  const slice = verifySlices > 0 ? cache.verifiedSlice(verifySlices) : -1
  const isVerified = (fieldHash: number) => slice >= 0 && fieldHash % verifySlices === slice
  const listed = same === undefined ? listFields(joinedFields, lengths, cache) : undefined
  let listing: FieldListing | undefined = same ?? listed?.listing
  // A field name that contains a NUL byte splits in two: only a full read can list such names.
  if (listing === undefined) return undefined

  const { fields, fieldHashes } = listing
  const fetchedIds: string[] = []
  const fetchedLengths: number[] = []
  const reusedIds: string[] = []
  const fetched: Array<[string, Buffer | OversizedRecord]> = []
  for (let index = 0; index < fields.length; index++) {
    const processorId = fields[index] as string
    const length = lengths[index] as number
    const fetch =
      isVerified(fieldHashes[index] as number) ||
      listed?.changed[index] === 1 ||
      (hasSampledOut && sampledOut.has(processorId))
    if (fetch && length > maxRecordBytes) {
      fetched.push([processorId, new OversizedRecord(length)])
    } else if (fetch) {
      fetchedIds.push(processorId)
      fetchedLengths.push(length)
    } else {
      reusedIds.push(processorId)
    }
  }
  cache.previousListing = listing

  if (fetchedIds.length === 0) return { fetched, reusedIds, listing }
  const values = await client.hmgetBuffer(processorsKey, ...fetchedIds)
  for (let index = 0; index < fetchedIds.length; index++) {
    const value = values[index]
    if (value != null) fetched.push([fetchedIds[index] as string, value])
    // Deleted or rewritten between the two steps: the cache will not match the listing.
    if (value?.length !== fetchedLengths[index]) listing = undefined
  }
  return { fetched, reusedIds, listing }
}

/** A listing, and which of its fields are new to the cache or changed length (1) or not (0). */
interface ListedFields {
  listing: FieldListing
  changed: Uint8Array
}

/**
 * Fields of the previous listing tried in order at each position before a
 * name is looked up as a new string. Redis lists a hash in the order of its
 * buckets, which fields added or removed leave as it is for the others,
 * until the hash is resized.
 */
const MATCH_AHEAD = 8

/**
 * Splits the script's reply into a listing and marks the fields that are
 * new to the cache or changed length. Each name is first compared, in the
 * joined names, with the next few names of the cache's previous listing
 * (`DecodeCache.previousListing`). A name found there is taken as the
 * previous listing's string, which is the cache's key, and when the cache
 * still has every length of that listing (`matchesListing`), the length is
 * compared with the listed one, without a look-up. This touches no string
 * or entry of the 10,000 cached records, which is what the look-ups cost
 * (cache misses). Other names are cut out of the reply, looked up, and
 * replaced by the cache's key, or by a copy when the cache has none, so
 * that no kept name is a slice of the reply. Returns undefined when a
 * field name contains a NUL byte.
 */
function listFields(joinedFields: string, lengths: readonly number[], cache: DecodeCache): ListedFields | undefined {
  const count = lengths.length
  const fields: string[] = []
  const fieldHashes = new Uint32Array(count)
  const nameOffsets = new Int32Array(count + 1)
  const changed = new Uint8Array(count)
  const previous = cache.previousListing
  const previousOffsets = previous?.nameOffsets
  const previousCount = previousOffsets === undefined ? 0 : previous?.fields.length ?? 0
  const previousJoined = previous?.joinedFields ?? ''
  const lengthsKnown = previous !== undefined && cache.matchesListing(previous)
  let next = 0
  let position = 0
  for (let index = 0; index < count; index++) {
    if (position > joinedFields.length) return undefined
    nameOffsets[index] = position
    const matched =
      previousOffsets === undefined
        ? -1
        : findPreviousName(joinedFields, position, previousJoined, previousOffsets, next, Math.min(previousCount, next + MATCH_AHEAD))

    if (matched >= 0) next = matched + 1
    let name: string
    if (matched >= 0 && lengthsKnown) {
      const listing = previous as FieldListing
      name = listing.fields[matched] as string
      changed[index] = listing.lengths[matched] === lengths[index] ? 0 : 1
      fieldHashes[index] = listing.fieldHashes[matched] as number
    } else {
      name = matched >= 0 ? ((previous as FieldListing).fields[matched] as string) : cutName(joinedFields, position)
      const entry = cache.activeField(name)
      // Fetched records become cache keys and processor ids of the live view's state.
      if (matched < 0) name = entry?.processorId ?? copyString(name)
      changed[index] = entry?.byteLength === lengths[index] ? 0 : 1
      fieldHashes[index] = entry?.fieldHash ?? hashFieldName(name)
    }
    fields.push(name)
    position += name.length + 1
  }
  nameOffsets[count] = position
  // One more name than lengths means that a name contains a NUL byte.
  if (count > 0 && position !== joinedFields.length + 1) return undefined
  return { listing: { joinedFields, lengths, fields, fieldHashes, nameOffsets }, changed }
}

/**
 * Returns the index, from `first` up to `last` (exclusive), of the first
 * name of the previous listing that equals the name at `position` of the
 * joined names, or -1 when none does.
 */
function findPreviousName(
  joinedFields: string,
  position: number,
  previousJoined: string,
  previousOffsets: Int32Array,
  first: number,
  last: number,
): number {
  for (let index = first; index < last; index++) {
    const start = previousOffsets[index] as number
    const length = (previousOffsets[index + 1] as number) - 1 - start
    const end = position + length
    if (isNameEnd(joinedFields, end) && hasSameChars(joinedFields, position, previousJoined, start, length)) return index
  }
  return -1
}

/** Returns the name that starts at `position` of the joined names, up to the next NUL byte or the end. */
function cutName(joinedFields: string, position: number): string {
  const end = joinedFields.indexOf('\0', position)
  return joinedFields.slice(position, end === -1 ? joinedFields.length : end)
}

/** Returns whether a field name in the joined names can end at `end`: at a NUL byte or the end. */
function isNameEnd(joinedFields: string, end: number): boolean {
  return end === joinedFields.length || (end < joinedFields.length && joinedFields.charCodeAt(end) === 0)
}

/** Returns whether `length` characters of `text` from `start` equal those of `other` from `otherStart`. */
function hasSameChars(text: string, start: number, other: string, otherStart: number, length: number): boolean {
  for (let offset = 0; offset < length; offset++) {
    if (text.charCodeAt(start + offset) !== other.charCodeAt(otherStart + offset)) return false
  }
  return true
}

/**
 * Returns a copy of `text` that shares no memory with a longer string. V8
 * (Node 20) returns the parts of `split` as slices of the whole string, so
 * a field name kept for as long as its request runs would keep the whole
 * listing, about 400 KB for 10,000 fields, in memory.
 */
function copyString(text: string): string {
  // UTF-16 round-trips every string, lone surrogates included.
  return Buffer.from(text, 'utf16le').toString('utf16le')
}

/**
 * Returns whether `error` is the server rejecting the light read's script
 * for this client: NOPERM for an ACL user without EVAL or EVALSHA, or an
 * unknown command where they are renamed or missing.
 */
export function isScriptRejected(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return error.message.startsWith('NOPERM') || /unknown command/i.test(error.message)
}
