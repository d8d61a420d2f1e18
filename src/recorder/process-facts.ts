/**
 * Facts about the recording process, computed once: host, pid, thread,
 * command line and default tags. Also the pool of request slots that
 * processor ids are made of.
 */
import { hostname } from 'node:os'
import { threadId } from 'node:worker_threads'
import { isSecretArgumentName, REDACTED, toKebabCase } from '../task/redact'
import { maskUrlsInText } from '../util/mask-url'

/**
 * `--name=value`, `-name=value`, `NAME=value`, or `--name:value` and
 * `-name:value` as some tools write them. Group 1 is everything up to and
 * including the `=` or `:`, group 2 or 3 the name.
 */
const ASSIGNMENT = /^(-{0,2}([A-Za-z_][\w.-]*)=|--?([A-Za-z_][\w.-]*):)./

/** Whitespace inside one argument, as in a whole command line passed to `sh -c`. */
const WHITESPACE = /\s/

/** `--name` or `-name` with no value attached, whose value may be the next argument. */
const OPTION = /^--?([A-Za-z_][\w.-]*)$/

/** `--name` or `-x`: an argument that starts a new option and so is not the value of the one before it. */
const OPTION_START = /^(?:--|-[A-Za-z]$)/

/** Option and variable names whose value is a file or folder path, as in `--password-file` or `KEY_PATH`. */
const PATH_NAME = /[-_.](?:file|path|dir)$/i

/** Same-process facts, written into every task of this process. */
export interface ProcessFacts {
  host_name: string
  process_id: number
  thread_id: number
  command_line: string[]
}

export function readProcessFacts(): ProcessFacts {
  return {
    host_name: hostname(),
    process_id: process.pid,
    thread_id: threadId,
    command_line: redactCommandLine(process.argv),
  }
}

/** Returns the processor name shown in the Worker column when the user set none. */
export function defaultProcessorName(facts: ProcessFacts): string {
  return facts.thread_id === 0 ? `node:${facts.process_id}` : `node:${facts.process_id}/w${facts.thread_id}`
}

/** Tags every task of this process carries unless the user overrides them. */
export function defaultTags(): Record<string, string> {
  const tags: Record<string, string> = { 'node.version': process.version }
  if (process.env.npm_package_name) tags['service.name'] = process.env.npm_package_name
  if (process.env.npm_package_version) tags['service.version'] = process.env.npm_package_version
  return tags
}

/**
 * Returns the prefix that every processor id of this process starts with.
 * NOTE: two processes with the same host name and pid (containers that run
 * the app as pid 1 under one host name) get the same prefix, so they
 * overwrite each other's entries.
 */
export function processorIdPrefix(facts: ProcessFacts): string {
  return `${facts.host_name}/${facts.process_id}-${facts.thread_id}-`
}

/**
 * Request slots of one recorder. A slot is held by one request at a time,
 * so two in-flight requests never share a processor id. Freed slots are
 * reused, which keeps the number of distinct ids at the peak concurrency.
 */
export class SlotPool {
  readonly #free: number[] = []
  #next = 0

  acquire(): number {
    return this.#free.pop() ?? this.#next++
  }

  release(slot: number): void {
    this.#free.push(slot)
  }

  /** Number of slots ever handed out: the peak number of concurrent requests. */
  get size(): number {
    return this.#next
  }
}

/**
 * Returns the arguments with secret values masked: the value of a
 * secret-looking `--name=value`, `--name:value` or `NAME=value`, the
 * argument after a secret-looking `--name` or `-name`, the same inside an
 * argument that contains a whole command line, and the URL passwords and
 * secret URL parameters anywhere in an argument, as `maskUrl` masks them. A
 * URL without secrets stays as written. Names use `isSecretArgumentName`,
 * which reads camelCase names by their words (`dbPass`, `apiKey`). The value
 * of a single-letter option such as `-p` stays visible because it is as
 * often a port as a password.
 */
export function redactCommandLine(argv: readonly string[]): string[] {
  return redactArguments(argv, 0)
}

/**
 * Most levels of command lines inside an argument that are masked word by
 * word (`sh -c "ssh host 'app --token x'"` has two). Each level is split
 * again, so a limit keeps an argument of many nested quotes from taking
 * time in proportion to the square of its length.
 */
const MAX_NESTED_COMMAND_LINES = 4

function redactArguments(argv: readonly string[], depth: number): string[] {
  const redacted: string[] = []
  let valueIsSecret = false

  for (const argument of argv) {
    if (valueIsSecret && !OPTION_START.test(argument)) {
      redacted.push(REDACTED)
      valueIsSecret = false
      continue
    }
    const optionName = OPTION.exec(argument)?.[1]
    valueIsSecret =
      optionName !== undefined && !toKebabCase(optionName).startsWith('no-') && isSecretValueName(optionName)
    redacted.push(redactArgument(argument, depth))
  }
  return redacted
}

function redactArgument(argument: string, depth: number): string {
  const assignment = ASSIGNMENT.exec(argument)
  if (assignment !== null && isSecretValueName(assignment[2] ?? assignment[3] ?? '')) {
    return `${assignment[1]}${REDACTED}`
  }
  // URLs are masked before the argument is split into words, so that a
  // password with a space (`redis://u:p w@h`) is masked whole.
  const urlsMasked = argument.includes('://') ? maskUrlsInText(argument) : argument
  if (WHITESPACE.test(urlsMasked) && depth < MAX_NESTED_COMMAND_LINES) {
    const parts = urlsMasked.match(SHELL_PARTS) ?? []
    if (parts.length > 1) return redactWords(parts, depth + 1)
    // A single quoted word, such as `'app --token x'`, contains a command line of its own.
    const unquoted = unquoteShellWord(urlsMasked)
    if (unquoted !== urlsMasked) return requote(urlsMasked, unquoted, redactArgument(unquoted, depth + 1))
  }
  return urlsMasked
}

/**
 * Runs of whitespace, and the words between them as a POSIX shell reads
 * them: a quoted part (`"a b"`, `'a b'`) or a backslash escape does not end
 * a word. A quote left open runs to the end of the argument.
 */
const SHELL_PARTS = /\s+|(?:[^\s"'\\]+|\\[\s\S]?|"(?:[^"\\]|\\[\s\S])*"?|'[^']*'?)+/g

/**
 * Masks the words of an argument that contains a whole command line
 * (`sh -c '/opt/app --token="a b"'`), given as its `SHELL_PARTS`, as
 * separate arguments would be masked, and keeps the whitespace between them.
 */
function redactWords(parts: readonly string[], depth: number): string {
  const isSpace = (part: string) => WHITESPACE.test(part[0] ?? '')
  const words = parts.filter((part) => !isSpace(part))
  // The shell removes the quotes before it passes the arguments to a
  // program, so names and values are judged without them (`"--token" x`, `'KEY=x'`).
  const unquotedWords = words.map(unquoteShellWord)
  const redactedWords = redactArguments(unquotedWords, depth)
  let wordIndex = 0
  return parts
    .map((part) => {
      if (isSpace(part)) return part
      const index = wordIndex++
      return requote(part, unquotedWords[index] ?? part, redactedWords[index] ?? part)
    })
    .join('')
}

/**
 * Returns `word` when masking left its unquoted form as it was, else the
 * masked form, in the quotes that `word` started with unless the whole
 * word was masked.
 */
function requote(word: string, unquoted: string, redacted: string): string {
  if (redacted === unquoted) return word
  if (redacted === REDACTED) return REDACTED
  const quote = word[0] === "'" || word[0] === '"' ? word[0] : ''
  return `${quote}${redacted}${quote}`
}

/** Returns a shell word without its quotes and backslash escapes, as the shell passes it to a program. */
function unquoteShellWord(word: string): string {
  if (!/["'\\]/.test(word)) return word
  let unquoted = ''
  for (let index = 0; index < word.length; index++) {
    const char = word[index]
    if (char === "'") {
      const end = word.indexOf("'", index + 1)
      const stop = end === -1 ? word.length : end
      unquoted += word.slice(index + 1, stop)
      index = stop
    } else if (char === '"') {
      index++
      while (index < word.length && word[index] !== '"') {
        // Inside double quotes, a backslash escapes only these characters.
        const next = word[index + 1]
        if (word[index] === '\\' && next !== undefined && '"\\$`\n'.includes(next)) index++
        unquoted += word[index]
        index++
      }
    } else if (char === '\\') {
      index++
      unquoted += word[index] ?? ''
    } else {
      unquoted += char
    }
  }
  return unquoted
}

/**
 * Returns whether the value given under `name` is a secret, and not the
 * path of a file that contains one (`--password-file`, `--passwordFile`).
 */
function isSecretValueName(name: string): boolean {
  return isSecretArgumentName(name) && !PATH_NAME.test(toKebabCase(name))
}
