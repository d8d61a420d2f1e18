/**
 * The size of a parsed JSON value as compact JSON text, for the records
 * that the HTTP tracker receives already parsed inside one reply, so that
 * they get the same size limit as the records read from Redis.
 */
import { describeOversizedRecord } from '../task/wire'

/**
 * Returns why `value`, written as compact JSON, would be longer than
 * `maxRecordBytes` UTF-8 bytes, or undefined when it would not. Escapes
 * are not counted, so a record full of them can pass with somewhat more.
 * A first pass counts the UTF-16 code units of the strings, which a record
 * far below the limit passes, and only a record near or over it is measured
 * in bytes.
 */
export function findParsedSizeProblem(value: unknown, maxRecordBytes: number): string | undefined {
  if (maxRecordBytes === Infinity) return undefined
  const units = measureJson(value, (text) => text.length)
  // Each UTF-16 code unit takes 1 to 3 UTF-8 bytes, and the punctuation counts the same in both.
  if (units.punctuation + units.strings * 3 <= maxRecordBytes) return undefined
  const bytes = measureJson(value, (text) => Buffer.byteLength(text))
  const byteLength = bytes.punctuation + bytes.strings
  return byteLength > maxRecordBytes ? describeOversizedRecord(byteLength, maxRecordBytes) : undefined
}

interface JsonLength {
  /** Length of all but the contents of strings and keys: brackets, quotes, commas, numbers, literals. */
  punctuation: number
  /** Sum of `measureString` over the strings and keys. */
  strings: number
}

/**
 * Measures `value` as compact JSON. It walks the value with a stack of its
 * own, because a reply may contain values nested deeper than the call stack allows.
 */
function measureJson(value: unknown, measureString: (text: string) => number): JsonLength {
  const length: JsonLength = { punctuation: 0, strings: 0 }
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (typeof item === 'string') {
      length.punctuation += 2
      length.strings += measureString(item)
    } else if (Array.isArray(item)) {
      length.punctuation += 2 + Math.max(0, item.length - 1)
      for (const element of item) pending.push(element)
    } else if (item !== null && typeof item === 'object') {
      let fields = 0
      for (const key in item) {
        if (!Object.hasOwn(item, key)) continue
        fields++
        // Quotes and colon of the key.
        length.punctuation += 3
        length.strings += measureString(key)
        pending.push((item as Record<string, unknown>)[key])
      }
      length.punctuation += 2 + Math.max(0, fields - 1)
    } else {
      length.punctuation += String(item).length
    }
  }
  return length
}
