/**
 * Cheaper replacements for steps of web-top's recorder, timed by
 * bench/micro.ts beside the current code to size a possible change. They
 * are not used by the package.
 */
import { REDACTED, type RedactionRules } from '../../src/task/redact'

let cachedMs = -1
let cachedPrefix = ''

/** Formats like `formatIsoTime`, with the `toISOString()` part cached per millisecond. */
export function formatIsoTimeCached(epochMs: number): string {
  const wholeMs = Math.floor(epochMs)
  if (wholeMs !== cachedMs) {
    cachedMs = wholeMs
    cachedPrefix = new Date(wholeMs).toISOString().slice(0, 23)
  }
  const micros = Math.min(999, Math.round((epochMs - wholeMs) * 1000))
  return `${cachedPrefix}${String(micros).padStart(3, '0')}+00:00`
}

const headerNames = new Map<string, { upperCase: string; secret: boolean }>()

/**
 * Captures request headers like web-top does, with the upper-case name and
 * the secret check cached per raw header name. Values are cut at 1024
 * characters, without web-top's truncation mark.
 */
export function captureHeadersCached(
  rawHeaders: readonly string[],
  rules: RedactionRules,
): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    let known = headerNames.get(name)
    if (known === undefined) {
      known = { upperCase: name.toUpperCase(), secret: rules.isSecretHeader(name.toLowerCase()) }
      headerNames.set(name, known)
    }

    const value = rawHeaders[i + 1] as string
    const kept = value.length <= 1024 ? value : value.slice(0, 1024)
    pairs.push([known.upperCase, known.secret ? REDACTED : kept])
  }
  return pairs
}

const headerPrefixes = new Map<string, string>()

/** Encodes header pairs as JSON: cached `["NAME",` prefixes, JSON.stringify of each value. */
export function encodeHeadersCached(pairs: ReadonlyArray<readonly [string, string]>): string {
  let json = '['
  for (let i = 0; i < pairs.length; i++) {
    const [name, value] = pairs[i] as readonly [string, string]
    let prefix = headerPrefixes.get(name)
    if (prefix === undefined) {
      prefix = `[${JSON.stringify(name)},`
      headerPrefixes.set(name, prefix)
    }
    json += `${i === 0 ? '' : ','}${prefix}${JSON.stringify(value)}]`
  }
  return `${json}]`
}
