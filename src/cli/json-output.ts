/**
 * JSON text of task records for `recent --json`, `tail --json` and the
 * detail pane of `live`, safe for a record that `JSON.parse` read but
 * `JSON.stringify` cannot write back.
 */
import { NESTED_TOO_DEEP } from '../task/wire'
import { escapeJsonForTerminal } from '../util/sanitize'

/**
 * Deepest nesting printed, counted from the value passed in. Records that
 * web-top writes nest 3 levels deep (a pair in `request_headers`), so
 * deeper values come only from a field that another writer added.
 */
export const MAX_PRINTED_DEPTH = 100

/** Note for standard error after output in which `stringifyForTerminal` cut a value. */
export const CUT_NOTICE = `values nested deeper than ${MAX_PRINTED_DEPTH} levels are printed as "${NESTED_TOO_DEEP}"`

/**
 * Returns the JSON text of `value`, escaped for a terminal. `JSON.parse`
 * reads arrays nested thousands of levels deep, but `JSON.stringify`
 * recurses and throws a RangeError (call stack exceeded) on them. In that
 * case the values nested deeper than `MAX_PRINTED_DEPTH` are printed as
 * `NESTED_TOO_DEEP`, and `onCut` is called, so that the caller can say so.
 * The record is kept rather than skipped and counted, because it decoded,
 * the tables show it, and only an unknown field is cut.
 */
export function stringifyForTerminal(value: unknown, indent?: number, onCut?: () => void): string {
  let json: string | undefined
  try {
    json = JSON.stringify(value, null, indent)
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    json = JSON.stringify(limitDepth(value, MAX_PRINTED_DEPTH), null, indent)
    onCut?.()
  }
  // `JSON.stringify(undefined)` returns undefined, for which there is no JSON text.
  return escapeJsonForTerminal(json ?? 'null')
}

/** Returns a copy of parsed JSON in which the values nested deeper than `depth` levels are `NESTED_TOO_DEEP`. */
function limitDepth(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value
  if (depth <= 0) return NESTED_TOO_DEEP
  if (Array.isArray(value)) return value.map((item) => limitDepth(item, depth - 1))
  return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, limitDepth(item, depth - 1)]))
}
