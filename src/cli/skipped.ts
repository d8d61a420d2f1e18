import { sanitizeText } from './sanitize'

/**
 * Returns "N records skipped (reason; reason)": the notice for records the
 * tracker could not decode, shown in the footer of `live` and on standard
 * error by `recent`.
 */
export function describeSkipped(skipped: number, reasons: readonly string[]): string {
  const noun = skipped === 1 ? 'record' : 'records'
  const detail = reasons.length === 0 ? '' : ` (${reasons.map(sanitizeText).join('; ')})`
  return `${skipped} ${noun} skipped${detail}`
}
