/**
 * Options shared by several commands of `web-top-cli`: the tracker to read,
 * the request filters, and the parsers of their values.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_MAX_RECORD_BYTES, formatByteLimit } from '../task/wire'
import { isWebTopError } from '../errors'
import { DEFAULT_TRACKER_URL } from '../trackers/from-url'
import { requireTrimmedUrl } from '../trackers/tracker-url'
import { hasControlCharacter, KEY_PREFIX_WITHOUT_CONTROLS } from '../util/control-characters'
import { CliError, describeError, EXIT_USAGE } from './cli-error'
import { parseColumnList } from './columns'
import { escapeJsonForTerminal } from '../util/sanitize'
import {
  MAX_DURATION_SECONDS,
  parseDurationMs,
  parseStatusFilter,
  type StatusFilter,
  type TaskFilterOptions,
} from './filters'

export interface TrackerOptions {
  trackerUrl: string
  keyPrefix: string | undefined
  apiKey: string | undefined
  /** Whether `trackerUrl` came from TOP_TRACKER_URL, so that a command to copy can leave it out. */
  trackerUrlFromEnvironment?: boolean
  /**
   * Maximum length of a record read, in UTF-8 bytes (`ReadOptions.maxRecordBytes`):
   * --max-record-size, or `DEFAULT_MAX_RECORD_BYTES` for a command without
   * it. Unset, as in options built by hand, means no limit.
   */
  maxRecordBytes?: number
}

export const TRACKER_URL_HELP = `
Tracker URLs (--tracker-url or TOP_TRACKER_URL):
  redis://[user:password@]host:port[/db]
      one Redis server (the default is ${DEFAULT_TRACKER_URL})
  rediss://...
      the same over TLS
  redis+cluster://host:port,host:port
      Redis Cluster, from its seed nodes; --prefix needs a hash tag such as
      {shop}: so that all keys are on one slot
  redis+sentinel://host:port/master[/db]
      the master that Redis Sentinel names
  http://host:port/web-top, https://...
      an app's tracker endpoint (topTrackerEndpoint or topTrackerRoute); its
      key goes in --api-key or TOP_WEB_API_KEY. It has no update stream, so
      the reader polls it at the refresh rate.
memory:// is not accepted: it names the tracker inside one app's process, which
web-top-cli, a process of its own, cannot see. Serve it from the app with
topTrackerEndpoint and read it over http:// instead.`

/** URL kinds of a Redis tracker, which every command accepts. */
const REDIS_URL_KINDS = ['redis://', 'rediss://', 'redis+cluster://', 'redis+sentinel://']

/** URL kind of an app's tracker endpoint, which only the commands that read tasks accept. */
const HTTP_URL_KIND = 'http(s)://'

export interface TrackerOptionSettings {
  /** Parses --prefix but leaves it out of the help, for a command that rejects it. */
  hidePrefix?: boolean
  /**
   * Whether the command rejects an http(s):// tracker, because it writes or
   * lists key prefixes. Its help then lists only Redis URLs and leaves out
   * --api-key, which only an http(s):// tracker uses.
   */
  redisOnly?: boolean
}

/** Commands added with `redisOnly`, which `readTrackerOptions` names when it rejects --api-key. */
const redisOnlyCommands = new WeakSet<Command>()

/** Commands added with `hidePrefix`, which read no key prefix and ignore TOP_TRACKER_PREFIX. */
const hiddenPrefixCommands = new WeakSet<Command>()

/**
 * Adds --tracker-url, --prefix and --api-key. A hidden option is still
 * parsed, so that a command that rejects it reports a usage error.
 */
export function addTrackerOptions(
  command: Command,
  { hidePrefix = false, redisOnly = false }: TrackerOptionSettings = {},
): Command {
  if (redisOnly) redisOnlyCommands.add(command)
  if (hidePrefix) hiddenPrefixCommands.add(command)
  const urlKinds = redisOnly ? REDIS_URL_KINDS : [...REDIS_URL_KINDS, HTTP_URL_KIND]
  const urlDescription = redisOnly ? 'Redis tracker' : 'tracker to read'
  return command
    .addOption(
      new Option('--tracker-url <url>', `${urlDescription}: ${urlKinds.join(', ')}`)
        .env('TOP_TRACKER_URL')
        .default(DEFAULT_TRACKER_URL),
    )
    .addOption(
      new Option('--prefix <prefix>', 'key prefix on Redis, as set on the writers; none by default')
        .env('TOP_TRACKER_PREFIX')
        .hideHelp(hidePrefix),
    )
    .addOption(
      new Option('--api-key <key>', `key of an ${HTTP_URL_KIND} tracker endpoint`)
        .env('TOP_WEB_API_KEY')
        .hideHelp(redisOnly),
    )
}

/**
 * Returns the tracker options of a command. An option given after the
 * command name wins, then one given before it (`web-top-cli --tracker-url
 * URL live`), then the environment and the default. Throws a usage
 * `CliError` for a URL that starts or ends with whitespace, which an app's
 * recorder rejects too, for a `memory://` URL, which no other process can
 * read, for --prefix with an http(s):// URL, and for --api-key with any
 * other URL.
 * The variables TOP_TRACKER_PREFIX and TOP_WEB_API_KEY
 * are ignored where they do not apply, because a shell may set them for
 * other commands.
 */
export function readTrackerOptions(command: Command): TrackerOptions {
  const trackerUrl = readOption(command, 'trackerUrl') as string
  requireTrimmedTrackerUrl(command, trackerUrl)
  if (/^memory(:|$)/i.test(trackerUrl)) {
    throw new CliError(
      `Invalid tracker URL "${trackerUrl}": memory:// is the tracker inside one app's process, ` +
        'which web-top-cli cannot see; serve it from the app with topTrackerEndpoint and ' +
        'read it with --tracker-url http://host:port/web-top',
      EXIT_USAGE,
    )
  }
  const isHttp = isHttpUrl(trackerUrl)
  if (isHttp && isGivenOnCommandLine(command, 'prefix')) {
    throw new CliError(
      '--prefix does not apply to an http(s):// tracker: the app serves the tasks of its own key prefix ' +
        '(its keyPrefix option or TOP_TRACKER_PREFIX); leave out --prefix',
      EXIT_USAGE,
    )
  }
  // A Redis-only command rejects an http(s):// URL when it connects, with a message of its own.
  if (isGivenOnCommandLine(command, 'apiKey') && !isHttp) {
    const target = redisOnlyCommands.has(command) ? `${command.name()} works on Redis only` : 'the tracker URL is not http(s)://'
    throw new CliError(`--api-key is the key of an http(s):// tracker, and ${target}; leave out --api-key`, EXIT_USAGE)
  }
  return {
    trackerUrl,
    keyPrefix: isHttp ? undefined : readKeyPrefix(command),
    apiKey: readApiKey(command, trackerUrl),
    trackerUrlFromEnvironment:
      !isGivenOnCommandLine(command, 'trackerUrl') && command.getOptionValueSource('trackerUrl') === 'env',
    maxRecordBytes: readRecordSize(command),
  }
}

/**
 * Throws a usage `CliError` with the recorder's message for a tracker URL
 * that starts or ends with whitespace. The message names TOP_TRACKER_URL
 * when the URL came from it, as the recorder's message does.
 */
function requireTrimmedTrackerUrl(command: Command, trackerUrl: string): void {
  try {
    requireTrimmedUrl(trackerUrl)
  } catch (error) {
    if (!isWebTopError(error)) throw error
    const reason = error.message.replace(/^web-top: /, '')
    const fromEnvironment = !isGivenOnCommandLine(command, 'trackerUrl')
    throw new CliError(fromEnvironment ? `${reason} (from the TOP_TRACKER_URL environment variable)` : reason, EXIT_USAGE)
  }
}

/**
 * Returns --prefix, or TOP_TRACKER_PREFIX. Throws a usage `CliError` for a
 * prefix with a control character, which would split the CLI's one-line
 * messages, unless it comes from the environment on a command that ignores
 * the variable (`prefixes`, `recent --all-prefixes`).
 */
function readKeyPrefix(command: Command): string | undefined {
  const keyPrefix = readOption(command, 'prefix') as string | undefined
  if (keyPrefix === undefined || !hasControlCharacter(keyPrefix)) return keyPrefix

  const received = escapeJsonForTerminal(JSON.stringify(keyPrefix))
  if (isGivenOnCommandLine(command, 'prefix')) {
    throw new CliError(
      `The --prefix option must be ${KEY_PREFIX_WITHOUT_CONTROLS} (received ${received}); ` +
        'pass the prefix that the apps record with',
      EXIT_USAGE,
    )
  }
  if (hiddenPrefixCommands.has(command) || command.getOptionValue('allPrefixes') === true) return keyPrefix
  throw new CliError(
    `The TOP_TRACKER_PREFIX environment variable must be ${KEY_PREFIX_WITHOUT_CONTROLS} ` +
      `(received ${received}); set it to the prefix that the apps record with, or pass --prefix`,
    EXIT_USAGE,
  )
}

/**
 * Maximum --max-record-size: Redis stores strings of up to 512 MiB, and V8
 * (Node 20) makes no string of more than 2^29 - 24 UTF-16 code units.
 */
const MAX_RECORD_SIZE_LIMIT = 512 * 1024 * 1024

/** Returns --max-record-size, or the default for a command without the option. */
function readRecordSize(command: Command): number {
  return (command.getOptionValue('maxRecordSize') as number | undefined) ?? DEFAULT_MAX_RECORD_BYTES
}

/** Adds --max-record-size, for a command that reads task records. */
export function addRecordSizeOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--max-record-size <size>',
      'largest task record to read, in UTF-8 bytes as Redis counts them, or with KiB or MiB ' +
        '(512KiB, 2MiB); larger records are skipped and counted',
    )
      .env('TOP_MAX_RECORD_SIZE')
      .argParser(parseByteSize)
      .default(DEFAULT_MAX_RECORD_BYTES, formatByteLimit(DEFAULT_MAX_RECORD_BYTES).replace(' ', '')),
  )
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kib: 1024, mib: 1024 * 1024 }

/**
 * Parses a size in bytes: a whole number of bytes, or a number with a unit
 * of B, KiB or MiB (`262144`, `256KiB`, `1.5 MiB`). Throws for other units,
 * such as KB, whose meaning (1000 or 1024) varies between tools, and for
 * sizes below 1 byte or above 512 MiB.
 */
export function parseByteSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value)
  const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? 'none']
  const bytes = match === null || unit === undefined ? NaN : Math.floor(Number(match[1]) * unit)
  const valid = Number.isSafeInteger(bytes) && bytes >= 1 && bytes <= MAX_RECORD_SIZE_LIMIT
  if (!valid || (unit === 1 && !/^\s*\d+\s*b?\s*$/i.test(value))) {
    throw new InvalidArgumentError(
      'Expected a size from 1 byte to 512 MiB: a whole number of bytes (262144), ' +
        'or a number with KiB or MiB (256KiB, 1.5MiB).',
    )
  }
  return bytes
}

/**
 * Returns the key of --api-key or TOP_WEB_API_KEY, unless an http(s):// URL
 * has an `api-key` parameter: the key in the URL then wins over the
 * variable, as in `HttpTracker`. Throws a usage `CliError` when --api-key
 * is given on the command line too, because one of the two keys would be
 * ignored.
 */
function readApiKey(command: Command, trackerUrl: string): string | undefined {
  const apiKey = readOption(command, 'apiKey') as string | undefined
  if (!hasUrlApiKey(trackerUrl)) return apiKey
  if (isGivenOnCommandLine(command, 'apiKey')) {
    throw new CliError(
      'The tracker URL has an api-key parameter and --api-key is given too; pass the key in only one of them',
      EXIT_USAGE,
    )
  }
  return undefined
}

/** Checks whether a tracker URL starts with http:// or https://, in any case. */
function isHttpUrl(trackerUrl: string): boolean {
  return /^https?:/i.test(trackerUrl.trim())
}

/** Checks whether an http(s):// URL has a non-empty `api-key` query parameter. */
function hasUrlApiKey(trackerUrl: string): boolean {
  let url: URL
  try {
    url = new URL(trackerUrl)
  } catch {
    return false
  }
  const isHttp = url.protocol === 'http:' || url.protocol === 'https:'
  return isHttp && (url.searchParams.get('api-key') ?? '') !== ''
}

/** Returns true when option `name` was given on the command line, before or after the command's name. */
export function isGivenOnCommandLine(command: Command, name: string): boolean {
  return command.getOptionValueSource(name) === 'cli' || command.parent?.getOptionValueSource(name) === 'cli'
}

function readOption(command: Command, name: string): unknown {
  const program = command.parent
  const givenBeforeCommand = program?.getOptionValueSource(name) === 'cli'
  if (command.getOptionValueSource(name) !== 'cli' && givenBeforeCommand) {
    return program?.getOptionValue(name)
  }
  return command.getOptionValue(name)
}

/** Values of the filter options as Commander returns them. */
export interface FilterOptionValues {
  path?: string
  status?: StatusFilter
  method?: string[]
  host?: string
  minDuration?: number
}

export const FILTER_HELP = `
Filters: --path takes a substring of the path, or a glob that must match the
whole path, where * matches any characters, / included, and ? one character;
--status takes codes from 100 to 999, classes and ranges (404, 5xx, 400-499,
comma-separated); --method takes methods (GET,POST); --host matches the
recording host or the request's Host header; --min-duration takes
milliseconds or a unit (250ms, 1.5s, 2m, 1h), or a duration as the tables
show it (2h07m). A request must pass every filter.`

/** Adds --path, --status, --method, --host and --min-duration. */
export function addFilterOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--path <text>', 'only paths that contain the text, or match the glob (* and ?)').argParser(
        nonEmptyParser('path'),
      ),
    )
    .addOption(
      new Option('--status <list>', 'only these statuses: 404, 5xx, 400-499, comma-separated').argParser(
        wrapParser(parseStatusFilter),
      ),
    )
    .addOption(new Option('--method <list>', 'only these methods, comma-separated').argParser(parseMethods))
    .addOption(
      new Option('--host <text>', 'only requests whose recording host or Host header contains the text').argParser(
        nonEmptyParser('host'),
      ),
    )
    .addOption(
      new Option('--min-duration <duration>', 'only requests that took at least this long (250ms, 1.5s)').argParser(
        wrapParser(parseDurationMs),
      ),
    )
}

/** Returns a parser of `--${name}` that rejects an empty value, which would match every request. */
function nonEmptyParser(name: string): (value: string) => string {
  return (value) => {
    if (value === '') {
      throw new InvalidArgumentError(`Expected text to look for; leave out --${name} to show every request.`)
    }
    return value
  }
}

/** Characters of an HTTP token, which a method is (RFC 9110, section 5.6.2). */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Parses a comma-separated list of methods. Throws for an empty list and for a method that is not an HTTP token. */
function parseMethods(value: string): string[] {
  const methods = value
    .split(',')
    .map((method) => method.trim())
    .filter((method) => method !== '')
  if (methods.length === 0) throw new InvalidArgumentError('Expected methods such as GET or GET,POST.')
  const invalid = methods.find((method) => !HTTP_TOKEN.test(method))
  if (invalid !== undefined) {
    throw new InvalidArgumentError(
      `Invalid method ${JSON.stringify(invalid)}: a method is an HTTP token, such as GET: ` +
        "letters, digits and !#$%&'*+-.^_`|~, without spaces.",
    )
  }
  return methods
}

export function readFilterOptions(values: FilterOptionValues): TaskFilterOptions {
  return {
    path: values.path,
    status: values.status,
    methods: values.method,
    host: values.host,
    minDurationMs: values.minDuration,
  }
}

/** Returns an option of comma-separated column names with an environment variable. */
export function columnsOption(flags: string, envName: string, defaultList: string): Option {
  return new Option(flags, 'comma-separated column names')
    .env(envName)
    .argParser(wrapParser(parseColumnList))
    .default(parseColumnList(defaultList), defaultList)
}

/** Parses a count of 1 or more, up to `Number.MAX_SAFE_INTEGER`, the largest whole number that a double represents exactly. */
export function parsePositiveInteger(value: string): number {
  return parseWholeNumber(value, 1)
}

/** Parses a count of 0 or more, up to `Number.MAX_SAFE_INTEGER`. */
export function parseCount(value: string): number {
  return parseWholeNumber(value, 0)
}

function parseWholeNumber(value: string, min: number): number {
  const number = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < min) {
    throw new InvalidArgumentError(`Expected a whole number from ${min} to ${Number.MAX_SAFE_INTEGER}.`)
  }
  return number
}

/**
 * Returns a parser of a number of seconds from `min` to `max`, by default
 * up to 365 days. A value with units is read as a duration (`90s`, `5m`,
 * `1h`, `2h07m`), as the tables print them.
 */
export function secondsParser(min: number, max = MAX_DURATION_SECONDS): (value: string) => number {
  const days = max % 86_400 === 0 ? ` (${max / 86_400} days)` : ''
  const expected = `from ${min} to ${max}${days}, or a duration such as 90s, 5m or 1h`
  return (value) => {
    const seconds = /[a-z]/i.test(value) ? readDurationSeconds(value) : Number(value)
    if (value.trim() === '' || !Number.isFinite(seconds) || seconds < min || seconds > max) {
      throw new InvalidArgumentError(`Expected a number of seconds ${expected}.`)
    }
    return seconds
  }
}

/** Returns the seconds of a duration with units, or NaN when it is not one. */
function readDurationSeconds(value: string): number {
  try {
    return parseDurationMs(value) / 1000
  } catch {
    return Number.NaN
  }
}

/** Parses a share: `0.05` or `5%`. Returns a number from 0 to 1. */
export function parseShare(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$/.exec(value)
  const share = match === null ? NaN : Number(match[1]) / (match[2] === '%' ? 100 : 1)
  if (!Number.isFinite(share) || share > 1) {
    throw new InvalidArgumentError('Expected a share from 0 to 1, such as 0.05, or a percentage, such as 5%.')
  }
  return share
}

/** Turns the `Error` of a parser into Commander's `InvalidArgumentError`, so it exits with code 2. */
export function wrapParser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value)
    } catch (error) {
      throw new InvalidArgumentError(describeError(error))
    }
  }
}

