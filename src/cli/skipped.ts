import { isOversizedReason } from '../task/wire'
import { sanitizeText } from '../util/sanitize'

/**
 * Returns "N records skipped (reason; reason; and M more)": the notice for
 * records the tracker could not decode, shown in the footer of `live` and on
 * standard error by `recent` and `check`. The tracker keeps the reasons of
 * the first few skipped records only, one reason for each, so the rest are
 * counted. When a listed record was over the size limit, the notice ends
 * with how to raise it. `nouns` name what was skipped, records by default.
 */
export function describeSkipped(
  skipped: number,
  reasons: readonly string[],
  nouns: readonly [singular: string, plural: string] = ['record', 'records'],
): string {
  const noun = skipped === 1 ? nouns[0] : nouns[1]
  if (reasons.length === 0) return `${skipped} ${noun} skipped`

  const listed = reasons.map(sanitizeText)
  const unlisted = skipped - reasons.length
  if (unlisted > 0) listed.push(`and ${unlisted} more`)
  const advice = reasons.some(isOversizedReason) ? `; ${RAISE_LIMIT_ADVICE}` : ''
  return `${skipped} ${noun} skipped (${listed.join('; ')})${advice}`
}

export const RAISE_LIMIT_ADVICE = 'pass a larger --max-record-size to read longer records'

/**
 * Returns the reasons that name a whole key the tracker could not read, such
 * as "key shop:processors: wrong key type", as the Redis tracker words them.
 * The tracker always keeps those reasons, first.
 */
export function listUnreadableKeys(reasons: readonly string[]): string[] {
  return reasons.filter((reason) => reason.startsWith('key '))
}

/** Advice that ends a notice about a key of the wrong type. */
export const WRONG_TYPE_KEY_ADVICE = 'check the --prefix value, or delete a key that no other program uses'

/**
 * Returns the notice for `TaskSnapshot.wrongTypeKeys`, such as a
 * `last_cleared_at` list that another program wrote, or undefined when
 * there are none. The reader reads such a key as missing.
 */
export function describeWrongTypeKeys(keys: readonly string[] | undefined): string | undefined {
  if (keys === undefined || keys.length === 0) return undefined
  const named = keys.map((key) => sanitizeText(JSON.stringify(key))).join('; ')
  const subject = keys.length === 1 ? 'a key has' : `${keys.length} keys have`
  const pronoun = keys.length === 1 ? 'it' : 'them'
  return `${subject} the wrong type (${named}), so web-top-cli ignores ${pronoun}; ${WRONG_TYPE_KEY_ADVICE}`
}
