/**
 * The light read of the processors hash: the field names and value lengths
 * first, then HMGET of the fields that are new to a decode cache or whose
 * length changed, and of one slice of the others to verify them. The other
 * records are taken from the cache, so an unchanged hash of 10,000 records
 * of 1.4 KB verified in 30 slices costs a reply of about 900 KB instead of
 * 14 MB.
 */
import type { RedisClient } from './redis-tracker'
import { hashFieldName, type DecodeCache, type FieldListing } from './decode-cache'

/** Name under which the tracker defines FIELD_LENGTHS_SCRIPT on its client. */
export const FIELD_LENGTHS_COMMAND = 'webTopFieldLengths'

type FieldLengths = (processorsKey: string) => Promise<[string, number[]]>

/** Result of the light read of the processors hash. */
export interface ChangedActive {
  /** Records fetched, because they are new to the cache, their length changed, or their slice is verified. */
  fetched: Array<[string, Buffer]>
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
 * `cache`, and fetches the records that are new or changed length. With
 * `verifySlices` above 0, it also fetches the records of one slice of the
 * fields: `hashFieldName` modulo `verifySlices`, the next slice at each
 * light read. So the cache replaces a record rewritten with the same length
 * within `verifySlices` light reads. A field deleted between the two steps
 * is left out. Returns undefined when a field name contains a NUL
 * byte, so that the caller reads everything. Rejects with the server's
 * error when the script cannot run (NOPERM, unknown command).
 */
export async function readChangedActive(
  client: RedisClient,
  processorsKey: string,
  cache: DecodeCache,
  verifySlices = 0,
): Promise<ChangedActive | undefined> {
  const fieldLengths = (client as unknown as Record<string, FieldLengths>)[FIELD_LENGTHS_COMMAND] as FieldLengths
  const [joinedFields, lengths] = await fieldLengths.call(client, processorsKey)
  // Nothing was added, removed or changed length since the previous light
  // read: its fields are cached with these lengths, so only the verified
  // slice is fetched.
  const same = cache.findListing(joinedFields, lengths)
  if (same !== undefined && verifySlices <= 0) return { fetched: [], reusedIds: same.fields, listing: same }

  const slice = verifySlices > 0 ? cache.verifiedSlice(verifySlices) : -1
  const isVerified = (fieldHash: number) => slice >= 0 && fieldHash % verifySlices === slice
  let listing: FieldListing | undefined = same ?? listFields(joinedFields, lengths)
  // A field name that contains a NUL byte splits in two: only a full read can list such names.
  if (listing === undefined) return undefined

  const { fields, fieldHashes } = listing
  const fetchedIds: string[] = []
  const fetchedLengths: number[] = []
  const reusedIds: string[] = []
  for (let index = 0; index < fields.length; index++) {
    const processorId = fields[index] as string
    const length = lengths[index] as number
    let fetch: boolean
    if (same !== undefined) {
      fetch = isVerified(fieldHashes[index] as number)
    } else {
      const cached = cache.activeField(processorId)
      const fieldHash = cached?.fieldHash ?? hashFieldName(processorId)
      fieldHashes[index] = fieldHash
      fetch = cached?.byteLength !== length || isVerified(fieldHash)
    }
    if (fetch) {
      // Fetched records become cache keys and processor ids of the live view's state.
      fetchedIds.push(copyString(processorId))
      fetchedLengths.push(length)
    } else {
      reusedIds.push(processorId)
    }
  }

  const fetched: Array<[string, Buffer]> = []
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

/**
 * Splits the script's reply into a listing, with room for the field
 * hashes. Returns undefined when a field name contains a NUL byte.
 */
function listFields(joinedFields: string, lengths: readonly number[]): FieldListing | undefined {
  const fields = lengths.length === 0 ? [] : joinedFields.split('\0')
  if (fields.length !== lengths.length) return undefined
  return { joinedFields, lengths, fields, fieldHashes: new Uint32Array(fields.length) }
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
