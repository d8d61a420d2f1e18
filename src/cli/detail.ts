/**
 * The detail pane of the live view: every field of one task record, and a
 * `curl` command line that repeats the request.
 */
import { getAgoMs, getDurationMs, getRequestHost } from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { parseIsoTime } from '../task/time'
import { formatDuration, formatRequestDuration } from './format'
import { stringifyForTerminal } from './json-output'
import { sanitizeText } from '../util/sanitize'
import { charWidth, textWidth } from './text-width'

/** Ends a line of a wrapped shell command: the shell joins it with the next line. */
const CONTINUATION = ' \\'

/** Request headers that curl sets itself or that describe a body the record does not hold. */
const HEADERS_LEFT_OUT = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'keep-alive',
  'accept-encoding',
  'x-web-top-truncated',
])

/** Fields shown in their own sections, or in the summary at the top. */
const SECTION_FIELDS = new Set([
  'request_headers',
  'response_headers',
  'params',
  'tags',
  'command_line',
])

/**
 * Returns the lines of the detail pane, unstyled and sanitised, not yet cut
 * to a width. The curl command is wrapped to `width` with `\` line
 * continuations, so it is visible whole and can be pasted into a shell.
 * `completed` is set for a record read from the completed requests, which
 * may lack an end time.
 */
export function renderDetailLines(task: HttpTask, nowMs: number, width = Infinity, completed = false): string[] {
  const lines: string[] = []
  lines.push(`${task.method ?? '-'} ${task.uri ?? task.path ?? '-'}  (${describeState(task, nowMs, completed)})`)
  lines.push('')

  lines.push('Record')
  for (const [name, value] of Object.entries(task)) {
    if (SECTION_FIELDS.has(name) || value === undefined) continue
    lines.push(`  ${name}: ${formatValue(value)}`)
  }

  pushPairs(lines, 'Request headers', task.request_headers)
  pushPairs(lines, 'Response headers', task.response_headers)
  pushPairs(lines, 'Query parameters', flattenParams(task.params))
  pushPairs(lines, 'Tags', task.tags == null ? null : Object.entries(task.tags))
  if (task.command_line != null) {
    lines.push('', 'Command line', `  ${task.command_line.map(quoteForShell).join(' ')}`)
  }

  const curlWords = buildCurlArguments(task).map((word) => sanitizeText(quoteForShell(word)))
  lines.push('', 'Repeat with curl (the request body is not recorded)', ...wrapShellWords(curlWords, width))
  return lines.map(sanitizeText)
}

/**
 * Returns how long an active request has run, or how long a completed one
 * took and how long ago it ended, with words in place of an end time that
 * is missing, unreadable or after `nowMs`.
 */
function describeState(task: HttpTask, nowMs: number, completed: boolean): string {
  const duration = formatRequestDuration(getDurationMs(task, nowMs)) ?? '-'
  if (task.ended_at == null) return completed ? 'completed, end time unknown' : `active for ${duration}`

  const ago = formatDuration(getAgoMs(task, nowMs))
  if (ago !== undefined) return `took ${duration}, ended ${ago} ago`
  return parseIsoTime(task.ended_at) === undefined ? 'ended at an unreadable time' : 'end time is in the future'
}

/**
 * Joins quoted shell words into lines of at most `width` columns, indented
 * by two spaces, each but the last ending with ` \` so that the shell reads
 * them as one command. A word wider than a line is split over several rows
 * by `splitShellWord`, which the shell joins back into one word.
 */
export function wrapShellWords(words: readonly string[], width: number): string[] {
  const indent = '  '
  const continuationIndent = '    '
  if (!Number.isFinite(width)) return [`${indent}${words.join(' ')}`]

  const lines: string[] = []
  let line = indent
  for (const word of words) {
    if (line === indent) {
      line = `${indent}${word}`
      continue
    }
    const candidate = `${line} ${word}`
    if (textWidth(candidate) + CONTINUATION.length <= width) {
      line = candidate
      continue
    }
    lines.push(`${line}${CONTINUATION}`)
    line = `${continuationIndent}${word}`
    if (textWidth(line) + CONTINUATION.length <= width) continue

    const rowWidth = width - CONTINUATION.length
    const rows = splitShellWord(word, rowWidth - continuationIndent.length, rowWidth)
    if (rows === undefined) continue
    lines.push(`${continuationIndent}${rows[0] ?? ''}`, ...rows.slice(1, -1))
    line = rows.at(-1) ?? ''
  }
  lines.push(line)
  // Screens too narrow for `splitShellWord` still show every character.
  return lines.flatMap((each) => splitToWidth(each, width))
}

/**
 * Splits a word quoted by `quoteForShell` into rows that a POSIX shell joins
 * back into the same word: a row that ends inside single quotes closes them
 * and ends with `'\`, and the next row opens them again. Other rows end with
 * `\`, never between a backslash and the character it escapes. The rows
 * after the first start at column 0, because leading spaces would end the
 * word. Returns `undefined` when a row is too narrow for this.
 */
function splitShellWord(word: string, firstWidth: number, width: number): string[] | undefined {
  if (firstWidth < 4 || width < 4) return undefined
  const rows: string[] = []
  let row = ''
  let rowWidth = 0
  let limit = firstWidth
  let quoted = false
  let escaping = false
  for (const char of word) {
    const closing = quoted ? "'\\" : '\\'
    const mayBreak = !escaping && row !== '' && row !== "'"
    if (mayBreak && rowWidth + charWidth(char) + closing.length > limit) {
      rows.push(`${row}${closing}`)
      row = quoted ? "'" : ''
      rowWidth = row.length
      limit = width
    }
    row += char
    rowWidth += charWidth(char)
    if (escaping) escaping = false
    else if (char === "'") quoted = !quoted
    else if (char === '\\' && !quoted) escaping = true
  }
  rows.push(row)
  return rows
}

/** Splits text into rows of at most `width` columns; zero-width marks stay with their character. */
function splitToWidth(text: string, width: number): string[] {
  if (textWidth(text) <= width) return [text]
  const rows: string[] = []
  let row = ''
  let rowWidth = 0
  for (const char of text) {
    const columns = charWidth(char)
    if (rowWidth + columns > width && row !== '') {
      rows.push(row)
      row = ''
      rowWidth = 0
    }
    row += char
    rowWidth += columns
  }
  rows.push(row)
  return rows
}

/**
 * Returns a `curl` command line that sends the request again: method, URL
 * with its query string and the request headers, each argument quoted for
 * a POSIX shell. Values the writer redacted stay redacted. Headers that
 * curl sets itself (Host, Content-Length, Connection) are left out, except
 * a Host that is not a valid host name, which goes to localhost as a header.
 */
export function buildCurlCommand(task: HttpTask): string {
  return buildCurlArguments(task).map(quoteForShell).join(' ')
}

/** Returns the unquoted arguments of the command that `buildCurlCommand` prints. */
function buildCurlArguments(task: HttpTask): string[] {
  const args = ['curl']
  // Methods are case-sensitive (RFC 9110), so `patch` is sent as written, not as PATCH.
  const method = task.method ?? 'GET'
  if (method === 'HEAD') args.push('--head')
  else if (method !== 'GET') args.push('-X', method)

  let compressed = false
  for (const [name, value] of task.request_headers ?? []) {
    const lowerName = name.toLowerCase()
    if (lowerName === 'accept-encoding') compressed = true
    if (HEADERS_LEFT_OUT.has(lowerName)) continue
    args.push('-H', `${formatHeaderName(name)}: ${value}`)
  }
  if (compressed) args.push('--compressed')
  const host = getRequestHost(task)
  // A Host that is no host name (`127.0.0.1@evil.test`) would send curl elsewhere, so it goes as a header.
  if (host !== undefined && !HOST_WITH_PORT.test(host)) args.push('-H', `Host: ${host}`)
  const url = buildUrl(task)
  // curl reads `[REDACTED]` in a URL as a glob range and exits with "bad range".
  if (CURL_GLOB_CHARACTERS.test(url.replace(IPV6_HOST, ''))) args.push('--globoff')
  args.push(url)
  return args
}

/** Characters that curl reads as URL globs (`[1-5]`, `{a,b}`) unless `--globoff` is given. */
const CURL_GLOB_CHARACTERS = /[[\]{}]/

/** A bracketed IPv6 host right after the scheme, which curl takes as a host and not as a glob. */
const IPV6_HOST = /^https?:\/\/\[[0-9a-f:.]+\]/i

/** A host name, an IPv4 address or a bracketed IPv6 address, with an optional port. */
const HOST_WITH_PORT = /^(?:[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i

/**
 * Quotes a word for a POSIX shell: words of safe characters stay bare,
 * others go in single quotes, with each `'` written as `'\''`.
 */
export function quoteForShell(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Builds the request URL. The Python tracker leaves `host` and `uri` null,
 * so the URL is built from the Host request header and `params` in their place.
 * A `uri` that is a whole http or https URL (a full request URI, or an
 * absolute-form request target) is used as the URL unchanged.
 */
function buildUrl(task: HttpTask): string {
  const target = task.uri ?? `${task.path ?? '/'}${buildQuery(task.params)}`
  if (ABSOLUTE_HTTP_URL.test(target)) return target

  const protocol = task.protocol === 'https' ? 'https' : 'http'
  const requestHost = getRequestHost(task)
  const host = requestHost !== undefined && HOST_WITH_PORT.test(requestHost) ? requestHost : 'localhost'
  return `${protocol}://${host}${target.startsWith('/') ? '' : '/'}${target}`
}

/** The start of an http or https URL with its authority, in any letter case. */
const ABSOLUTE_HTTP_URL = /^https?:\/\//i

/** Encodes `params` as a query string with its `?`, or returns '' when there are none. */
function buildQuery(params: HttpTask['params']): string {
  const pairs = flattenParams(params) ?? []
  return pairs.length === 0 ? '' : `?${new URLSearchParams(pairs).toString()}`
}

/** Writes `USER-AGENT`, as the Python tracker stores names, as `User-Agent`. */
function formatHeaderName(name: string): string {
  if (name !== name.toUpperCase()) return name
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase())
}

function pushPairs(
  lines: string[],
  title: string,
  pairs: ReadonlyArray<readonly [string, string]> | null | undefined,
): void {
  if (pairs == null || pairs.length === 0) return
  lines.push('', title)
  for (const [name, value] of pairs) lines.push(`  ${name}: ${value}`)
}

function flattenParams(params: HttpTask['params']): Array<[string, string]> | null {
  if (params == null) return null
  return Object.entries(params).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((item): [string, string] => [name, String(item)]),
  )
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value
  return stringifyForTerminal(value)
}
