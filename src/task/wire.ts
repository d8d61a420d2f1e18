/**
 * Encoding of task records to JSON and decoding of records read back from
 * any writer. Writers build a record from pre-encoded fragments, so that the
 * fields that never change for a process are serialised once.
 */
import type { HeaderPair, HttpTask } from './http-task'

/** Encodes an object's fields as JSON without the surrounding braces, ready to splice into a record. */
export function encodeFields(fields: object): string {
  return JSON.stringify(fields).slice(1, -1)
}

/** Characters that JSON.stringify would escape, and every non-ASCII one, for which it is called. */
const NEEDS_STRINGIFY = /["\\\u0000-\u001f\u007f-\uffff]/

/**
 * Encodes a string as JSON text, the same text as `JSON.stringify(value)`.
 * Plain ASCII without quotes or backslashes is only wrapped in quotes,
 * which takes about half the time of `JSON.stringify` for header values.
 */
export function encodeString(value: string): string {
  return NEEDS_STRINGIFY.test(value) ? JSON.stringify(value) : `"${value}"`
}

/**
 * Returns a string equal to `value` stored as one piece. A string built by
 * `+` is a tree of its parts (a V8 cons string). Every write of a text
 * that contains it copies the tree part by part, so texts reused for many
 * records are flattened once, when they are made.
 */
export function flattenString(value: string): string {
  return JSON.parse(JSON.stringify(value)) as string
}

/** Encodes a string, or `null`, as JSON text. */
export function encodeNullableString(value: string | null | undefined): string {
  return value == null ? 'null' : encodeString(value)
}

/** Joins encoded fragments into one JSON object text, skipping empty ones. */
export function joinFragments(...fragments: string[]): string {
  let body = ''
  for (const fragment of fragments) {
    if (fragment === '') continue
    body = body === '' ? fragment : `${body},${fragment}`
  }
  return `{${body}}`
}

const STRING_FIELDS = [
  'task_name',
  'host_name',
  'process_internal_id',
  'processor_name',
  'started_at',
  'updated_at',
  'ended_at',
  'protocol',
  'host',
  'method',
  'path',
  'uri',
  'client_ip_address',
  'status_message',
] as const

const INTEGER_FIELDS = ['process_id', 'thread_id', 'status_code'] as const

/** Every field of the task JSON: the generic task fields and the HTTP task fields. */
const TASK_FIELDS: ReadonlySet<string> = new Set([
  ...STRING_FIELDS,
  ...INTEGER_FIELDS,
  'task_id',
  'recorded_successfully',
  'tags',
  'command_line',
  'params',
  'request_headers',
  'response_headers',
])

/** Outcome of decoding one stored record. */
export type DecodeResult =
  | { ok: true; task: HttpTask }
  | { ok: false; reason: string }

/** Default limit per record, in UTF-8 bytes: over 100 times a typical record, above what default caps allow (estimate). */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 1024

export interface DecodeOptions {
  /**
   * Maximum length of a record decoded, in UTF-8 bytes, as Redis stores
   * it. A longer record is rejected before it is parsed.
   * @default Infinity
   */
  maxRecordBytes?: number | undefined
}

/**
 * Decodes one stored record. A record that is not a JSON object, or is an
 * empty one, is rejected with a reason. A field of the wrong type becomes
 * `null`, so one odd field never hides the rest of the record. Records of
 * any size are parsed unless `options.maxRecordBytes` is given: the
 * web-top-cli reader passes `DEFAULT_MAX_RECORD_BYTES` or its
 * `--max-record-size`.
 */
export function decodeTask(text: unknown, options?: DecodeOptions): DecodeResult {
  if (typeof text !== 'string') return { ok: false, reason: 'not a string' }
  const maxRecordBytes = options?.maxRecordBytes
  if (maxRecordBytes !== undefined) {
    const sizeProblem = findSizeProblem(text, maxRecordBytes)
    if (sizeProblem !== undefined) return { ok: false, reason: sizeProblem }
  }

  let value: unknown
  try {
    // A leading byte order mark is skipped, as Python's json.loads skips it in bytes.
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    return { ok: false, reason: 'invalid JSON' }
  }
  const problem = findRecordProblem(value)
  if (problem !== undefined) return { ok: false, reason: problem }
  return { ok: true, task: normalizeTask(value as Record<string, unknown>) }
}

/**
 * Returns why a record, as JSON text or its UTF-8 bytes, is longer than
 * `maxRecordBytes` UTF-8 bytes, or undefined when it is not. A string has
 * at least one UTF-8 byte and at most three for each UTF-16 code unit, so
 * only a string between those bounds is measured, and a record far below
 * the limit costs one comparison.
 */
export function findSizeProblem(record: string | Uint8Array, maxRecordBytes: number): string | undefined {
  if (typeof record !== 'string') {
    return record.length > maxRecordBytes ? describeOversizedRecord(record.length, maxRecordBytes) : undefined
  }
  if (record.length * 3 <= maxRecordBytes) return undefined
  const byteLength = Buffer.byteLength(record)
  return byteLength > maxRecordBytes ? describeOversizedRecord(byteLength, maxRecordBytes) : undefined
}

/**
 * Returns the skip reason of a record of `byteLength` bytes over
 * `maxRecordBytes`, such as "record of 10.0 MiB is over the 256 KiB limit".
 */
export function describeOversizedRecord(byteLength: number, maxRecordBytes: number): string {
  const size = formatRecordSize(byteLength, maxRecordBytes)
  const limit = formatByteLimit(maxRecordBytes)
  // "the 256 KiB limit", but "the limit of 1,000 bytes": a plain byte count reads better after the noun.
  const over = limit.endsWith('B') ? `the ${limit} limit` : `the limit of ${limit}`
  return `record of ${size} is over ${over}`
}

/** Returns whether a skip reason is that of `describeOversizedRecord`. */
export function isOversizedReason(reason: string): boolean {
  return OVERSIZED_REASON.test(reason)
}

const OVERSIZED_REASON = /record of [\d.,]+ (?:bytes|KiB|MiB) is over the (?:[\d,.]+ (?:KiB|MiB) limit|limit of [\d,]+ bytes?)$/

const KIB = 1024
const MIB = 1024 * KIB

/** Returns a limit as whole MiB or KiB when it is one, else in bytes: "256 KiB", "1,000,000 bytes". */
export function formatByteLimit(bytes: number): string {
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`
  if (bytes >= KIB && bytes % KIB === 0) return `${bytes / KIB} KiB`
  return bytes === 1 ? '1 byte' : `${bytes.toLocaleString('en-US')} bytes`
}

/**
 * Returns a record's size with one decimal in KiB or MiB. When the rounded
 * figure would not show that the record is over `maxRecordBytes`, as for a
 * record one byte over 1 MiB, the size is given in bytes.
 */
function formatRecordSize(bytes: number, maxRecordBytes: number): string {
  const unit = bytes >= MIB ? MIB : KIB
  const rounded = Math.round((bytes / unit) * 10) / 10
  if (bytes < KIB || rounded * unit <= maxRecordBytes) return `${bytes.toLocaleString('en-US')} bytes`
  return `${rounded.toFixed(1)} ${unit === MIB ? 'MiB' : 'KiB'}`
}

/**
 * Returns why a parsed value is not a task record, or undefined when it is
 * one. Every task field may be missing or null, so a record needs just one
 * task field with a value. An object without one, such as an empty one or
 * `{"type":"ping"}` that another program published, has nothing that a
 * table could show, so it is counted with the unreadable records instead
 * of printed as a row of dashes.
 */
export function findRecordProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object'
  const record = value as Record<string, unknown>
  let empty = true
  for (const field in record) {
    if (!Object.hasOwn(record, field)) continue
    if (TASK_FIELDS.has(field) && record[field] !== null) return undefined
    empty = false
  }
  return empty ? 'empty JSON object' : 'JSON object with no task field set'
}

/**
 * Replaces fields of the wrong type by `null`, keeping unknown fields.
 * Changes `record` in place and returns it as the task, so pass a record
 * that nothing else holds, such as a `JSON.parse` result. Nested values
 * that are already of the right type are kept as they are: a reader that
 * decodes 10,000 records per read allocates no second copy of each.
 */
export function normalizeTask(record: Record<string, unknown>): HttpTask {
  const task = record as HttpTask

  for (const field of STRING_FIELDS) {
    if (field in task && typeof task[field] !== 'string') task[field] = null
  }
  for (const field of INTEGER_FIELDS) {
    if (field in task && !Number.isInteger(task[field])) task[field] = null
  }
  if ('task_id' in task && typeof task.task_id !== 'string' && !Number.isFinite(task.task_id)) {
    task.task_id = null
  }
  if ('recorded_successfully' in task && typeof task.recorded_successfully !== 'boolean') {
    task.recorded_successfully = null
  }

  // A field the record does not have stays absent, so that output of the
  // record shows only what was stored.
  if ('tags' in task) task.tags = normalizeStringMap(task.tags)
  if ('params' in task) task.params = normalizeParams(task.params)
  if ('command_line' in task) task.command_line = normalizeStringArray(task.command_line)
  if ('request_headers' in task) task.request_headers = normalizeHeaders(task.request_headers)
  if ('response_headers' in task) task.response_headers = normalizeHeaders(task.response_headers)
  return task
}

/**
 * Keeps the `[name, value]` pairs with a string name and a scalar value, as
 * `normalizeStringMap` keeps values. An array of well-formed pairs is
 * returned as it is.
 */
function normalizeHeaders(value: unknown): HeaderPair[] | null {
  if (!Array.isArray(value)) return null
  let index = 0
  while (index < value.length && isHeaderPair(value[index])) index++
  if (index === value.length) return value as HeaderPair[]

  const pairs = value.slice(0, index) as HeaderPair[]
  for (; index < value.length; index++) {
    const pair: unknown = value[index]
    if (!Array.isArray(pair) || pair.length < 2 || typeof pair[0] !== 'string') continue
    const headerValue: unknown = pair[1]
    if (headerValue !== null && typeof headerValue !== 'object') pairs.push([pair[0], String(headerValue)])
  }
  return pairs
}

function isHeaderPair(pair: unknown): boolean {
  return Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string' && typeof pair[1] === 'string'
}

/**
 * Turns the values of tags into strings (`toText`). A value of another
 * type, which web-top's and Python's writers never send, becomes its text,
 * as in `normalizeParams`, so that nothing stored is hidden.
 */
function normalizeStringMap(value: unknown): Record<string, string> | null {
  if (!isPlainObject(value)) return null
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    const item = value[key]
    if (typeof item !== 'string') value[key] = toText(item)
  }
  return value as Record<string, string>
}

/**
 * Turns the values of query parameters into strings or lists of strings.
 * A value of another type, which web-top's and Python's writers never send,
 * becomes its JSON text (`{"gte":10}`), so that nothing stored is hidden.
 */
function normalizeParams(value: unknown): Record<string, string | string[]> | null {
  if (!isPlainObject(value)) return null
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    const item = value[key]
    if (typeof item === 'string') continue
    value[key] = Array.isArray(item) ? (normalizeStringArray(item) as string[]) : toText(item)
  }
  return value as Record<string, string | string[]>
}

/** Returns the items of an array as strings (`toText`), the same array when all are strings already. */
function normalizeStringArray(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null
  return value.every((item) => typeof item === 'string') ? (value as string[]) : value.map(toText)
}

/** Text in place of a value nested too deep for `JSON.stringify`, in records and in the CLI's JSON output. */
export const NESTED_TOO_DEEP = '[nested too deep]'

/**
 * Returns a string as it is, another scalar as `String` gives it, and an
 * object or list as JSON text. A value nested too deep for `JSON.stringify`
 * gives `NESTED_TOO_DEEP`.
 */
function toText(item: unknown): string {
  if (typeof item === 'string') return item
  if (item === null || typeof item !== 'object') return String(item)
  try {
    return JSON.stringify(item)
  } catch {
    return NESTED_TOO_DEEP
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
