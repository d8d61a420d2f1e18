/**
 * The `web-top-cli` command line: parses arguments, runs a command and sets
 * the exit code: 0 on success, 1 when the tracker fails (or `check` finds a
 * broken limit), 2 for a wrong command line. Errors are printed as one line
 * on standard error, but a command line without a command gets the whole
 * help there, as Commander prints it.
 */
import { Command, CommanderError, Option } from 'commander'
import { runCheck } from './check'
import { CliError, describeError, EXIT_FAILURE, EXIT_USAGE } from './cli-error'
import { runClear } from './clear'
import {
  DEFAULT_ACTIVE_COLUMNS,
  DEFAULT_COMPLETED_COLUMNS,
  DEFAULT_RECENT_COLUMNS,
  FAST_DURATION_MS,
  SLOW_DURATION_MS,
  type Column,
} from './columns'
import { parseDurationMs } from './filters'
import { LIVE_DEFAULTS, runLive } from './live'
import { renderKeyHelp } from './live-render'
import {
  addFilterOptions,
  addRecordSizeOption,
  addTrackerOptions,
  columnsOption,
  FILTER_HELP,
  parseCount,
  parsePositiveInteger,
  parseShare,
  readFilterOptions,
  isGivenOnCommandLine,
  readTrackerOptions,
  secondsParser,
  TRACKER_URL_HELP,
  wrapParser,
  type FilterOptionValues,
} from './options'
import { skipClusterSubscriberWarning } from './known-warnings'
import { runPrune } from './prune'
import { DEFAULT_MAX_COMPLETED_TASKS } from '../trackers/completed-cap'
import { sanitizeText } from '../util/sanitize'
import {
  endOnClosedOutput,
  exitOnceFlushed,
  exitOnceReported,
  messageStream,
  watchStandardStreams,
} from './standard-streams'
import { isDumbTerminal } from './style'
import { runPrefixes, runRecentForAllPrefixes } from './prefixes'
import { RECENT_COMPLETED_LIMIT, runRecent, type RecentFormat } from './recent'
import { runTail } from './tail'
import { TASK_MODES, type TaskMode } from './task-order'

// tsup bundles the JSON into dist/cli.js, so the version needs no file lookup at run time.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the bundler inlines it
const { version: PACKAGE_VERSION } = require('../../package.json') as { version: string }

/** Refresh interval of `live` in seconds when no option or `TOP_REFRESH_RATE` sets one. */
export const DEFAULT_REFRESH_RATE_SECONDS = 2

/** Shortest refresh interval accepted, in seconds. */
const MIN_REFRESH_RATE_SECONDS = 0.1

/**
 * Maximum --refresh-rate: Node's largest timer delay (2^31 - 1 ms) in whole
 * seconds, about 24.8 days. Node runs a timer with a longer delay after
 * 1 ms, which would read the tracker in a busy loop.
 */
const MAX_REFRESH_RATE_SECONDS = 2_147_483

interface RecentOptionValues extends FilterOptionValues {
  mode: TaskMode
  limit?: number
  columns: Column[]
  json?: boolean
  ndjson?: boolean
}

interface LiveOptionValues {
  refreshRate: number
  activeColumns: Column[]
  completedColumns: Column[]
  window: number
  slowAfter: number
  stallAfter: number
}

interface TailOptionValues extends FilterOptionValues {
  json?: boolean
  refreshRate: number
}

interface CheckOptionValues {
  maxStalled?: number
  maxErrorRate?: number
  maxP99?: number
  minRequests?: number
  window: number
  stallAfter: number
}

const RECENT_LIMIT_TEXT = RECENT_COMPLETED_LIMIT.toLocaleString('en-US')

const FAST_SECONDS = FAST_DURATION_MS / 1000
const SLOW_SECONDS = SLOW_DURATION_MS / 1000

/** Width of the help text written after the options, in columns, as the text's own lines are wrapped. */
const HELP_WIDTH = 80

const LIVE_HELP = `
Header: hosts and processes seen, active requests, completed requests per
second, p50/p95/p99 duration, 5xx and 4xx shares and the status mix over the
last --window seconds. The figures come from the task_updates stream (every
completed request counts); for an http(s):// tracker, which has no stream,
from the completed requests seen by polling past_tasks. The rate counts only
requests that ended within the time the view has covered, so records sent
late, as after a Redis outage, do not inflate it.

Keys:
${renderKeyHelp(HELP_WIDTH).join('\n')}

Active requests running --slow-after seconds or longer are red; those
running --stall-after seconds or longer are marked STALLED and pinned at the
top. Durations are green below ${FAST_SECONDS} s, yellow below ${SLOW_SECONDS} s and red beyond.
Status codes are green (2xx), cyan (3xx), yellow (4xx) or red (5xx).
Set NO_COLOR to turn colours off. On a terminal with TERM=dumb, which cannot
move the cursor, live exits with code 2: use recent or tail there.

When standard output is not a terminal, live prints a plain frame (no
colours) once a second, separated from the previous one by a blank line,
until it is interrupted.`

const PROGRAM_HELP = `
Exit codes: 0 on success, 1 when the tracker cannot be reached or read (and
when check finds a broken limit, or clear's question is answered no), 2 for
an invalid command line or configuration (unknown option, invalid value,
unknown column, invalid tracker URL, missing API key, live with TERM=dumb).
A reader that closes standard output early (| head) ends live and tail with
0; the other commands keep their own exit code.
${TRACKER_URL_HELP}`

const RECENT_HELP = `
Columns: Cty, IP, Host, Process, Worker, Method, Route, Path, Duration, Ago,
Resp, Status text, Length, Tags, User agent.

Cty shows a CF-IPCOUNTRY header of two characters that starts with a letter:
two letters as the country's flag and its code in capitals (de as DE), others
such as XX and T1 as they are, and no other value. It shows nothing for a
request that web-top recorded without a trusted proxy, because its client may
have sent the header itself. A record without the web_top.client_ip_source tag,
such as the Python tracker writes, is shown by the same rules. The column
appears only when some request has a country to show, so requests recorded
without a trusted proxy do not bring it in.

--json prints one JSON array of the task records (active ones first, then
completed ones, most recent first); --ndjson prints one task record per line.
Both keep the field names of the wire format, so scripts can rely on them.
With --all-prefixes, --json prints one JSON array with a { prefix, tasks }
object per key prefix, and --ndjson prints one { prefix, task } object per line.
${FILTER_HELP}

Colours only when standard output is a terminal, NO_COLOR is not set and TERM
is not dumb. A note about records that could not be read goes to standard error.`

const TAIL_HELP = `
Each line: end time (UTC), status, duration, method, path, response length,
client IP, recording process and user agent. --json prints each task record
as one JSON object per line (NDJSON) instead.

tail follows the task_updates stream. When the connection to Redis is lost,
it says so on standard error, reconnects, and prints what ended meanwhile
from past_tasks, saying how long the gap was. An http(s):// tracker has no
stream: tail polls its completed tasks every --refresh-rate seconds. While
the polls fail, the error is printed once, then counted at most every 30
seconds, and a line says when the tracker can be read again.
${FILTER_HELP}`

const CHECK_HELP = `
Reads the tracker once. A request counts as stalled when it has been active
for --stall-after seconds or longer; with 0, every active request counts.
live takes the same values but also needs --stall-after to be at least its
--slow-after, an option that check does not have.

The 5xx share and the p99 duration are those of the completed requests of the
last --window seconds that past_tasks still holds. Prints one line: "OK: ..."
and exits 0, or "FAIL: ..." naming each broken limit and exits 1. Limits not
given are not checked, so a window without requests passes. --min-requests 1
fails the check when no request completed in the window, as when no app
records or --prefix is wrong.

Records that cannot be read are left out and counted on that line, and
listed on standard error as recent lists them. A key of the wrong type, or a
read that finds only unreadable records, fails the check whatever the
limits. Times more than 5 minutes ahead of this host's clock do not count.
When the prefix has no tracker key at all, as after a typo in --prefix, a
note on standard error says so and the exit code stays as the limits decide.

Example, in cron or a health probe:
  web-top-cli check --max-stalled 0 --max-error-rate 2% --max-p99 1500`

const PRUNE_HELP = `
The ended tasks go onto past_tasks, which is then trimmed to
TOP_MAX_COMPLETED_TASKS entries (default: ${DEFAULT_MAX_COMPLETED_TASKS}) or to the length it had before
the prune, whichever is more. Set the variable as for the apps that record.
An invalid value exits with code 2.`

/**
 * Runs the command line `argv` (as in `process.argv`) and exits with the
 * command's exit code once its output is flushed.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  watchStandardStreams()
  skipClusterSubscriberWarning()
  const program = createProgram()
  removeEmptyEnvironmentValues(program, process.env)
  try {
    await program.parseAsync([...argv])
  } catch (error) {
    exitOnceReported(reportError(error))
    return
  }
  exitOnceFlushed(Number(process.exitCode ?? 0))
}

/**
 * Deletes the option variables of `command` and its subcommands that are set
 * but empty, so that they read as unset, as the recorder reads them.
 * Commander would otherwise reject `TOP_RECENT_LIMIT=` as an invalid value.
 */
function removeEmptyEnvironmentValues(command: Command, env: NodeJS.ProcessEnv): void {
  for (const option of command.options) {
    if (option.envVar !== undefined && env[option.envVar] === '') delete env[option.envVar]
  }
  for (const subcommand of command.commands) removeEmptyEnvironmentValues(subcommand, env)
}

/** Builds the command tree; exported for tests of the argument parsing. */
export function createProgram(): Command {
  const program = new Command('web-top-cli')
    .description('Show the HTTP requests that web-top records, active and recently completed.')
    .addHelpText('after', PROGRAM_HELP)
    .version(PACKAGE_VERSION, '-V, --version', 'print the version of web-top')
    .exitOverride()
    // Options before the command name belong to the program, options after it to the command.
    .enablePositionalOptions()
    .configureOutput({
      writeErr: (text) => messageStream.write(text),
      outputError: (text, write) => write(formatCommanderError(suggestCommandInCase(text, program))),
    })

  addTrackerOptions(program)
  addRecentCommand(program)
  addLiveCommand(program)
  addTailCommand(program)
  addCheckCommand(program)
  addClearCommand(program)
  addPruneCommand(program)
  addPrefixesCommand(program)
  addMistakenCommands(program)

  program
    .command('version')
    .description('print the version of web-top')
    .action(() => {
      process.stdout.write(`${PACKAGE_VERSION}\n`)
    })
  addHelpCommand(program)

  return program
}

/**
 * Adds `help [command]` in place of Commander's own, which prints the
 * whole help on stderr for an unknown command. This one reports that
 * command on one line, as for `web-top-cli bogus`.
 */
function addHelpCommand(program: Command): void {
  program.helpCommand(false)
  program
    .command('help [command]')
    .description('display help for command')
    .action((name: string | undefined) => {
      if (name === undefined) program.help()
      const suggestion = MISTAKEN_COMMANDS.get(name)
      if (suggestion !== undefined) throw describeMistakenCommand(name, suggestion)
      const command = program.commands.find((candidate) => candidate.name() === name)
      if (command === undefined) {
        const inCase = findCommandInCase(name, program)
        if (inCase !== undefined) throw describeMistakenCommand(name, inCase)
        const names = program.commands
          .filter((candidate) => !MISTAKEN_COMMANDS.has(candidate.name()))
          .map((candidate) => candidate.name())
          .join(', ')
        // Quoted as Commander quotes an unknown command; the name may contain characters that a terminal acts on.
        throw new CliError(`unknown command '${sanitizeText(name)}'; the commands are ${names}`, EXIT_USAGE)
      }
      command.help()
    })
}

/**
 * Names that users type for the listings of `recent --mode`, with the
 * command line to suggest. Commander would suggest the command closest in
 * spelling, `live` for `active`.
 */
const MISTAKEN_COMMANDS: ReadonlyMap<string, string> = new Map([
  ['active', 'recent --mode active'],
  ['completed', 'recent --mode complete'],
  ['complete', 'recent --mode complete'],
])

/**
 * Adds a hidden command for each name of `MISTAKEN_COMMANDS` that fails
 * with a usage error naming the command line to use. The commands take any
 * options and arguments, so that the error is the same however they are typed.
 */
function addMistakenCommands(program: Command): void {
  for (const [name, suggestion] of MISTAKEN_COMMANDS) {
    program
      .command(name, { hidden: true })
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw describeMistakenCommand(name, suggestion)
      })
  }
}

/**
 * Returns the command line to suggest for `name`, a command or a name of
 * `MISTAKEN_COMMANDS` in other letter case (`RECENT`, `Active`), or
 * undefined for any other name. Commander's suggestion goes by edit distance
 * with case counted, so it suggests nothing for `RECENT` and `live` for
 * `Active`.
 */
function findCommandInCase(name: string, program: Command): string | undefined {
  const lowerCase = name.toLowerCase()
  if (lowerCase === name) return undefined
  const mistaken = MISTAKEN_COMMANDS.get(lowerCase)
  if (mistaken !== undefined) return mistaken
  return program.commands.find((command) => command.name() === lowerCase)?.name()
}

/** Replaces Commander's suggestion for an unknown command written in other letter case (`findCommandInCase`). */
function suggestCommandInCase(text: string, program: Command): string {
  const match = /^error: unknown command '(.*)'/.exec(text)
  const name = match?.[1]
  if (name === undefined) return text
  const suggestion = findCommandInCase(name, program)
  if (suggestion === undefined) return text
  return `error: unknown command '${name}' (Did you mean ${suggestion}?)`
}

/** Returns the usage error for a name of `MISTAKEN_COMMANDS`, worded as Commander words an unknown command. */
function describeMistakenCommand(name: string, suggestion: string): CliError {
  return new CliError(`unknown command '${name}' (Did you mean ${suggestion}?)`, EXIT_USAGE)
}

function addRecentCommand(program: Command): void {
  const command = program
    .command('recent')
    .description('Print active and recently completed requests as one table and exit.')
    .addOption(
      new Option('--mode <mode>', 'which requests to print')
        .choices(TASK_MODES)
        .env('TOP_RECENT_MODE')
        .default('all'),
    )
    .addOption(
      new Option(
        '--limit <n>',
        `print at most n rows, active ones first; without it, recent reads the ${RECENT_LIMIT_TEXT} most ` +
          'recent completed requests and says on standard error when there are more',
      )
        .env('TOP_RECENT_LIMIT')
        .argParser(parsePositiveInteger),
    )
    .addOption(columnsOption('--columns <list>', 'TOP_RECENT_COLUMNS', DEFAULT_RECENT_COLUMNS))
    .addOption(new Option('--json', 'print the task records as one JSON array').conflicts('ndjson'))
    .option('--ndjson', 'print one JSON task record per line')
    .option('--all-prefixes', 'print the requests of every app (key prefix) on the Redis server')
    .addHelpText('after', RECENT_HELP)
  addRecordSizeOption(addFilterOptions(addTrackerOptions(command))).action(
    async (values: RecentOptionValues & { allPrefixes?: boolean }, self: Command) => {
      // TOP_TRACKER_PREFIX in the environment gives way to --all-prefixes; --prefix does not.
      if (values.allPrefixes === true && isGivenOnCommandLine(self, 'prefix')) {
        throw new CliError('--all-prefixes cannot be used with --prefix: leave out one of them', EXIT_USAGE)
      }
      const options = {
        ...readTrackerOptions(self),
        mode: values.mode,
        limit: values.limit,
        columns: values.columns,
        format: readRecentFormat(values),
        filter: readFilterOptions(values),
      }
      process.exitCode =
        values.allPrefixes === true ? await runRecentForAllPrefixes(options) : await runRecent(options)
    },
  )
}

function addPrefixesCommand(program: Command): void {
  const command = program
    .command('prefixes')
    .description('List the apps (key prefixes) that record to the Redis server, with their task counts.')
    .option(
      '--json',
      'print a JSON array of { prefix, active, completed, skipped }, with wrongTypeKeys when a key has the wrong type',
    )
  addTrackerOptions(command, { hidePrefix: true, redisOnly: true })
  addRecordSizeOption(command).action(async (values: { json?: boolean }, self: Command) => {
    // TOP_TRACKER_PREFIX in the environment is ignored here; --prefix is a mistake.
    if (isGivenOnCommandLine(self, 'prefix')) {
      throw new CliError('prefixes lists every key prefix on the server: leave out --prefix', EXIT_USAGE)
    }
    process.exitCode = await runPrefixes({ ...readTrackerOptions(self), json: values.json === true })
  })
}

function addLiveCommand(program: Command): void {
  const command = program
    .command('live')
    .description('Show active and completed requests full screen, updated as they change.')
    .addOption(refreshRateOption('seconds between full reads (updates show as they come)'))
    .addOption(columnsOption('--active-columns <list>', 'ACTIVE_COLUMNS', DEFAULT_ACTIVE_COLUMNS))
    .addOption(columnsOption('--completed-columns <list>', 'COMPLETED_COLUMNS', DEFAULT_COMPLETED_COLUMNS))
    .addOption(windowOption())
    .addOption(
      new Option('--slow-after <seconds>', 'show active requests running this long in red')
        .argParser(secondsParser(0))
        .default(LIVE_DEFAULTS.slowAfterSeconds),
    )
    .addOption(stallAfterOption())
    .addHelpText('after', LIVE_HELP)
  addRecordSizeOption(addTrackerOptions(command)).action(async (values: LiveOptionValues, self: Command) => {
    requireSlowBeforeStall(self, values)
    rejectDumbTerminal()
    endOnClosedOutput()
    const code = await runLive({
      ...readTrackerOptions(self),
      refreshRateSeconds: values.refreshRate,
      activeColumns: values.activeColumns,
      completedColumns: values.completedColumns,
      windowSeconds: values.window,
      slowAfterSeconds: values.slowAfter,
      stallAfterSeconds: values.stallAfter,
    })
    process.exitCode = code
  })
}

function addTailCommand(program: Command): void {
  const command = program
    .command('tail')
    .description('Print each completed request as one line as it happens, like an access log.')
    .option('--json', 'print one JSON task record per line (NDJSON)')
    .addOption(refreshRateOption('seconds between reads of an http(s):// tracker'))
    .addHelpText('after', TAIL_HELP)
  addFilterOptions(addTrackerOptions(command))
  addRecordSizeOption(command).action(async (values: TailOptionValues, self: Command) => {
    endOnClosedOutput()
    const code = await runTail({
      ...readTrackerOptions(self),
      json: values.json === true,
      filter: readFilterOptions(values),
      pollSeconds: values.refreshRate,
    })
    process.exitCode = code
  })
}

function addCheckCommand(program: Command): void {
  const command = program
    .command('check')
    .description('Exit 1 with a one-line reason when a limit is broken, 0 with a summary otherwise.')
    .addOption(new Option('--max-stalled <n>', 'most stalled requests allowed').argParser(parseCount))
    .addOption(
      new Option('--max-error-rate <share>', 'highest 5xx share allowed: 0.05 or 5%').argParser(parseShare),
    )
    .addOption(
      new Option('--max-p99 <duration>', 'highest p99 duration allowed: milliseconds, or 1.5s').argParser(
        wrapParser(parseDurationMs),
      ),
    )
    .addOption(
      new Option(
        '--min-requests <n>',
        'fewest completed requests in the window; fewer fail the check, as when no app records',
      ).argParser(parseCount),
    )
    .addOption(windowOption())
    .addOption(stallAfterOption())
    .addHelpText('after', CHECK_HELP)
  addRecordSizeOption(addTrackerOptions(command)).action(async (values: CheckOptionValues, self: Command) => {
    process.exitCode = await runCheck({
      ...readTrackerOptions(self),
      maxStalled: values.maxStalled,
      maxErrorRate: values.maxErrorRate,
      maxP99Ms: values.maxP99,
      minRequests: values.minRequests,
      windowSeconds: values.window,
      stallAfterSeconds: values.stallAfter,
    })
  })
}

function addClearCommand(program: Command): void {
  const command = program
    .command('clear')
    .description('Delete every active and completed task of the tracker, after asking.')
    .option('-y, --yes', 'clear without asking; needed when standard input is not a terminal')
  addTrackerOptions(command, { redisOnly: true }).action(async (values: { yes?: boolean }, self: Command) => {
    process.exitCode = await runClear({ ...readTrackerOptions(self), yes: values.yes === true })
  })
}

function addPruneCommand(program: Command): void {
  const command = program
    .command('prune')
    .description(
      'End the active tasks of recording processes whose heartbeat stopped, and move them to the completed tasks.',
    )
    .addHelpText('after', PRUNE_HELP)
  addTrackerOptions(command, { redisOnly: true }).action(async (_values: object, self: Command) => {
    process.exitCode = await runPrune(readTrackerOptions(self))
  })
}

function readRecentFormat(values: RecentOptionValues): RecentFormat {
  if (values.json === true) return 'json'
  return values.ndjson === true ? 'ndjson' : 'table'
}

function refreshRateOption(description: string): Option {
  return new Option('--refresh-rate <seconds>', description)
    .env('TOP_REFRESH_RATE')
    .argParser(secondsParser(MIN_REFRESH_RATE_SECONDS, MAX_REFRESH_RATE_SECONDS))
    .default(DEFAULT_REFRESH_RATE_SECONDS)
}

function windowOption(): Option {
  return new Option('--window <seconds>', 'length of the window of the rate, percentiles and error shares')
    .argParser(secondsParser(1))
    .default(LIVE_DEFAULTS.windowSeconds)
}

/**
 * Throws a usage `CliError` when a request would count as STALLED before it
 * turns slow. The message blames the option given on the command line, and
 * calls the other one's value the default when it was not given.
 */
function requireSlowBeforeStall(command: Command, values: LiveOptionValues): void {
  const { slowAfter, stallAfter } = values
  if (slowAfter <= stallAfter) return

  const reason = 'because a request counts as slow before it counts as STALLED'
  if (!isGivenOnCommandLine(command, 'slowAfter')) {
    throw new CliError(
      `Invalid --stall-after ${stallAfter}: it must not be less than the default --slow-after ${slowAfter}, ` +
        `${reason}; raise --stall-after or pass a lower --slow-after`,
      EXIT_USAGE,
    )
  }
  const stall = isGivenOnCommandLine(command, 'stallAfter')
    ? `--stall-after ${stallAfter}`
    : `the default --stall-after ${stallAfter}`
  throw new CliError(
    `Invalid --slow-after ${slowAfter}: it must not be greater than ${stall}, ${reason}; ` +
      'lower --slow-after or raise --stall-after',
    EXIT_USAGE,
  )
}

/**
 * Throws a usage `CliError` when `live` would draw on a terminal whose TERM
 * is `dumb`. Such a terminal has no cursor movement, so the full-screen view
 * would print its escape codes as text. Output that is not a terminal gets
 * plain frames, which need no cursor movement, so it passes.
 */
function rejectDumbTerminal(): void {
  if (process.stdout.isTTY !== true || !isDumbTerminal()) return
  throw new CliError(
    'live needs a terminal that can move the cursor, and TERM is "dumb": ' +
      'use recent or tail instead, or set TERM to the type of your terminal, such as xterm-256color',
    EXIT_USAGE,
  )
}

function stallAfterOption(): Option {
  return new Option('--stall-after <seconds>', 'an active request running this long counts as STALLED')
    .argParser(secondsParser(0))
    .default(LIVE_DEFAULTS.stallAfterSeconds)
}

/**
 * Returns a Commander error as one line that starts like the CLI's other
 * errors. Commander writes "error: " before the message and puts a
 * suggestion such as "(Did you mean --mode?)" on a line of its own.
 */
function formatCommanderError(text: string): string {
  return `web-top-cli: ${describeError(text).replace(/^error: /, '')}\n`
}

/** Prints an error as one line and returns the exit code; Commander prints its own errors. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE
  if (error instanceof CliError) {
    messageStream.write(`web-top-cli: ${error.message}\n`)
    return error.exitCode
  }
  messageStream.write(`web-top-cli: unexpected error: ${describeError(error)}\n`)
  return EXIT_FAILURE
}
