/**
 * The `web-top-cli` command line: parses arguments, runs a command and sets
 * the exit code: 0 on success, 1 when the tracker fails, 2 for a wrong
 * command line. Errors are printed as one line on standard error.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_TRACKER_URL } from '../trackers/from-url'
import { CliError, describeError, EXIT_FAILURE, EXIT_USAGE } from './cli-error'
import {
  DEFAULT_ACTIVE_COLUMNS,
  DEFAULT_COMPLETED_COLUMNS,
  DEFAULT_RECENT_COLUMNS,
  FAST_DURATION_MS,
  parseColumnList,
  SLOW_DURATION_MS,
  type Column,
} from './columns'
import { runLive } from './live'
import { runRecent, type RecentOptions } from './recent'
import { TASK_MODES, type TaskMode } from './task-order'

// tsup bundles the JSON into dist/cli.js, so the version needs no file lookup at run time.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the bundler inlines it
const { version: PACKAGE_VERSION } = require('../../package.json') as { version: string }

/** Refresh interval of `live` in seconds when no option or `TOP_REFRESH_RATE` sets one. */
export const DEFAULT_REFRESH_RATE_SECONDS = 2

/** Shortest refresh interval accepted, in seconds. */
const MIN_REFRESH_RATE_SECONDS = 0.1

interface RecentOptionValues {
  mode: TaskMode
  limit?: number
  columns: Column[]
  json?: boolean
}

interface LiveOptionValues {
  refreshRate: number
  activeColumns: Column[]
  completedColumns: Column[]
}

const FAST_SECONDS = FAST_DURATION_MS / 1000
const SLOW_SECONDS = SLOW_DURATION_MS / 1000

const LIVE_HELP = `
Keys: q or Ctrl-C quits.

Durations are green below ${FAST_SECONDS} s, yellow below ${SLOW_SECONDS} s and red beyond.
Status codes are green (2xx), cyan (3xx), yellow (4xx) or red (5xx).
Set NO_COLOR to turn colours off.

When standard output is not a terminal, live prints each new frame as plain
text, without colours, separated from the previous one by a blank line, until
it is interrupted.`

const PROGRAM_HELP = `
Exit codes: 0 on success, 1 when the tracker cannot be reached or read, 2 for
an invalid command line (unknown option, invalid value, unknown column).`

const RECENT_HELP = `
Columns: Cty, IP, Worker, Method, Path, Duration, Ago, Resp, Length, User agent
(Cty only when some request has a CF-IPCOUNTRY header).

Colours only when standard output is a terminal and NO_COLOR is not set. A note
about records that could not be read goes to standard error.`

/** Runs the command line `argv` (as in `process.argv`) and sets `process.exitCode`. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = createProgram()
  try {
    await program.parseAsync([...argv])
  } catch (error) {
    process.exitCode = reportError(error)
  }
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
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })

  addTrackerOptions(program)

  addTrackerOptions(
    program
      .command('recent')
      .description('Print active and recently completed requests as one table and exit.')
      .addOption(
        new Option('--mode <mode>', 'which requests to print')
          .choices(TASK_MODES)
          .env('TOP_RECENT_MODE')
          .default('all'),
      )
      .addOption(
        new Option('--limit <n>', 'print at most n rows')
          .env('TOP_RECENT_LIMIT')
          .argParser(parsePositiveInteger),
      )
      .addOption(columnsOption('--columns <list>', 'TOP_RECENT_COLUMNS', DEFAULT_RECENT_COLUMNS))
      .option('--json', 'print the task records as one JSON array instead of a table')
      .addHelpText('after', RECENT_HELP),
  ).action(async (values: RecentOptionValues, command: Command) => {
    process.exitCode = await runRecent({
      ...readTrackerOptions(command),
      mode: values.mode,
      limit: values.limit,
      columns: values.columns,
      json: values.json === true,
    })
  })

  addTrackerOptions(
    program
      .command('live')
      .description('Show active and completed requests full screen, updated as they change.')
      .addOption(
        new Option('--refresh-rate <seconds>', 'seconds between reads when no change is announced')
          .env('TOP_REFRESH_RATE')
          .argParser(parseRefreshRate)
          .default(DEFAULT_REFRESH_RATE_SECONDS),
      )
      .addOption(columnsOption('--active-columns <list>', 'ACTIVE_COLUMNS', DEFAULT_ACTIVE_COLUMNS))
      .addOption(
        columnsOption('--completed-columns <list>', 'COMPLETED_COLUMNS', DEFAULT_COMPLETED_COLUMNS),
      )
      .addHelpText('after', LIVE_HELP),
  ).action(async (values: LiveOptionValues, command: Command) => {
    const code = await runLive({
      ...readTrackerOptions(command),
      refreshRateSeconds: values.refreshRate,
      activeColumns: values.activeColumns,
      completedColumns: values.completedColumns,
    })
    process.exitCode = code
    // Exits even if a handle, such as a socket still closing, would keep the
    // process up. The timer is unref'd, so it never holds the process itself.
    setTimeout(() => process.exit(code), 1_000).unref()
  })

  program
    .command('version')
    .description('print the version of web-top')
    .action(() => {
      process.stdout.write(`${PACKAGE_VERSION}\n`)
    })

  return program
}

function addTrackerOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--tracker-url <url>', 'tracker to read: redis://[:password@]host:port[/db]')
        .env('TOP_TRACKER_URL')
        .default(DEFAULT_TRACKER_URL),
    )
    .addOption(
      new Option('--prefix <prefix>', 'key prefix, as set on the writers; none by default').env(
        'TOP_TRACKER_PREFIX',
      ),
    )
}

/**
 * Returns the tracker URL and key prefix of a command. An option given
 * after the command name wins, then one given before it
 * (`web-top-cli --tracker-url URL live`), then the environment and the default.
 */
function readTrackerOptions(command: Command): Pick<RecentOptions, 'trackerUrl' | 'keyPrefix'> {
  return {
    trackerUrl: readOption(command, 'trackerUrl') as string,
    keyPrefix: readOption(command, 'prefix') as string | undefined,
  }
}

function readOption(command: Command, name: string): unknown {
  const program = command.parent
  const givenBeforeCommand = program?.getOptionValueSource(name) === 'cli'
  if (command.getOptionValueSource(name) !== 'cli' && givenBeforeCommand) {
    return program?.getOptionValue(name)
  }
  return command.getOptionValue(name)
}

function columnsOption(flags: string, envName: string, defaultList: string): Option {
  return new Option(flags, 'comma-separated column names')
    .env(envName)
    .argParser(parseColumns)
    .default(parseColumnList(defaultList), defaultList)
}

function parseColumns(value: string): Column[] {
  try {
    return parseColumnList(value)
  } catch (error) {
    throw new InvalidArgumentError(describeError(error))
  }
}

function parsePositiveInteger(value: string): number {
  const number = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError('Expected a whole number of 1 or more.')
  }
  return number
}

function parseRefreshRate(value: string): number {
  const seconds = Number(value)
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < MIN_REFRESH_RATE_SECONDS) {
    throw new InvalidArgumentError(
      `Expected a number of seconds of ${MIN_REFRESH_RATE_SECONDS} or more.`,
    )
  }
  return seconds
}

/** Prints an error as one line and returns the exit code; Commander prints its own errors. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE
  if (error instanceof CliError) {
    process.stderr.write(`web-top-cli: ${error.message}\n`)
    return error.exitCode
  }
  process.stderr.write(`web-top-cli: unexpected error: ${describeError(error)}\n`)
  return EXIT_FAILURE
}
