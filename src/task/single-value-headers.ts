/**
 * Headers that readers take as one value. The Python Top Framework's
 * reader (`HTTPTask.get_single_request_header()` and
 * `get_single_response_header()`) raises an AssertionError when one of
 * these names appears in two pairs, so the recorder stores the values of a
 * repeated one as one pair. Other repeated headers stay repeated pairs.
 */

/** Lower-case names of the headers stored as one pair, in requests and in responses. */
export const SINGLE_VALUE_HEADERS: readonly string[] = [
  'host',
  'user-agent',
  'accept-encoding',
  'cf-ipcountry',
  'x-forwarded-for',
  'content-length',
]

/** Returns the index of a header name, in any letter case, in `SINGLE_VALUE_HEADERS`, or -1. */
export function findSingleValueIndex(name: string): number {
  return SINGLE_VALUE_HEADERS.indexOf(name.toLowerCase())
}

/**
 * Joins the values of the field lines of one header with `, `, in their
 * order, as RFC 9110 (section 5.3) allows a recipient to combine field
 * lines. Empty values are left out, so the first entry of a joined
 * X-Forwarded-For is an address. Content-Length keeps its first value,
 * because readers parse it as one number. Identical values may be combined
 * into one (RFC 9110, section 8.6), and differing ones make a response invalid.
 */
export function joinFieldValues(lowerCaseName: string, values: readonly string[]): string {
  const present = values.filter((value) => value !== '')
  if (lowerCaseName === 'content-length') return present[0] ?? ''
  return present.join(', ')
}

/**
 * Returns the joined value of each single-value header in Node's
 * `rawHeaders` list (name, value, name, value, …), by its index in
 * `SINGLE_VALUE_HEADERS`, or `undefined` for a name that does not occur.
 */
export function joinRawHeaderValues(rawHeaders: readonly string[]): Array<string | undefined> {
  const values: string[][] = []
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    addValue(values, rawHeaders[index] as string, rawHeaders[index + 1] as string)
  }
  return joinEach(values)
}

/**
 * Returns the joined value of each single-value header in a response head
 * (`Name: value\r\n…\r\n\r\n`) from `start` on, as `joinRawHeaderValues()` does.
 */
export function joinHeaderBlockValues(block: string, start: number): Array<string | undefined> {
  const values: string[][] = []
  const end = block.indexOf('\r\n\r\n', start)
  for (const line of block.slice(start, end === -1 ? block.length : end).split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon !== -1) addValue(values, line.slice(0, colon), line.slice(colon + 1))
  }
  return joinEach(values)
}

function addValue(values: string[][], name: string, value: string): void {
  const index = findSingleValueIndex(name)
  if (index === -1) return
  const list = (values[index] ??= [])
  list.push(value.trim())
}

function joinEach(values: string[][]): Array<string | undefined> {
  return SINGLE_VALUE_HEADERS.map((name, index) => {
    const list = values[index]
    return list === undefined ? undefined : joinFieldValues(name, list)
  })
}
