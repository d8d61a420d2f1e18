/**
 * The light read of the processors hash: the field names and value lengths
 * first, then HMGET of the fields that are new to a decode cache or whose
 * length changed. The other records are taken from the cache, so an
 * unchanged hash of 10,000 records of 1.4 KB costs a reply of about 400 KB
 * instead of 14 MB.
 */
import type { RedisClient } from './redis-tracker'
import type { DecodeCache, FieldListing } from './decode-cache'

/** Name under which the tracker defines FIELD_LENGTHS_SCRIPT on its client. */
export const FIELD_LENGTHS_COMMAND = 'webTopFieldLengths'

type FieldLengths = (processorsKey: string) => Promise<[string, number[]]>

/** Result of the light read of the processors hash. */
export interface ChangedActive {
  /** Records fetched, because they are new to the cache or their length changed. */
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
 * `cache`, and fetches the records that are new or changed length. A field
 * deleted between the two steps is left out. Returns undefined when a
 * field name contains a NUL byte, so that the caller reads everything.
 * Rejects with the server's error when the script cannot run (NOPERM,
 * unknown command).
 */
export async function readChangedActive(
  client: RedisClient,
  processorsKey: string,
  cache: DecodeCache,
): Promise<ChangedActive | undefined> {
  const fieldLengths = (client as unknown as Record<string, FieldLengths>)[FIELD_LENGTHS_COMMAND] as FieldLengths
  const [joinedFields, lengths] = await fieldLengths.call(client, processorsKey)
  // Nothing was added, removed or changed length since the previous light
  // read: its fields are cached with these lengths, so nothing is fetched.
  const same = cache.findListing(joinedFields, lengths)
  if (same !== undefined) return { fetched: [], reusedIds: same.fields, listing: same }

  const fields = lengths.length === 0 ? [] : joinedFields.split('\0')
  // A field name that contains a NUL byte splits in two: only a full read can list such names.
  if (fields.length !== lengths.length) return undefined

  const changedIds: string[] = []
  const changedLengths: number[] = []
  const reusedIds: string[] = []
  for (let index = 0; index < fields.length; index++) {
    const processorId = fields[index] as string
    const length = lengths[index] as number
    if (cache.activeByteLength(processorId) === length) {
      reusedIds.push(processorId)
    } else {
      // Fetched records become cache keys and processor ids of the live view's state.
      changedIds.push(copyString(processorId))
      changedLengths.push(length)
    }
  }

  let listing: FieldListing | undefined = { joinedFields, lengths, fields }
  const fetched: Array<[string, Buffer]> = []
  if (changedIds.length === 0) return { fetched, reusedIds, listing }
  const values = await client.hmgetBuffer(processorsKey, ...changedIds)
  for (let index = 0; index < changedIds.length; index++) {
    const value = values[index]
    if (value != null) fetched.push([changedIds[index] as string, value])
    // Deleted or rewritten between the two steps: the cache will not match the listing.
    if (value?.length !== changedLengths[index]) listing = undefined
  }
  return { fetched, reusedIds, listing }
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
