import { sanitizeText } from './sanitize'

/**
 * Returns "N records skipped (reason; reason; and M more)": the notice for
 * records the tracker could not decode, shown in the footer of `live` and on
 * standard error by `recent`. The tracker keeps the reasons of the first few
 * skipped records only, one reason for each, so the rest are counted.
 */
export function describeSkipped(skipped: number, reasons: readonly string[]): string {
  const noun = skipped === 1 ? 'record' : 'records'
  if (reasons.length === 0) return `${skipped} ${noun} skipped`

  const listed = reasons.map(sanitizeText)
  const unlisted = skipped - reasons.length
  if (unlisted > 0) listed.push(`and ${unlisted} more`)
  return `${skipped} ${noun} skipped (${listed.join('; ')})`
}
